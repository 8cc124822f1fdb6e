"""Draw a search run's candidates and Pareto front: ``python analysis/plot_search.py RUN_DIR [--out PNG]``."""

import argparse
from pathlib import Path

from nasoa.analysis.pareto import plot_search
from nasoa.search.archive import ParetoArchive


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    archive = ParetoArchive.load(args.run_dir)
    if not len(archive):
        raise SystemExit(f"{args.run_dir}: no archive.parquet with results")
    print(plot_search(archive.records, args.out or args.run_dir / "pareto.png", title=args.run_dir.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
