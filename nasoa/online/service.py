"""The online-adaptation service: owns the experience store, the predictor and the regime generator.

A plain class (no Ray, no HTTP): :mod:`nasoa.cluster.serve_app` runs one as a Ray actor behind Ray Serve.
Errors are returned as ``{"error": status, "detail": message}`` rather than raised, so that they cross
the actor boundary as data and the HTTP layer answers 4xx with the message.
On start the predictor is fitted on every stored row; each acknowledged feedback is on disk (journal
fsync) before the answer, so nothing acknowledged is lost across a restart or a crash.

Read-only copies: :meth:`AdaptationService.replica_spec` and :meth:`AdaptationService.snapshot` give what a
reader (a Serve replica) needs to build its own generator (:func:`make_generator`) and keep its predictor in step
with this one (:attr:`AdaptationService.version` changes with every learned feedback); :func:`propose_answer` on
such a copy answers exactly what :meth:`AdaptationService.propose` would.

A query may bring probe scores (``probes``, with the seconds they took, counted against the budget) or a data
reference: an ImageFolder root that the service probes itself, only under ``service.data_roots``
(:func:`allowed_data_root`; anything else is refused with 403). Probing needs torch: the Serve replica probes
(``nasoa.train.probe``), this module only checks the root.
"""

from __future__ import annotations

import math
import os
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasoa.online.experience import ExperienceStore, experience_row
from nasoa.online.generator import NoFeasibleRegime, RegimeGenerator, as_task_meta
from nasoa.online.predictor import Predictor, PredictorSettings
from nasoa.online.regime import CostModel, DeviceCost, Regime, RegimeSpace
from nasoa.zoo.manifest import ZooEntry, read_manifest


@dataclass(frozen=True)
class ServiceSettings:
    """The ``service`` config: how the HTTP side behaves and how regimes are costed."""

    host: str = "127.0.0.1"
    port: int = 8000
    auth_token: str | None = None  # when set, state-changing endpoints need "Authorization: Bearer <token>"
    max_body_bytes: int = 65536
    replicas: int = 1
    profile_device: str | None = None  # zoo profiles that cost regimes; default: the first the zoo has
    device_cost: dict = field(default_factory=dict)
    overhead_s: float = 1.0
    data_roots: list[str] = field(default_factory=list)  # folders whose ImageFolder trees queries may name as data
    probe_sample: int = 128  # training images of a data reference's probe
    probe_val_sample: int = 64  # validation images of it
    probe_fraction: float = 0.2  # share of the query's budget a data reference's probe may spend


@dataclass(frozen=True)
class ServiceConfig:
    """Everything one regime service needs: its zoo and state folders, its settings, predictor and regime space."""

    zoo_root: str
    state_dir: str
    service: ServiceSettings = field(default_factory=ServiceSettings)
    predictor: PredictorSettings = field(default_factory=PredictorSettings)
    regime_space: RegimeSpace = field(default_factory=RegimeSpace)


def _error(status: int, detail: str) -> dict[str, Any]:
    return {"error": status, "detail": detail}


def make_generator(
    config: ServiceConfig, entries: Sequence[ZooEntry], device: str, predictor: Predictor, quiet: bool = False
) -> RegimeGenerator:
    """The service's regime generator over ``entries`` on ``device`` (``quiet``: no warning for left-out entries).

    The choice's settings (``kappa``, ``max_contrast_std``, ...) are the predictor config's ``generator``.
    """
    settings = config.service
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        return RegimeGenerator(
            list(entries),
            predictor,
            space=config.regime_space,
            device=device,
            device_cost=DeviceCost(**settings.device_cost) if settings.device_cost else None,
            cost_model=CostModel(overhead_s=settings.overhead_s),
            **dict(config.predictor.generator),
        )


def propose_answer(
    generator: RegimeGenerator,
    task: Mapping[str, Any],
    budget_s: float,
    top_k: int = 3,
    probes: Mapping[str, float] | None = None,
    probe_s: float = 0.0,
) -> dict:
    """The best regime for ``task`` within ``budget_s`` as a JSON-able dict, or an error dict (see module doc)."""
    try:
        answer = generator.propose(as_task_meta(task), budget_s, top_k=top_k, probes=probes, probe_s=probe_s)
    except NoFeasibleRegime as err:
        return _error(422, str(err)) | {"cheapest_time_s": err.cheapest_time_s}
    except ValueError as err:
        return _error(422, str(err))
    return answer.to_dict()


def allowed_data_root(root: str, allowed: Sequence[str]) -> Path:
    """``root`` resolved, if it lies under one of the ``allowed`` folders (symlinks resolved on both sides).

    Raises:
        PermissionError: If it does not (the message names what is allowed, or that nothing is).
    """
    if not allowed:
        raise PermissionError("this service reads no data: give probe scores instead (service.data_roots is empty)")
    path = Path(root).expanduser().resolve()
    for base in allowed:
        base_path = Path(base).expanduser().resolve()
        if path == base_path or base_path in path.parents:
            return path
    raise PermissionError(f"data root {root!r} is not under the folders this service may read ({len(allowed)})")


class AdaptationService:
    """One writer of the experience store; proposes regimes and learns from feedback."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.started = time.time()
        self.entries = {e.key: e for e in read_manifest(config.zoo_root)}
        devices = sorted({d for e in self.entries.values() for d in e.devices()})
        if not devices:
            raise ValueError(f"zoo {config.zoo_root} has no profiled entries")
        self.device = config.service.profile_device or devices[0]
        Path(config.state_dir).mkdir(parents=True, exist_ok=True)
        self.store = ExperienceStore(Path(config.state_dir) / "experience")
        self.generator = make_generator(config, list(self.entries.values()), self.device, config.predictor.create())
        self.fitted_on = self.generator.fit(self.store.rows()) if len(self.store) else 0
        self.feedback_count = 0
        self.last_update_s = math.nan
        self._instance = uuid.uuid4().hex
        self._updates = 0

    @property
    def version(self) -> tuple[str, int]:
        """Names the predictor's current state: (this object's random id, updates since start)."""
        return (self._instance, self._updates)

    def propose(
        self,
        task: Mapping[str, Any],
        budget_s: float,
        top_k: int = 3,
        probes: Mapping[str, float] | None = None,
        probe_s: float = 0.0,
    ) -> dict[str, Any]:
        """The best regime for ``task`` within ``budget_s`` (``probe_s`` of it spent on ``probes``) or an error."""
        return propose_answer(self.generator, task, budget_s, top_k, probes, probe_s)

    def replica_spec(self) -> dict[str, Any]:
        """What a read-only copy needs besides the predictor: config, zoo entries and device (see make_generator)."""
        return {"config": self.config, "entries": list(self.entries.values()), "device": self.device}

    def snapshot(self, known: Any = None) -> dict[str, Any] | None:
        """None if ``known`` is the current :attr:`version`, else its predictor's JSON-able state and learned speed."""
        version = self.version
        if known is not None and tuple(known) == version:
            return None
        state = self.generator.predictor.to_state()
        return {"version": version, "predictor": state, "speed": self.generator.speed}

    def feedback(
        self,
        task: Mapping[str, Any],
        regime: Mapping[str, Any],
        result: Mapping[str, Any],
        budget_s: float | None = None,
        feedback_id: str | None = None,
        source: str = "feedback",
        probes: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Store a finished run (durably, once per ``feedback_id``) and update the predictor with it.

        ``regime`` is the regime run (its planned ``steps`` included); ``result`` what it achieved (``accuracy``,
        ``time_s``, and when known ``finished``, ``stopped_by``, ``steps``, ``epochs_done``, ``step_ms``, ``curve``);
        ``probes`` the probe scores the regime was chosen with.
        """
        try:
            meta = as_task_meta(task)
            reg = Regime.from_dict(regime)
        except (ValueError, TypeError) as err:
            return _error(422, str(err))
        entry = self.entries.get(reg.model)
        if entry is None:
            return _error(404, f"unknown zoo key {reg.model!r}; GET /v1/zoo lists the models")
        feedback_id = feedback_id or uuid.uuid4().hex
        try:
            row = experience_row(
                meta,
                reg,
                entry,
                accuracy=result.get("accuracy"),
                time_s=result.get("time_s"),
                budget_s=math.nan if budget_s is None else budget_s,
                finished=bool(result.get("finished", True)),
                stopped_by=str(result.get("stopped_by", "done")),
                source=source,
                feedback_id=feedback_id,
                device=self.device,
                steps=result.get("steps"),
                epochs_done=result.get("epochs_done"),
                step_ms=result.get("step_ms"),
                curve=result.get("curve") or (),
                probes=probes,
            )
            self.generator.row_samples(row)  # what the predictor would learn: refused now, not after storing
        except (ValueError, TypeError) as err:
            return _error(422, str(err))
        stored = self.store.append(row)
        out: dict[str, Any] = {"stored": stored, "duplicate": not stored, "feedback_id": feedback_id}
        if stored:
            out |= self._learn(row)
        return out | {"experience_size": len(self.store)}

    def _learn(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Update the predictor with a stored row; a failure is reported, not raised (the row is kept)."""
        self._updates += 1  # first: even a failed update may have touched the predictor
        try:
            report = self.generator.learn(row)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            warnings.warn(f"feedback {row['feedback_id']} stored but not learned: {err}", RuntimeWarning, stacklevel=2)
            return {"learned": False, "detail": f"stored, not learned: {err}"}
        self.feedback_count += 1
        self.last_update_s = report.update_s
        return {
            "learned": True,
            "update_s": report.update_s,
            "predicted_before": report.predicted_before,
            "predicted_after": report.predicted_after,
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_s": time.time() - self.started,
            "zoo_size": len(self.entries),
            "experience_size": len(self.store),
            "fitted_on_start": self.fitted_on,
            "feedback_since_start": self.feedback_count,
            "last_update_s": self.last_update_s,
            "device": self.device,
            "predictor": self.config.predictor.name,
        }

    def has_feedback(self, feedback_id: str) -> bool:
        return feedback_id in self.store

    def zoo(self) -> list[dict[str, Any]]:
        out = []
        for e in self.entries.values():
            row = {"key": e.key, "name": e.name, "kind": e.kind, "arch": e.arch, "top1": e.top1, "params": e.params}
            row |= {"macs": e.macs, "num_stages": e.num_stages, "source": e.source, "devices": e.devices()}
            out.append(row)
        return out

    def close(self) -> None:
        self.store.close()
