"""The command line: `python3 run_python_script.py <command> ...`; main(argv) returns an exit code.

Settings are read here, once, and passed down.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from cd4ml import registry, run_kind
from cd4ml.ci import parse_stages, run_stages
from cd4ml.config import PARAMS_FILE, PROBLEM_PARAMS, Settings, load_settings, load_stack_settings, problem_tracking
from cd4ml.errors import (EXIT_ALERT, EXIT_OK, EXIT_REJECTED, EXIT_UNREACHABLE, Cd4mlError, ConfigError,
                          MissingPackage)
from cd4ml.pipeline.mode import choose_path
from cd4ml.progress import Reporter
from cd4ml.serving.port import ensure_free
from cd4ml.tracking_process import RunProcess

EXIT_CODES = """exit codes: 0 ok, 1 internal error, 2 bad input/data/config, 3 a service is unreachable,
4 model rejected by the acceptance gate, 5 monitoring alert, 6 deploy refused an experiment"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error a user can fix ends in one line and a documented exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_OK
    try:
        if args.profile:
            return _profiled(args)
        return args.handler(args)
    except Cd4mlError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:  # run by a python without our requirements
        if (err.name or "").startswith("cd4ml"):
            raise
        missing = MissingPackage(err, sys.executable)
        print(f"error: {missing}", file=sys.stderr)
        return missing.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_python_script.py",
        description="CD4ML sales forecasting: generate data, train, gate, deploy, serve, monitor.",
        epilog=EXIT_CODES,
        parents=[_common(argparse.SUPPRESS)],
    )
    parser.set_defaults(profile=False, params=None, problem=None, sets=None, overrides=None)
    common = _common(argparse.SUPPRESS)
    commands = parser.add_subparsers(title="commands", metavar="<command>")

    gen = commands.add_parser("generate-data", parents=[common], help="write deterministic synthetic Favorita data (both layouts), or house sales",
                              description="Write the problem's synthetic data: Favorita's in the Kaggle layout and the "
                                          "workshop's single file; with --problem houses (or a params file of the houses "
                                          "problem), house sales with their zip-code table (docs/data.md).",
                              epilog=EXIT_CODES)
    gen.add_argument("--size", default="workshop", choices=("tiny", "workshop", "full"),
                     help="how much data (default: workshop; houses: 2,000, 100,000 or 1,000,000 sales)")
    gen.add_argument("--out", type=Path, default=None, help="folder to write (default: data/<size>)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: seed in params.toml)")
    gen.add_argument("--actuals-for", type=Path, default=None, metavar="EVENTS",
                     help="instead: the actual outcomes of what this event log forecast (e.g. data/predictions.jsonl), "
                          "from the same process and seed, as a data source for monitor --actuals and feedback "
                          "(default --out: data/actuals; houses: data/houses-actuals)")
    gen.set_defaults(handler=_generate_data)

    pipe = commands.add_parser("pipeline", parents=[common], help="read, process, train and validate a model; track it in MLflow",
                               description="Run the training pipeline once and track it in MLflow.", epilog=EXIT_CODES)
    _data_flags(pipe)
    pipe.add_argument("--json", action="store_true", help="make the last line of output one JSON object (run id, metrics)")
    pipe.add_argument("--scale", dest="scale_mode", action="store_const", const="on", default=None,
                      help="take the scale path (Arrow batches, a model trained on a sample; docs/scale.md) whatever "
                           "the data's size ([scale] mode: by default only when train.csv is over auto_above_mb)")
    pipe.add_argument("--no-scale", dest="scale_mode", action="store_const", const="off", help="take the row path")
    pipe.add_argument("--max-rows", type=int, default=None, metavar="N",
                      help="scale path: read only the first N lines of train.csv")
    pipe.add_argument("--dask", default=None, metavar="ADDRESS",
                      help='scale path: scan on the Dask scheduler at ADDRESS (tcp://host:8786), "local" for a '
                           'LocalCluster here, "" for none (default: [scale] dask_scheduler or $DASK_SCHEDULER_ADDRESS)')
    pipe.set_defaults(handler=_pipeline)

    gate = commands.add_parser("acceptance", parents=[common], help="the acceptance gate: accept or reject the last run's model",
                               description="Judge the run the pipeline just made: on its validation rows its metric must beat "
                                           "the naive baseline's by [acceptance] min_gain, not be worse than production's on the "
                                           "same rows by more than the tolerance, and lie within [min, max].",
                               epilog=EXIT_CODES)
    gate.add_argument("--run-id", default=None, help="judge this run instead of the last pipeline run")
    gate.set_defaults(handler=_acceptance)

    deploy = commands.add_parser("deploy", parents=[common], help="register the accepted model and move the production alias to it",
                                 description="Register the last accepted run's model as a version and point production at it.",
                                 epilog=EXIT_CODES)
    deploy.add_argument("--run-id", default=None, help="deploy this run instead of the last pipeline run")
    deploy.set_defaults(handler=_deploy)

    back = commands.add_parser("rollback", parents=[common], help="move production back to the previous accepted version",
                               description="Point the production alias at the previous accepted version (or --to VERSION); no retraining.",
                               epilog=EXIT_CODES)
    back.add_argument("--to", default=None, help="the version to go back to (default: the previous accepted one)")
    back.set_defaults(handler=_rollback)

    serve = commands.add_parser("serve", parents=[common], help="serve the production model: web form and JSON API (gunicorn)",
                                description="Serve the sales-forecast page and API with gunicorn; the model follows the production alias.",
                                epilog=EXIT_CODES)
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1 from params.toml)")
    serve.add_argument("--port", type=int, default=None, help="port (default 5005)")
    serve.add_argument("--workers", type=int, default=None, help="gunicorn workers (default 2)")
    serve.set_defaults(handler=_serve)

    quick = commands.add_parser("quickstart", parents=[common], help="the main job: generate data, train, gate, deploy, serve",
                                description="Generate the workshop data (once), run the pipeline, the acceptance gate and "
                                            "deploy, then serve the form until Ctrl-C.", epilog=EXIT_CODES)
    quick.add_argument("--no-serve", action="store_true", help="stop after deploying")
    quick.add_argument("--port", type=int, default=None, help="port for the server (default 5005)")
    quick.set_defaults(handler=_quickstart)

    ci = commands.add_parser("ci", parents=[common], help="run the Jenkinsfile's stages locally, stopping at the first failure",
                             description="Read the stages from the Jenkinsfile and run their commands in order on this machine, "
                                         "as Jenkins would: the first failing stage ends the run and its exit code is ours. "
                                         "--problem, --params, --model and --set/--overrides are the Jenkins job's parameters "
                                         "PROBLEM, PARAMS_FILE, MODEL and OVERRIDES: with any but --problem the build takes "
                                         "the Experiment path (Acceptance reported, never failing the build; no Deploy).",
                             epilog=EXIT_CODES)
    ci.add_argument("--from", dest="start", default=None, metavar="STAGE", help="start at this stage (e.g. Pipeline)")
    ci.add_argument("--jenkinsfile", type=Path, default=None, help="the Jenkinsfile to read (default: the repo's)")
    ci.add_argument("--model", default=None, help="the Jenkins job's MODEL parameter: another model (an experiment)")
    ci.set_defaults(handler=_ci)

    comp = commands.add_parser("compare", parents=[common], help="the experiments beside the production version, on the same metrics",
                               description="Print the production version's run and the last experiment runs (tag "
                                           "cd4ml.run_kind = experiment) of the problem's MLflow experiment side by side, "
                                           "and the MLflow UI links that show the same (docs/experiments.md).",
                               epilog=EXIT_CODES)
    comp.add_argument("--last", type=int, default=10, metavar="N", help="how many experiment runs (default 10)")
    comp.set_defaults(handler=_compare)

    bench = commands.add_parser("benchmark", parents=[common], help="measure the pipeline on workshop-size data",
                                description="Time the data pass and the whole pipeline; report speed, memory and scores. "
                                            "With --problem houses: the pipeline of params-houses.toml (or --params) on "
                                            "data/houses (generated if missing): wall time, peak memory, r2 against the "
                                            "baseline and the best achievable.",
                                epilog=EXIT_CODES)
    bench.add_argument("--data", type=Path, default=None, help="data to use (default: generated data/workshop)")
    bench.add_argument("--skip-server", action="store_true", help="only the pipeline, not the model server (which needs wrk)")
    bench.add_argument("--monitor", action="store_true", help="only `monitor` over one million generated events")
    bench.add_argument("--size", default="workshop", choices=("workshop", "full"),
                       help="full: the scale path on Kaggle-sized data (data/full, generated if missing, or --data) at "
                            "1M, 10M and all rows, stage by stage, and the accuracy of its strategy (docs/scale.md)")
    bench.add_argument("--rows", default=None, metavar="N,N,...",
                       help='with --size full: the sizes to measure, e.g. "1000000,all" (default: 1000000,10000000,all)')
    bench.add_argument("--no-accuracy", action="store_true", help="with --size full: skip the accuracy comparison")
    bench.add_argument("--load", action="store_true",
                       help="only the model server under wrk, with the production alias moved every 5 s: requests/s, "
                            "p50/p99/p99.9, errors and mixed-version answers")
    bench.add_argument("--fluentd-fault", action="store_true",
                       help="only the model server under wrk with its events to the JSONL file, to an unreachable fluentd "
                            "and to a stalling one (accepts, never reads): requests/s, p50/p99, p99 against normal, "
                            "dropped events")
    bench.add_argument("--matrix", action="store_true",
                       help="only the model matrix: the default model against the naive baseline and the best achievable "
                            "forecast on every generated data set of cd4ml/problems/favorita/matrix.py (data/matrix)")
    bench.add_argument("--seconds", type=int, default=None,
                       help="with --load: how long wrk drives the server (default: 60); with --fluentd-fault: how long "
                            "each phase is measured (default: 10)")
    bench.set_defaults(handler=_benchmark)

    mon = commands.add_parser("monitor", parents=[common], help="what the model does in the wild: volume, latency, drift, live accuracy",
                              description="Read the prediction events of a time window (the local JSONL log or Elasticsearch), "
                                          "compare them with the deployed model's training data (PSI) and, with --actuals, score "
                                          "what production forecast; log the report to MLflow and write data/monitoring/latest.json. "
                                          "Exit 5 when an alert threshold of params.toml [monitoring] is crossed.",
                              epilog=EXIT_CODES)
    mon.add_argument("--since", default=None, metavar="WHEN",
                     help="start: a date (its first moment, UTC) or an ISO datetime (default: [monitoring] window_days before --until)")
    mon.add_argument("--until", default=None, metavar="WHEN",
                     help="end, exclusive: an ISO datetime, or a date (that whole day included) (default: now)")
    mon.add_argument("--source", default=None, choices=("jsonl", "elasticsearch"),
                     help="where events come from (default: elasticsearch when CD4ML_ELASTICSEARCH_URL is set, else jsonl)")
    mon.add_argument("--events", type=Path, default=None, metavar="FILE", help="a JSONL event log to read (implies --source jsonl; default: data/predictions.jsonl)")
    mon.add_argument("--actuals", type=Path, default=None, metavar="PATH",
                     help="actual sales of the forecast dates: a workshop CSV or a Kaggle-layout folder")
    mon.add_argument("--json", action="store_true", help="print the whole report as JSON instead of the summary")
    mon.set_defaults(handler=_monitor)

    feed = commands.add_parser("feedback", parents=[common], help="add arrived actual sales to the training data for the next run",
                               description="Append the rows of a data drop (workshop CSV or Kaggle-layout folder) to the configured "
                                           "training data ([data] source or --data): new ids, rows already present skipped and "
                                           "counted, files replaced atomically. Then run the pipeline to retrain on them.",
                               epilog=EXIT_CODES)
    feed.add_argument("--actuals", type=Path, required=True, metavar="PATH", help="the data drop: a workshop CSV or a Kaggle-layout folder")
    feed.add_argument("--data", type=Path, default=None, help="the training data to add to (default: [data] source)")
    feed.set_defaults(handler=_feedback)

    stack = commands.add_parser("stack-check", parents=[common], help="check the docker compose stack, one line per part",
                                description="Check the workshop stack (docker compose up -d --build): MLflow, Jenkins, the "
                                            "model server, a forecast's event in Elasticsearch, Kibana, fluentd's buffer. "
                                            "Exit 0 when every part is ok, 3 when one is not (docs/stack.md).",
                                epilog=EXIT_CODES)
    stack.set_defaults(handler=_stack_check)
    return parser


def _common(default: Any) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-p", "--profile", action="store_true", default=default,
                        help="write a cProfile file of this command and say how to view it")
    common.add_argument("--params", type=_optional_path, default=default,
                        help="the params file (default: the problem's, params.toml for favorita; \"\": the default)")
    common.add_argument("--problem", default=default, metavar="NAME",
                        help=f"use this problem's default params file ({', '.join(f'{k}: {v}' for k, v in PROBLEM_PARAMS.items())})")
    common.add_argument("--set", dest="sets", action="append", default=default, metavar="KEY=VALUE",
                        help="override one params key (dotted, value in TOML syntax), e.g. --set model.name=lasso "
                             "--set model.lasso.alpha=0.5; repeatable; makes the run an experiment")
    common.add_argument("--overrides", default=default, metavar="LINES",
                        help="KEY=VALUE lines, each a --set (the Jenkins job's OVERRIDES parameter)")
    return common


def _optional_path(text: str) -> Path | None:
    """A path, or None for "" (an empty Jenkins parameter means the default)."""
    return Path(text) if text.strip() else None


def _sets(args: argparse.Namespace) -> list[str]:
    """--set values and the lines of --overrides, in that order (blank lines and # comments skipped)."""
    lines = (getattr(args, "overrides", None) or "").splitlines()
    return [*(getattr(args, "sets", None) or []),
            *(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))]


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help="a workshop CSV file or a folder in the Kaggle layout")
    parser.add_argument("--items", default=None, help='item numbers, comma-separated, or "all"')
    parser.add_argument("--stores", default=None, help='store numbers, comma-separated, or "all"')
    parser.add_argument("--model", default=None, help="model name (random_forest, gradient_boosting, decision_tree, ridge, lasso)")


def _settings(args: argparse.Namespace, data_dir: Path | None = None, source: Path | None = None) -> Settings:
    """The settings the command's arguments give; data_dir: another data folder (quickstart's own store),
    reading `source` where it is."""
    data = str(Path(args.data).resolve()) if getattr(args, "data", None) else None  # from the shell's folder
    overrides = {
        "data.source": str(source) if source is not None else data,
        "data.items": getattr(args, "items", None),
        "data.stores": getattr(args, "stores", None),
        "model.name": getattr(args, "model", None) or None,  # "": the default (an empty Jenkins parameter)
        "scale.mode": getattr(args, "scale_mode", None),
        "scale.max_rows": getattr(args, "max_rows", None),
        "scale.dask_scheduler": getattr(args, "dask", None),
    }
    return load_settings(args.params, problem=getattr(args, "problem", None) or None, sets=_sets(args),
                         overrides=overrides, flags=FLAGS, data_dir=data_dir)


FLAGS = {"data.source": "--data", "data.items": "--items", "data.stores": "--stores", "model.name": "--model",
         "scale.mode": "--scale/--no-scale", "scale.max_rows": "--max-rows", "scale.dask_scheduler": "--dask"}


def _generate_data(args: argparse.Namespace) -> int:
    from cd4ml.problems import generator, get_problem  # deferred: numpy and pandas, for this command only

    settings = _settings(args)  # --problem picks the problem's params file, whose problem generates
    problem = generator(get_problem(settings.problem))
    seed = settings.seed if args.seed is None else args.seed
    if args.actuals_for is not None:
        out = (args.out or settings.paths.generated(problem.data_folder("actuals"))).resolve()
        summary = problem.generate_actuals(args.actuals_for.resolve(), out, args.size, seed)
        print(summary["message"])
        print(f"score them: {settings.commands.script} monitor{_problem_flag(settings)} --actuals {out}")
        return EXIT_OK
    out = args.out or settings.paths.generated(problem.data_folder(args.size))
    reporter = Reporter()
    reporter.say(f"generating {args.size} {problem.name} data (seed {seed}) into {out}")
    summary = problem.generate(args.size, out, seed)
    reporter.stage("generate", summary["seconds"], summary["rows"])
    print(summary["message"])
    return EXIT_OK


def _problem_flag(settings: Settings) -> str:
    """" --problem NAME" for a hint's command, unless the problem is the default params file's."""
    return "" if settings.problem == problem_tracking(PARAMS_FILE)[0] else f" --problem {settings.problem}"


def _ensure_default_data(settings: Settings) -> None:
    """Generate the problem's workshop-size data when the run uses it and it is not there yet (fresh
    CI workspaces, first runs): it is deterministic and takes seconds."""
    from cd4ml.problems import get_problem  # deferred: cd4ml.problems imports numpy

    problem = get_problem(settings.problem)
    if not callable(getattr(problem, "generate", None)):
        return  # a problem without a generator: its data is its own
    folder = settings.paths.generated(problem.data_folder("workshop"))
    source = settings.data.source
    if source in (folder, folder / problem.default_file) and not source.exists():
        Reporter().say(f"{source} is missing: generating the {problem.name} data (seed {settings.seed}) into {folder}")
        problem.generate("workshop", folder, settings.seed)


def _pipeline(args: argparse.Namespace) -> int:
    return pipeline(_settings(args), as_json=args.json)


def pipeline(settings: Settings, as_json: bool = False) -> int:
    """Train, validate and track one run; print its scores and where to see it."""
    path = choose_path(settings)  # the row path, or the scale path (docs/scale.md)
    process = RunProcess(settings.tracking)  # MLflow warms up while we import the rest
    try:
        # deferred until the tracking process has started: scikit-learn and pandas take about 1 s
        from cd4ml.pipeline.models import make_model
        from cd4ml.pipeline.run import run_pipeline
        from cd4ml.pipeline.run_scale import run_scale_pipeline

        make_model(settings.model.name, dict(settings.model.params), settings.seed,  # bad params: say so first
                   name_from=settings.model.name_from, params_from=settings.model.params_from)
        _ensure_default_data(settings)
    except BaseException:
        process.cancel()
        raise
    run = run_scale_pipeline if path == "scale" else run_pipeline
    result = run(settings, Reporter(), process)
    _print_scores(result.metrics)
    print(f"run {result.run_id} tracked at {result.tracking_uri}")
    print(_where_to_look(settings, result.experiment_id, result.run_id))
    if as_json:
        print(result.as_json())
    return EXIT_OK


def _print_scores(metrics: dict[str, float]) -> None:
    from cd4ml.metrics import score_cell  # deferred: numpy, loaded by the run by now

    print(f"{'':10}{'model':>10}{'baseline':>10}{'best':>10}")
    for name in ("r2", "nwrmsle", "rmse", "mae", "mape"):  # those of the problem's metrics the run has
        if name not in metrics:
            continue
        best = metrics.get(f"best_{name}")
        best_text = score_cell(best) if best is not None else f"{'-':>10}"
        print(f"{name:10}{score_cell(metrics[name])}{score_cell(metrics[f'baseline_{name}'])}{best_text}")


def _where_to_look(settings: Settings, experiment_id: str, run_id: str) -> str:
    if settings.tracking.uri.startswith(("http://", "https://")):
        return f"see it at {settings.tracking.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (
        f"see it with: {settings.commands.mlflow} ui --backend-store-uri {settings.tracking.uri}  "
        f"then http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    )


def _allowed_types(settings: Settings) -> list[str]:
    # deferred: scikit-learn (about 1 s), for the commands that load a model only
    from cd4ml.pipeline.models import all_trusted_types
    from cd4ml.problems import get_problem

    return [*get_problem(settings.problem).trusted_types, *all_trusted_types()]


def _run_id(run_id: str | None, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The run to act on: --run-id, or the one the last pipeline recorded."""
    if run_id:
        return run_id, {}
    from cd4ml.acceptance import last_run  # deferred: numpy (about 0.15 s), which most commands never need

    recorded = last_run(settings)
    if recorded.get("tracking_uri") != settings.tracking.uri:
        raise ConfigError(
            f"the last pipeline run was tracked at {recorded.get('tracking_uri')}, but MLFLOW_TRACKING_URI "
            f"now points at {settings.tracking.uri}.",
            "Use the same tracking store for pipeline, acceptance and deploy, or pass --run-id.",
        )
    return recorded["run_id"], recorded


def _acceptance(args: argparse.Namespace) -> int:
    return acceptance(_settings(args), args.run_id)


def acceptance(settings: Settings, run_id: str | None = None) -> int:
    """Judge a run (default: the last pipeline run); exit 4 when the gate rejects it."""
    from cd4ml.acceptance import judge  # deferred: numpy (about 0.15 s), which most commands never need

    run_id, _ = _run_id(run_id, settings)
    verdict = judge(settings, run_id, _allowed_types(settings))
    print(verdict.message)
    return EXIT_OK if verdict.accepted else EXIT_REJECTED


def _deploy(args: argparse.Namespace) -> int:
    return deploy(_settings(args), args.run_id)


def deploy(settings: Settings, run_id: str | None = None, quickstart: bool = False) -> int:
    """Register an accepted run's model and point production at it."""
    run_id, recorded = _run_id(run_id, settings)
    move = registry.deploy(registry.client(settings.tracking), settings.tracking.registered_model, run_id,
                           recorded.get("model_uri"), settings.commands.script)
    print(f"deployed: {move}")
    print(_nudged(settings, quickstart=quickstart))
    return EXIT_OK


def _nudged(settings, quickstart: bool = False) -> str:
    """Nudge the model servers of this data folder to follow production now; say what happened."""
    from cd4ml.serving.model_store import nudge_local_servers  # deferred: Flask's import, for two commands

    if nudge_local_servers(settings.paths.data_dir):
        return "the local model server follows now; others within " \
               f"{settings.serving.poll_seconds:g} s (or at once on POST /reload)"
    serve = f"quickstart --problem {settings.problem}" if quickstart else "serve"  # quickstart serves its own store
    return (f"a model server picks it up within {settings.serving.poll_seconds:g} s (or at once on POST /reload); "
            f"serve with: {settings.commands.script} {serve}")


def _rollback(args: argparse.Namespace) -> int:
    settings = _settings(args)
    move = registry.rollback(registry.client(settings.tracking), settings.tracking.registered_model, args.to)
    print(f"rolled back: {move}")
    print(_nudged(settings))
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    return serve(_settings(args), args.host, args.port, args.workers)


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> int:
    """Serve the production model with gunicorn until stopped."""
    # deferred: Flask and gunicorn (about 0.5 s), for this command only
    from cd4ml.serving.gunicorn_app import serve as serve_with_gunicorn
    from cd4ml.serving.model_store import ModelStore, nudge_file, touch_nudge_file
    from cd4ml.problems import get_problem
    from cd4ml.serving.registry_source import production_fetcher
    from cd4ml.serving.worker_counts import reset as reset_counts

    serving = replace(
        settings.serving,
        host=host or settings.serving.host,
        port=port or settings.serving.port,
        workers=workers or settings.serving.workers,
    )
    settings = replace(settings, serving=serving)
    ensure_free(serving.host, serving.port)  # before anything else: a taken port is one line, exit 2
    if not settings.tracking.remote:
        _create_local_store(settings)  # once, here: two workers creating it at once would race
    served = _served_problems(settings)
    fetchers = {name: production_fetcher(tracking, _allowed_types(replace(settings, problem=name)),
                                         get_problem(name).serving) for name, tracking in served.items()}
    title = get_problem(settings.problem).serving.title
    print(f"serving {title} at http://{serving.host}:{serving.port}/ "
          f"(model: {settings.tracking.registered_model}@production from {settings.tracking.uri})", flush=True)
    for name, tracking in list(served.items())[1:]:  # each served as soon as its model is deployed
        print(f"  and {name} at http://{serving.host}:{serving.port}/{name}/ (model: {tracking.registered_model}@production)",
              flush=True)
    reset_counts(settings.paths.worker_counts(serving.port))  # /version sums this server's workers only
    nudge = nudge_file(settings.paths.data_dir, serving.port)  # POST /reload, deploy and rollback reach every worker
    touch_nudge_file(nudge)  # there before the workers start, so deploy and rollback find this server
    master = os.getpid()
    try:
        return serve_with_gunicorn(settings, lambda: {
            name: ModelStore(fetch, serving.poll_seconds, nudge_path=nudge) for name, fetch in fetchers.items()})
    finally:  # a worker leaves through here too (gunicorn forks it from this call): only the master removes it
        if os.getpid() == master:
            nudge.unlink(missing_ok=True)  # a stopped server is not nudged; one killed outright leaves it: harmless


def _served_problems(settings: Settings) -> dict[str, Any]:
    """The tracking settings of every problem `serve` serves: settings.problem's first (today's routes),
    then each other known problem whose params file names it (its registered model; this registry)."""
    from cd4ml.problems import problem_params

    served = {settings.problem: settings.tracking}
    for name, path in problem_params().items():
        if name in served or not path.is_file():
            continue
        problem, experiment, registered_model = problem_tracking(path)
        if problem == name:
            served[name] = replace(settings.tracking, experiment=experiment, registered_model=registered_model)
    return served


def _quickstart(args: argparse.Namespace) -> int:
    """generate-data (if needed) -> pipeline -> acceptance -> deploy -> serve, in a store of its own
    (data/quickstart/), so that the exercises' version numbers do not depend on whether it ran first."""
    settings = _settings(args)
    if not args.no_serve:  # a taken port must not cost a training run and a deploy first
        ensure_free(settings.serving.host, args.port or settings.serving.port)
    _ensure_default_data(settings)  # the shared data folder's workshop data, generated once
    store = settings.paths.quickstart_dir
    if not settings.tracking.remote:
        print(f"quickstart keeps its own MLflow store, last run and events in {store}: "
              f"the exercises start from an empty registry in {settings.paths.mlflow_dir}")
    settings = _settings(args, data_dir=store, source=settings.data.source)  # the shared data, its own store
    pipeline(settings)
    accepted = acceptance(settings)
    kind = run_kind.classify(settings)
    if accepted == EXIT_OK and kind.experiment:
        print(f"an experiment ({kind.reason}): not deployed; production is unchanged. "
              "Build the defaults on main to deploy (docs/experiments.md)")
    elif accepted == EXIT_OK:
        deploy(settings, quickstart=True)
    elif accepted == EXIT_REJECTED:
        print("the gate rejected this model: production is unchanged")
    if args.no_serve:
        return accepted
    return serve(settings, port=args.port)


def _ci(args: argparse.Namespace) -> int:
    settings = _settings(args)  # a bad --set or --problem: one line, exit 2, before any stage runs
    path = args.jenkinsfile or settings.paths.root / "Jenkinsfile"
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}.", "Pass --jenkinsfile PATH.") from None
    stages = parse_stages(text)
    params = build_parameters(args)
    print(build_kind(params, [s.name for s in stages if s.runs(params)]), flush=True)
    outcome = run_stages(stages, cwd=settings.paths.root, say=lambda line: print(line, flush=True), start=args.start,
                         params=params)
    return outcome.exit_code


def build_parameters(args: argparse.Namespace) -> dict[str, str]:
    """The Jenkins job's parameters from ci's flags ("" for each not given, as in a build with the defaults)."""
    return {"PROBLEM": getattr(args, "problem", None) or "", "PARAMS_FILE": str(args.params or ""),
            "MODEL": args.model or "", "OVERRIDES": "\n".join(_sets(args))}


def build_kind(params: dict[str, str], stages: list[str]) -> str:
    """One line: which path the build takes, and why."""
    given = [f"{name}={value!r}" for name, value in params.items() if value and name != "PROBLEM"]
    if given:
        return f"build kind: experiment ({', '.join(given)}): {', '.join(stages)}; no Deploy"
    return f"build kind: production (default parameters): {', '.join(stages)}"


def _compare(args: argparse.Namespace) -> int:
    from cd4ml.compare import compare, text, ui_links

    settings = _settings(args)
    if args.last < 1:
        raise ConfigError(f"--last must be a whole number >= 1; got {args.last}.")
    found = compare(registry.client(settings.tracking), settings.tracking.experiment, settings.tracking.registered_model,
                    settings.acceptance.metric, args.last)
    print(text(found))
    remote = settings.tracking.uri.startswith(("http://", "https://"))
    links = ui_links(settings.tracking.uri if remote else "http://127.0.0.1:5000", found)
    if links and not remote:
        print(f"in the MLflow UI ({settings.commands.mlflow} ui --backend-store-uri {settings.tracking.uri}):")
    for link in links:
        print(link)
    return EXIT_OK


def _create_local_store(settings: Settings) -> None:
    """Create the embedded MLflow store if it does not exist yet, in a short child process (the
    gunicorn master must not hold MLflow's database connections when it forks its workers)."""
    if settings.paths.mlflow_db.exists():
        return
    settings.paths.mlflow_db.parent.mkdir(parents=True, exist_ok=True)
    code = "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).search_registered_models(max_results=1)"
    subprocess.run([sys.executable, "-c", code, settings.tracking.uri], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})


def _benchmark(args: argparse.Namespace) -> int:
    from benchmarks.workshop import benchmark_pipeline

    settings = _settings(args)
    if settings.problem == "houses":
        return _benchmark_houses(args, settings)
    if getattr(args, "load", False) or getattr(args, "fluentd_fault", False):
        from dataclasses import replace

        from benchmarks.workshop import benchmark_fluentd_fault, benchmark_load, workshop_data

        seconds = args.seconds if args.seconds is not None else 60 if args.load else 10
        if seconds < 1:
            from cd4ml.errors import ConfigError

            raise ConfigError(f"--seconds must be a whole number of seconds >= 1; got {seconds}.")
        source = args.data.resolve() if args.data else workshop_data(settings)
        settings = replace(settings, data=replace(settings.data, source=source))
        if args.load:
            print(benchmark_load(settings, seconds), flush=True)
        if args.fluentd_fault:
            print(benchmark_fluentd_fault(settings, seconds), flush=True)
        return EXIT_OK
    if getattr(args, "matrix", False):
        from benchmarks.workshop import benchmark_matrix

        print(benchmark_matrix(settings, settings.paths.generated("matrix")), flush=True)
        return EXIT_OK
    if getattr(args, "monitor", False):
        from benchmarks.monitor import benchmark_monitor

        print(benchmark_monitor(settings), flush=True)
        return EXIT_OK
    if args.size == "full":
        from benchmarks.scale import SIZES, benchmark_full

        try:
            sizes = SIZES if not args.rows else tuple(
                None if part.strip() == "all" else int(float(part)) for part in args.rows.split(",") if part.strip())
        except ValueError:
            from cd4ml.errors import ConfigError

            raise ConfigError(f'--rows must be row counts or "all", comma-separated; got {args.rows!r}.') from None
        print(benchmark_full(settings, args.data, sizes, accuracy=not args.no_accuracy), flush=True)
        return EXIT_OK
    print(benchmark_pipeline(settings, args.data), flush=True)
    if not args.skip_server:
        from dataclasses import replace

        from benchmarks.workshop import benchmark_server, workshop_data

        source = args.data.resolve() if args.data else workshop_data(settings)
        print("\n" + benchmark_server(replace(settings, data=replace(settings.data, source=source))))
    return EXIT_OK


def _benchmark_houses(args: argparse.Namespace, settings: Settings) -> int:
    """The houses problem (--problem houses, or its params file): its pipeline, not the server's figures."""
    from benchmarks.workshop import benchmark_houses

    print(benchmark_houses(settings, args.data.resolve() if args.data else None), flush=True)
    return EXIT_OK


def _monitor(args: argparse.Namespace) -> int:
    # deferred: the monitoring modules import pandas and the Elasticsearch client (about 1 s)
    from cd4ml.monitoring.window import default_window
    from cd4ml.monitoring.report import text
    from cd4ml.monitoring.run import make_source, monitor

    settings = _settings(args)
    now = datetime.now(timezone.utc)
    window = default_window(now, settings.monitoring.window_days, args.since, args.until)
    source = make_source(settings, args.source, args.events.resolve() if args.events else None)
    report = monitor(settings, window, source, args.actuals.resolve() if args.actuals else None, now=now)
    print(json.dumps(report, indent=1) if args.json else text(report))
    if not args.json:
        print(f"report: {settings.paths.monitoring_report} and MLflow run {report['mlflow_run_id']} "
              f"(experiment {settings.monitoring.experiment})"
              + (f"; summary in Elasticsearch index {report['summary_index']}" if report.get("summary_index") else ""))
    return EXIT_ALERT if report["alerts"] else EXIT_OK


def _feedback(args: argparse.Namespace) -> int:
    from cd4ml.problems import get_problem  # deferred: the readers' imports, for this command only

    settings = _settings(args)
    result = get_problem(settings.problem).add_actuals(args.actuals.resolve(), settings.data.source)
    print(result)
    if result.added:
        script = settings.commands.script
        print(f"retrain on it: {script} pipeline && {script} acceptance && {script} deploy")
    return EXIT_OK


def _stack_check(args: argparse.Namespace) -> int:
    from cd4ml.stack_check import run_checks  # deferred: requests (about 0.2 s), for this command only

    parts = run_checks(load_stack_settings())
    for part in parts:
        print(part.line(), flush=True)
    return EXIT_OK if all(part.ok for part in parts) else EXIT_UNREACHABLE


def _profiled(args: argparse.Namespace) -> int:
    settings = load_settings(args.params)
    folder = settings.paths.profiles_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = args.handler.__name__.strip("_")
    path = folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.prof"
    profile = cProfile.Profile()
    try:
        return profile.runcall(args.handler, args)
    finally:
        profile.dump_stats(path)
        print(
            f"profile written to {path}\n"
            f"view it with: {settings.commands.python} -m pstats {path}  (then: sort cumtime, stats 25)",
            file=sys.stderr,
        )


def run(argv: Sequence[str] | None = None, exit: Callable[[int], Any] | None = None) -> None:
    """Entry point for run_python_script.py. The command has finished its work (files closed,
    runs ended, child processes joined), so the process ends at once with os._exit: tearing down
    the modules of scikit-learn, pandas and MLflow would add about half a second to every command.
    What atexit would still run is flushed here first (logging, stdout, stderr); the tracking
    process has ended its run and been joined, and gunicorn's master has reaped its workers."""
    code = main(argv)
    if exit is not None:
        exit(code)
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. | head): nothing more to say
            pass
    os._exit(code)
