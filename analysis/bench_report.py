"""Plots and a Markdown report from a benchmark run's JSON results: ``python analysis/bench_report.py RUN_DIR``.

Writes ``report.md``, ``accuracy_vs_budget.png`` (mean top-1 against the time budget, one line per method) and
``zoo_efficiency.png`` (source top-1 against measured training step time) into the run folder.
"""

import argparse
from pathlib import Path

from nasoa.analysis.bench_report import write_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a launch/benchmark.py output folder")
    args = parser.parse_args(argv)
    if not any(
        (args.run_dir / f"{n}.json").exists()
        for n in ("regime_quality", "zoo_efficiency", "search_efficiency", "serving")
    ):
        parser.error(f"{args.run_dir} holds no benchmark results (regime_quality.json, ...)")
    print(write_report(args.run_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
