"""Offline NAS: ``python launch/search.py [+cluster=aws] [key=value ...]`` (see conf/search.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.search import run_search_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    run_search_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
