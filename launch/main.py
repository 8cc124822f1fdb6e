"""The main job on its embedded defaults: ``python launch/main.py`` (the offline search, for now)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nasoa.dist.search_job import run_search_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    run_search_job(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
