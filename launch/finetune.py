"""Fine-tune a zoo model on a task under a deadline: ``python launch/finetune.py zoo_root=... task=... budget_s=30``."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.config import job_config, register_configs
from nasoa.jobs.finetune import run_finetune_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="finetune")
def main(cfg: DictConfig) -> None:
    run_finetune_job(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
