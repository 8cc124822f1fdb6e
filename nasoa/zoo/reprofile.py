"""Profile an existing zoo on this machine's device and add the profiles to its manifest (per device).

``python -m nasoa.zoo.reprofile ZOO_DIR [--device cuda] [--batch-sizes 16 32 64] [--resolution 32]``: run it on a
GPU node to give the same zoo GPU step times beside its CPU ones; the regime service then costs regimes with the
profiles of the device it is told to use (``service.profile_device``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import torch

from nasoa.train.recipe import Recipe
from nasoa.zoo.pretrain import profile_model
from nasoa.zoo.store import Zoo

log = logging.getLogger("nasoa.zoo")


def reprofile(zoo: Zoo, recipe: Recipe, keys: list[str] | None = None, resolution: int | None = None) -> list[str]:
    """Profile the chosen entries (all by default) as ``recipe`` says and rewrite the manifest; returns the keys.

    Each entry is profiled at ``resolution``, or at its own pretraining resolution when None.
    """
    done = []
    for key in keys or zoo.keys():
        entry = zoo.get(key)
        model = zoo.load(key, device="cpu")
        at = dataclasses.replace(recipe, resolution=resolution or entry.resolution)
        profiles = profile_model(model, at, entry.num_stages)
        zoo.update([entry.with_profiles(profiles)])
        log.info("%s: %d profiles on %s", key, len(profiles), profiles[0].device if profiles else "-")
        done.append(key)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zoo_dir")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--resolution", type=int, default=0, help="0: each entry's pretraining resolution")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--no-frozen", action="store_true", help="profile only with nothing frozen")
    parser.add_argument("--keys", nargs="*", default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads: as many as each fine-tune will use (the zoo build: 1)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    torch.set_num_threads(args.threads)  # step times depend on it: profile as the fine-tunes will run
    recipe = Recipe(
        profile_batch_sizes=tuple(args.batch_sizes),
        profile_warmup=args.warmup,
        profile_steps=args.steps,
        profile_frozen=not args.no_frozen,
        device=args.device,
    )
    reprofile(Zoo(args.zoo_dir), recipe, args.keys, args.resolution or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
