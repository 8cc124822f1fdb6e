"""The regime service: ``python launch/serve.py zoo_root=<zoo dir>`` (conf/serve.yaml); Ctrl-C stops it."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.serve import run_serve_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    run_serve_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
