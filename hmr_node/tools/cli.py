"""``hmr``: the command line of hmr_node (no ROS needed).

Each tool module exposes ``add_parser(subparsers)`` and sets ``func`` on its parser; benchmark
modules expose ``add_bench_parser(bench_subparsers)`` under ``hmr bench``. Modules are imported
only when present, so the CLI grows with the package.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# top-level commands: (module, attribute)
TOOL_MODULES = (
    "hmr_node.tools.scenario",
    "hmr_node.tools.train",
    "hmr_node.tools.replay",
    "hmr_node.tools.export",
)
BENCH_MODULES = (
    "hmr_node.tools.bench_body",
    "hmr_node.tools.bench_data",
    "hmr_node.tools.bench_scorehmr",
)


def _optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # only a missing tool module itself is optional
        if exc.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hmr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in TOOL_MODULES:
        mod = _optional_module(name)
        if mod is not None and hasattr(mod, "add_parser"):
            mod.add_parser(sub)
    bench = sub.add_parser("bench", help="benchmarks that write JSON reports")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK")
    for name in BENCH_MODULES:
        mod = _optional_module(name)
        if mod is not None and hasattr(mod, "add_bench_parser"):
            mod.add_bench_parser(bench_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return int(func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"hmr: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
