"""`python -m bench [--only NAME] [--quick] [--client auto|wrk|python]`: run the benchmarks."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from rich.console import Console

from bench import ROOT, Options, discover


def main(argv: list[str] | None = None) -> int:
    names = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        choices=names,
        action="append",
        metavar="NAME",
        help=f"run only this benchmark (repeatable); one of: {', '.join(names)}",
    )
    parser.add_argument("--quick", action="store_true", help="shorter measurements (a smoke run)")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when installed (auto), or the Python fallback",
    )
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=150)
    options = Options(quick=args.quick, client=args.client)
    failed = []
    for name in args.only or names:
        console.rule(f"[bold]bench: {name}[/bold]" + (" (quick)" if args.quick else ""))
        started = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").run(options)
        except KeyboardInterrupt:
            raise
        except Exception:
            console.print(f"[red]bench {name} crashed:[/red]\n{traceback.format_exc()}")
            failed.append(name)
        console.print(f"[dim]{name}: {time.monotonic() - started:.0f} s[/dim]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
