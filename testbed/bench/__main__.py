"""`python -m testbed.bench [--small] [--case NAME]... [--output docs/performance.md]` (`make bench`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed.bench.performance_page import render, summary
from testbed.bench.runner import CASE_NAMES, REPO_ROOT, run_bench
from testbed.bench.sizes import FULL, SMALL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench", description=__doc__)
    parser.add_argument("--small", action="store_true", help="toy sizes: checks the harness in seconds")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "docs" / "performance.md", help="where to write the performance page"
    )
    parser.add_argument("--storage", help="an Azurite connection string to use instead of starting one")
    parser.add_argument(
        "--case",
        action="append",
        choices=CASE_NAMES,
        help="run only this case (repeatable), for development; the page then holds only its figures",
    )
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    results = run_bench(SMALL if args.small else FULL, storage=args.storage, progress=progress, only=args.case)
    command = "python -m testbed.bench --small" if args.small else "make bench"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results, command=command), encoding="utf-8")
    print(summary(results))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
