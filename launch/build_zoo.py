"""Build the model zoo: ``python launch/build_zoo.py [search_dir=<search run>] [+cluster=aws]`` (conf/zoo.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.zoo import run_zoo_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="zoo")
def main(cfg: DictConfig) -> None:
    run_zoo_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
