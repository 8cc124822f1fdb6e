"""A stream of new tasks through the regime service: ``python launch/stream.py zoo_root=<zoo>`` (conf/stream.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.stream import run_stream_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="stream")
def main(cfg: DictConfig) -> None:
    run_stream_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
