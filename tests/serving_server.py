"""A real model server for the tests: `serve()` under gunicorn, around models the test trained.

    python tests/serving_server.py --port P --data-dir D --model 1=a.pkl [--model 2=b.pkl --cycle]

The registry is played by a fetch function over the given models (pickled by the test itself
into its tmp_path): the production alias points at the last one, or, with --cycle, moves to
the next one on every poll, so each worker keeps hot-swapping while it serves.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cd4ml.config import load_settings  # noqa: E402
from cd4ml.serving.gunicorn_app import serve  # noqa: E402
from cd4ml.serving.model_store import ModelStore  # noqa: E402
from tests.serving_helpers import Registry, cycling_fetch, loaded  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", action="append", default=[], help="VERSION=PICKLE")
    parser.add_argument("--cycle", action="store_true")
    parser.add_argument("--poll", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--admin-token", default="")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for load_settings, e.g. FLUENTD_HOST=...")
    args = parser.parse_args()

    settings = load_settings(
        environ={"CD4ML_DATA_DIR": str(args.data_dir), "CD4ML_ADMIN_TOKEN": args.admin_token,
                 **dict(pair.split("=", 1) for pair in args.env)},
        overrides={"serving.port": args.port, "serving.workers": args.workers, "serving.poll_seconds": args.poll},
    )
    models = []
    for spec in args.model:
        version, _, path = spec.partition("=")
        with open(path, "rb") as f:
            models.append((version, pickle.load(f)))

    def store_factory() -> ModelStore:
        found = [loaded(model, version) for version, model in models]
        fetch = cycling_fetch(found) if args.cycle else Registry(found[-1] if found else None)
        return ModelStore(fetch, settings.serving.poll_seconds)

    return serve(settings, store_factory, {"graceful_timeout": 10})


if __name__ == "__main__":
    sys.exit(main())
