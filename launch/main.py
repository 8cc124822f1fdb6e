"""The main job on its embedded defaults: search, zoo, past-task experience, then the service and a task stream.

``python launch/main.py [--quick] [overrides.zoo='[zoo.front_members=3]'] [dry_run=true]`` (conf/main.yaml);
``--quick`` stands for ``experiment=quick``.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.pipeline import run_main_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="main")
def main(cfg: DictConfig) -> None:
    run_main_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    sys.argv = [("experiment=quick" if a == "--quick" else a) for a in sys.argv]
    main()
