#!/usr/bin/env python3
"""The workshop's command line: python3 run_python_script.py <command> --help."""

import sys

from cd4ml.errors import MissingPackage

if __name__ == "__main__":
    try:
        from cd4ml.cli import run
    except ModuleNotFoundError as err:  # not the project's environment: say so in one line
        missing = MissingPackage(err, sys.executable)
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(missing.exit_code)
    run()
