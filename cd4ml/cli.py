"""The command line: `python3 run_python_script.py <command> ...`; main(argv) returns an exit code.

Settings are read here, once, and passed down.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from cd4ml.config import Settings, load_settings
from cd4ml.errors import EXIT_OK, Cd4mlError
from cd4ml.progress import Reporter

EXIT_CODES = """exit codes: 0 ok, 1 internal error, 2 bad input/data/config, 3 a service is unreachable,
4 model rejected by the acceptance gate, 5 monitoring alert"""


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
    parser.set_defaults(profile=False, params=None)
    common = _common(argparse.SUPPRESS)
    commands = parser.add_subparsers(title="commands", metavar="<command>")

    gen = commands.add_parser("generate-data", parents=[common], help="write deterministic synthetic Favorita data (both layouts)",
                              description="Write synthetic Favorita data in the Kaggle layout and the workshop's single file.",
                              epilog=EXIT_CODES)
    gen.add_argument("--size", default="workshop", choices=("tiny", "workshop", "full"), help="how much data (default: workshop)")
    gen.add_argument("--out", type=Path, default=None, help="folder to write (default: data/<size>)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: seed in params.toml)")
    gen.set_defaults(handler=_generate_data)

    pipe = commands.add_parser("pipeline", parents=[common], help="read, process, train and validate a model; track it in MLflow",
                               description="Run the training pipeline once and track it in MLflow.", epilog=EXIT_CODES)
    _data_flags(pipe)
    pipe.add_argument("--json", action="store_true", help="make the last line of output one JSON object (run id, metrics)")
    pipe.set_defaults(handler=_pipeline)

    bench = commands.add_parser("benchmark", parents=[common], help="measure the pipeline on workshop-size data",
                                description="Time the data pass and the whole pipeline; report speed, memory and scores.",
                                epilog=EXIT_CODES)
    bench.add_argument("--data", type=Path, default=None, help="data to use (default: generated data/workshop)")
    bench.set_defaults(handler=_benchmark)
    return parser


def _common(default: Any) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-p", "--profile", action="store_true", default=default,
                        help="write a cProfile file of this command and say how to view it")
    common.add_argument("--params", type=Path, default=default,
                        help="the params file (default: params.toml at the repo root)")
    return common


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help="a workshop CSV file or a folder in the Kaggle layout")
    parser.add_argument("--items", default=None, help='item numbers, comma-separated, or "all"')
    parser.add_argument("--stores", default=None, help='store numbers, comma-separated, or "all"')
    parser.add_argument("--model", default=None, help="model name (random_forest, gradient_boosting, decision_tree, ridge, lasso)")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.params, overrides={
        "data.source": str(args.data) if getattr(args, "data", None) else None,
        "data.items": getattr(args, "items", None),
        "data.stores": getattr(args, "stores", None),
        "model.name": getattr(args, "model", None),
    })


def _generate_data(args: argparse.Namespace) -> int:
    from cd4ml.problems.favorita.generate import generate

    settings = _settings(args)
    out = args.out or settings.paths.generated(args.size)
    seed = settings.seed if args.seed is None else args.seed
    reporter = Reporter()
    reporter.say(f"generating {args.size} data (seed {seed}) into {out}")
    summary = generate(args.size, out, seed=seed)
    reporter.stage("generate", summary["seconds"], summary["rows"])
    print(f"wrote {summary['rows']:,} sales rows ({summary['workshop_rows']:,} in the workshop file) to {out}")
    return EXIT_OK


def _pipeline(args: argparse.Namespace) -> int:
    from cd4ml import tracking

    settings = _settings(args)
    process = tracking.RunProcess(settings.tracking)  # MLflow warms up while we import the rest
    try:
        from cd4ml.pipeline.run import run_pipeline
    except BaseException:
        process.cancel()
        raise
    result = run_pipeline(settings, Reporter(), process)
    _print_scores(result.metrics)
    print(f"run {result.run_id} tracked at {result.tracking_uri}")
    print(_where_to_look(settings, result.experiment_id, result.run_id))
    if args.json:
        print(result.as_json())
    return EXIT_OK


def _print_scores(metrics: dict[str, float]) -> None:
    print(f"{'':10}{'model':>10}{'baseline':>10}{'best':>10}")
    for name in ("r2", "nwrmsle", "mae"):
        best = metrics.get(f"best_{name}")
        best_text = f"{best:10.4f}" if best is not None else f"{'-':>10}"
        print(f"{name:10}{metrics[name]:10.4f}{metrics[f'baseline_{name}']:10.4f}{best_text}")


def _where_to_look(settings: Settings, experiment_id: str, run_id: str) -> str:
    if settings.tracking.remote:
        return f"see it at {settings.tracking.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (
        f"see it with: mlflow ui --backend-store-uri {settings.tracking.uri}  "
        f"then http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    )


def _benchmark(args: argparse.Namespace) -> int:
    from cd4ml.benchmark import benchmark_pipeline

    settings = _settings(args)
    print(benchmark_pipeline(settings, args.data))
    return EXIT_OK


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
            f"view it with: python3 -m pstats {path}  (then: sort cumtime, stats 25)",
            file=sys.stderr,
        )


def run(argv: Sequence[str] | None = None, exit: Callable[[int], Any] = sys.exit) -> None:
    """Entry point for run_python_script.py."""
    exit(main(argv))
