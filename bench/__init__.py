"""Benchmarks for Tenantry, run with `make bench` (`python -m bench [--only NAME] [--quick]`).

Every public module in this package (no leading underscore) is a benchmark with a
`run(options: Options) -> None` function. They print tables with ratios against a baseline
measured in the same run, and never fail on time. Helpers live in `_`-prefixed modules.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Options:
    quick: bool = False
    client: str = "auto"  # "auto" (wrk if available), "wrk" or "python"


def discover() -> list[str]:
    """Names of the benchmark modules, in alphabetical order."""
    return sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
