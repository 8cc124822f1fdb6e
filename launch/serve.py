"""The regime service: ``python launch/serve.py zoo_root=<zoo dir>`` (conf/serve.yaml); Ctrl-C stops it."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nasoa.dist.service_app import serve_from_config


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    serve_from_config(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
