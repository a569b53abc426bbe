#!/usr/bin/env python3
"""The workshop's command line: python3 run_python_script.py <command> --help."""

from cd4ml.cli import run

if __name__ == "__main__":
    run()
