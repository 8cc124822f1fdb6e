"""Benchmarks: ``python launch/benchmark.py [--quick] [key=value ...]`` (see conf/benchmark.yaml).

``--quick`` stands for the Hydra override ``experiment=quick``: every benchmark small, on a tiny zoo.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nasoa.jobs.benchmark.job import run_benchmark
from nasoa.jobs.config import job_config, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark")
def main(cfg: DictConfig) -> None:
    run_benchmark(job_config(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    sys.argv = [("experiment=quick" if a == "--quick" else a) for a in sys.argv]
    main()
