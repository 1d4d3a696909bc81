"""Run every benchmark (`python -m benchmarks [name ...]`), e.g. `python -m benchmarks decision`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).parent
    names = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)])
                   if m.name.startswith("bench_"))
    wanted = sys.argv[1:] or names
    for name in wanted:
        if name not in names:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(names)}")
        print(f"\n== {name} ==", flush=True)
        sys.argv = [f"bench_{name}"]
        importlib.import_module(f"benchmarks.bench_{name}").main()


main()
