"""The probe command: the scores a client sends to the regime service as ``probes`` (no Ray).

    python -m nasoa.jobs.probe --zoo-root <zoo> --root <ImageFolder> --resolution 32 [--json out.json]
    python -m nasoa.jobs.probe --zoo-root <zoo> --task "clipart:set=animals,resolution=48"

It prints ``{"probes": {"scores": {zoo key: top-1}, "seconds": s}, "detail": {...}}``; the ``probes`` object is
what a ``/v1/regime`` query takes as its ``probes`` (the seconds are taken off the budget).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nasoa.common.io import write_json_atomic
from nasoa.data import make_task
from nasoa.train.probe import METHODS, probe_folder, probe_zoo
from nasoa.zoo.store import Zoo


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: probe a zoo on an image folder or a task spec, print (or write) the scores as JSON."""
    p = argparse.ArgumentParser(prog="python -m nasoa.jobs.probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--zoo-root", required=True)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", help="an ImageFolder tree")
    where.add_argument("--task", help="a task spec (nasoa.data.make_task)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--sample", type=int, default=128)
    p.add_argument("--val-sample", type=int, default=64)
    p.add_argument("--method", choices=METHODS, default="ncm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", dest="json_out", default=None, help="write the result here too")
    args = p.parse_args(argv)
    zoo = Zoo(args.zoo_root)
    kw = {"sample": args.sample, "val_sample": args.val_sample, "method": args.method, "seed": args.seed}
    kw["cache_dir"] = args.cache_dir
    if args.root:
        result = probe_folder(zoo, args.root, args.resolution, args.channels, **kw)
    else:
        result = probe_zoo(zoo, make_task(args.task), **kw)
    out = {"probes": {"scores": result.scores, "seconds": result.seconds}, "detail": result.to_dict()}
    print(json.dumps(out, indent=2))
    if args.json_out:
        write_json_atomic(out, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
