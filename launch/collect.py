"""Past-task experience: ``python launch/collect.py zoo_root=<zoo>`` (see conf/collect.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.collect import run_collect_job
from nasoa.jobs.config import job_config, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="collect")
def main(cfg: DictConfig) -> None:
    run_collect_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
