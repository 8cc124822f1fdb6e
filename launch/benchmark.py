"""Benchmarks: ``python launch/benchmark.py [--quick] [key=value ...]`` (see conf/benchmark.yaml).

``--quick`` stands for the Hydra override ``mode=quick``: every benchmark small, on a tiny zoo.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from nasoa.bench.job import run_benchmark


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark")
def main(cfg: DictConfig) -> None:
    run_benchmark(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    sys.argv = [("mode=quick" if a == "--quick" else a) for a in sys.argv]
    main()
