"""Build the model zoo: ``python launch/build_zoo.py [zoo.search_dir=...] [key=value ...]`` (conf/zoo.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nasoa.dist.zoo_job import run_zoo_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="zoo")
def main(cfg: DictConfig) -> None:
    run_zoo_job(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
