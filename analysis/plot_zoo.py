"""Draw a zoo against its reference models from its manifest alone: ``python analysis/plot_zoo.py ZOO_DIR``.

Writes ``zoo.png`` (top-1 on the source task against training step time, the front marked) next to the manifest,
or to ``--out``.
"""

import argparse
from pathlib import Path

from nasoa.analysis.zoo_plot import plot_zoo
from nasoa.zoo import read_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("zoo_dir", type=Path)
    parser.add_argument("--device", default=None, help="profile device (default: each entry's first)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or args.zoo_dir / "zoo.png"
    print(plot_zoo(read_manifest(args.zoo_dir), out, args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
