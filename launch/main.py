"""The main job on its embedded defaults: search, zoo, past-task experience, then the service and a task stream.

``python launch/main.py [--out DIR] [--quick] [--stage-override STAGE:KEY=VALUE ...] [--dry-run]``
"""

import argparse
import logging
import sys
import time
from pathlib import Path

QUICK = {  # a smaller run of every stage, for a first look (about 5 minutes on a 2-core CPU)
    "search": [
        "search.block.pop_size=6",
        "search.block.generations=2",
        "search.macro.pop_size=6",
        "search.macro.generations=2",
        "proxy.train_steps=20",
    ],
    "zoo": ["pretrain.epochs=2", "zoo.etnas=[ET-NAS-A,ET-NAS-B]", "pretrain.profile_batch_sizes=[16,32]"],
    "collect": ["collect.trials_per_task=3", "collect.max_trial_s=10"],
    "stream": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=f"outputs/main/{time.strftime('%Y-%m-%d_%H-%M-%S')}", help="output folder")
    parser.add_argument("--quick", action="store_true", help="smaller stages (a first look in minutes)")
    parser.add_argument(
        "--stage-override",
        "-s",
        action="append",
        default=[],
        metavar="STAGE:KEY=VALUE",
        help="a Hydra override for one stage, e.g. search:search.seed=1 (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="compose and print the stage configs, run nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from nasoa.dist.pipeline import STAGES, run_pipeline, stage_configs

    overrides = {stage: list(QUICK[stage]) if args.quick else [] for stage in STAGES}
    for item in args.stage_override:
        stage, _, override = item.partition(":")
        if stage not in STAGES or not override:
            parser.error(f"--stage-override wants STAGE:KEY=VALUE with STAGE in {STAGES}, got {item!r}")
        overrides[stage].append(override)
    if args.dry_run:
        import yaml

        for stage, cfg in stage_configs(Path(args.out).resolve(), overrides).items():
            print(f"# --- {stage} ---\n{yaml.safe_dump(cfg, sort_keys=False)}")
        return 0
    run_pipeline(args.out, overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
