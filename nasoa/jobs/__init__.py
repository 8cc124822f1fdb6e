"""The jobs: short functions that wire the plain packages to the Ray adapters of :mod:`nasoa.cluster`.

Each ``launch/*.py`` entry point composes its Hydra config and calls one ``run_*_job(cfg, run_dir)`` here.
"""
