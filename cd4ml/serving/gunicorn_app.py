"""Serve the model with gunicorn: `serve(settings, store_factory)`, for the CLI's `serve` command.

The master only forks. Each worker builds its own model store, poll thread and event sink in
`load()`, after the fork (preload_app stays off), and flushes its events when it exits.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from gunicorn.app.base import BaseApplication
from threadpoolctl import threadpool_limits

from cd4ml.config import Settings
from cd4ml.events import make_sink
from cd4ml.serving.app import close_services, create_app
from cd4ml.serving.model_store import ModelStore
from cd4ml.serving.reports import mlflow_report_cache
from cd4ml.serving.worker_counts import WorkerCounts

# One store (the default problem's) or every problem's by name, the default problem's among them.
StoreFactory = Callable[[], "ModelStore | Mapping[str, ModelStore]"]


class ForecastServer(BaseApplication):
    """gunicorn serving create_app(settings.serving, store_factory(), make_sink(...)) in each worker."""

    def __init__(self, settings: Settings, store_factory: StoreFactory, options: Mapping[str, Any] | None = None):
        self.settings = settings
        self.store_factory = store_factory
        self.options = {
            "bind": f"{settings.serving.host}:{settings.serving.port}",
            "workers": settings.serving.workers,
            "worker_class": "cd4ml.serving.workers.JsonErrorWorker",  # sync, with gunicorn's own 4xx in JSON
            "preload_app": False,  # the store, its thread and the sink must start in the worker
            "control_socket_disable": True,  # no admin socket: admin actions go through POST /reload and its token
            "worker_exit": _worker_exit,
            **(options or {}),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key not in self.cfg.settings:
                raise ValueError(f"gunicorn has no setting {key!r}")
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Runs in each worker after the fork: build the store, load the model, start polling, open the sink.

        The first load happens before the worker accepts requests, so fetch must give up well within
        gunicorn's worker timeout (30 s) when the registry is slow: then the worker starts without a
        model (503 until the poll thread loads one).
        """
        # One request predicts one row: OpenMP threads only add start-up and contention.
        threadpool_limits(limits=1)
        made = self.store_factory()
        stores = dict(made) if isinstance(made, Mapping) else {self.settings.problem: made}
        store = stores[self.settings.problem]
        sink = make_sink(self.settings.serving, self.settings.paths)
        # No local event log (fluentd): /monitoring shows the latest report `monitor` logged to MLflow.
        reports = mlflow_report_cache(self.settings) if getattr(sink, "path", None) is None else None
        counts = WorkerCounts(self.settings.paths.worker_counts(self.settings.serving.port), sink.stats)
        app = create_app(self.settings.serving, store, sink, reports, counts, stores if len(stores) > 1 else None)
        for each in stores.values():
            each.refresh()  # before this worker accepts a request: ready at once if production has a model
            each.start()
        counts.start()
        if reports is not None:
            reports.start()  # in its own thread: a slow MLflow never delays the first request
        return app


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        close_services(app)


def serve(settings: Settings, store_factory: StoreFactory, options: Mapping[str, Any] | None = None) -> int:
    """Run gunicorn until it is stopped (SIGTERM/SIGINT); returns its exit code.

    store_factory() is called once in each worker, e.g.
    `lambda: ModelStore(registry_fetch, settings.serving.poll_seconds)`, or returns every problem's
    store by name (settings.problem's among them: it answers at today's routes).
    options: extra gunicorn settings (e.g. {"accesslog": "-"}).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    try:
        ForecastServer(settings, store_factory, options).run()
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
