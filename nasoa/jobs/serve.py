"""The regime service job: ``launch/serve.py`` runs the service on this machine's Ray until it is stopped."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasoa.cluster.serve_app import start_service, stop_service
from nasoa.cluster.session import ray_session, stop_signals
from nasoa.online.service import ServiceConfig

log = logging.getLogger("nasoa.service")


def service_config(cfg: Mapping[str, Any], run_dir: str | Path) -> ServiceConfig:
    """The regime service a composed config describes (``state_dir`` defaults to ``<run dir>/state``)."""
    return ServiceConfig(
        zoo_root=str(Path(cfg["zoo_root"]).resolve()),
        state_dir=str(Path(cfg.get("state_dir") or Path(run_dir) / "state").resolve()),
        service=cfg["service"],
        predictor=cfg["predictor"],
        regime_space=cfg["regime_space"],
    )


def run_serve_job(cfg: Mapping[str, Any], run_dir: str | Path) -> None:
    """Serve on ``service.host:port`` until SIGTERM or SIGINT (Ctrl-C), then stop cleanly and return.

    In-flight requests finish, Serve and the adaptation actor stop, Ray shuts down: the process exits 0.
    """
    with ray_session(cfg["runtime"]), stop_signals() as stop:
        try:
            start_service(service_config(cfg, run_dir))
            stop.wait()
        finally:
            stop_service()
    log.info("regime service stopped (%s)", stop.signal)
