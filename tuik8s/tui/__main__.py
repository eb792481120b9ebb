"""`python -m tuik8s.tui [--context C] [-n NS | -A]` until the CLI wires `tuik8s tui`."""

from __future__ import annotations

import argparse
import sys

from tuik8s.tui.app import run_tui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuik8s.tui", description="The tuik8s terminal UI.")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace to show (default: the context's)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="show every namespace")
    args = parser.parse_args(argv)
    return run_tui(args.context, "" if args.all_namespaces else args.namespace)


if __name__ == "__main__":
    sys.exit(main())
