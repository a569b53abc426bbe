# The project's image, in two targets (docker-compose.yml builds both):
#   runtime  the model server (the default command) and the MLflow server (compose overrides CMD)
#   dev      runtime plus the test tools and JupyterLab, for the `dev` service
# python:3.11-slim is published for linux/amd64 and linux/arm64, and so are the pinned wheels.

ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm

FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    CD4ML_DATA_DIR=/data

# A non-root user owns only the folders the services write: data, the MLflow stores.
RUN groupadd --system --gid 1000 cd4ml \
    && useradd --system --uid 1000 --gid cd4ml --create-home --home-dir /home/cd4ml cd4ml \
    && mkdir -p /app /data /mlflow/db /mlflow/artifacts \
    && chown -R cd4ml:cd4ml /data /mlflow

WORKDIR /app

COPY requirements.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements.txt

COPY cd4ml ./cd4ml
COPY run_python_script.py params.toml ./

# The cd4ml user (uid 1000).
USER 1000
EXPOSE 5005

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/health', timeout=4)"]

CMD ["python3", "run_python_script.py", "serve", "--host", "0.0.0.0", "--port", "5005"]


FROM runtime AS dev

ARG JUPYTERLAB_VERSION=4.6.6

# git, so that runs in the box are tagged with their commit; the repo mounted at /app belongs to
# the host user (docker-compose.yml runs the box as that uid), so git is told it is safe.
# requirements-ci.txt: the runtime plus the test tools, all with wheels for amd64 and arm64.
USER 0
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory /app
COPY requirements-ci.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements-ci.txt "jupyterlab==${JUPYTERLAB_VERSION}"

USER 1000
EXPOSE 8888

# JupyterLab takes its token from JUPYTER_TOKEN (compose requires it); it never runs without one.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8888/api', timeout=4)"]

CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/app"]
