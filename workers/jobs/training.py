"""Shared pieces of the reward and PPO jobs: params -> configs, live curves, version lookup."""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ModelKind, ModelStatus, ModelVersion
from app.models_registry import service as registry

T = TypeVar("T")


class JobParamError(ValueError):
    """A run parameter that cannot be used; the run fails with this message."""


def number(params: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    """A float parameter within [lo, hi]."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise JobParamError(f"param {name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise JobParamError(f"param {name}={value} must be between {lo} and {hi}")
    return value


def flag(params: dict[str, Any], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return bool(raw)


def config_from(params: dict[str, Any], cls: type[T]) -> T:
    """The run's parameter model (ml/params.py) from its stored params; JobParamError names
    the bad fields (runs queued before a bound changed fail with a clear message)."""
    from ml.params import ParamError, parse

    try:
        # every T here is a RunParams subclass with a `kind` ClassVar; parse returns that class
        return parse(cls.kind, params)  # type: ignore[attr-defined,return-value]
    except ParamError as exc:
        raise JobParamError(f"invalid params: {exc}") from None


def compute_placement(cfg: Any, settings: Any) -> Any:
    """Device and dtype of a training run: the run's override, else the worker's settings."""
    from ml.device import DeviceError, placement

    try:
        return placement(cfg.device or settings.device, cfg.dtype or settings.dtype)
    except DeviceError as exc:
        raise JobParamError(str(exc)) from None


def compute_metrics(place: Any, processes: int, cfg: Any) -> dict[str, Any]:
    """What a run records about where it ran (shown on the run page)."""
    return {
        "device": place.device,
        "dtype": place.dtype,
        "processes": processes,
        "lora_r": getattr(cfg, "lora_r", 0),
    }


def clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (PostgreSQL JSONB rejects NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


#: logged values that are bookkeeping, not curves worth drawing
NOT_CURVES = frozenset({"step", "epoch", "episode"})


def series(history: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """[{step, a, b}, ...] -> {a: [[step, a], ...], b: ...} (finite numbers only)."""
    out: dict[str, list[list[float]]] = {}
    for row in history:
        step = row.get("step")
        if not isinstance(step, int | float):
            continue
        for key, value in row.items():
            if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                out.setdefault(key, []).append([step, float(value)])
    return out


class CurveProgress:
    """Progress callback for helper-1's trainers: forwards to ctx.progress with live curves."""

    def __init__(self, ctx: Any, keys: dict[str, str]) -> None:
        self.ctx = ctx
        self.keys = {k: v for k, v in keys.items() if v not in NOT_CURVES}
        self.curves: dict[str, list[list[float]]] = {}
        self._lock = threading.Lock()

    def __call__(self, step: int, total: int, logs: dict[str, Any] | None = None) -> None:
        picked = {}
        for key, value in (logs or {}).items():
            name = self.keys.get(key)
            if name and isinstance(value, (int, float)) and math.isfinite(value):
                picked[name] = float(value)
        if not picked:
            self.ctx.progress(step, total)
            return
        with self._lock:
            for name, value in picked.items():
                self.curves.setdefault(name, []).append([step, value])
            snapshot = {k: list(v) for k, v in self.curves.items()}
        # nested, so the run's metrics table keeps showing only the final scalars
        self.ctx.progress(step, total, {"live": picked, "curves": snapshot})


def expand_ranges(ranges: list[list[int]]) -> list[int]:
    return [i for a, b in ranges for i in range(a, b + 1)]


def ids_digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def policy_version(session: Session, ref: Any = None) -> ModelVersion:
    """The policy version named by `ref`, else the active one."""
    if ref not in (None, ""):
        mv = registry.get_version(session, ref)
        if mv.kind != ModelKind.policy:
            raise JobParamError(f"version {mv.version} is a {mv.kind.value} model, not a policy")
    else:
        active = registry.active_version(session, ModelKind.policy)
        if active is None:
            raise JobParamError("no active policy version; activate one on /admin/models")
        mv = active
    if mv.status in (ModelStatus.training, ModelStatus.failed):
        raise JobParamError(f"policy version {mv.version} is {mv.status.value}")
    return mv


def reward_version(session: Session, ref: Any = None) -> ModelVersion:
    """The reward version named by `ref`, else the newest usable (ready or active) one."""
    if ref not in (None, ""):
        mv = registry.get_version(session, ref)
        if mv.kind != ModelKind.reward:
            raise JobParamError(f"version {mv.version} is a {mv.kind.value} model, not a reward")
        if mv.status in (ModelStatus.training, ModelStatus.failed):
            raise JobParamError(f"reward version {mv.version} is {mv.status.value}")
        return mv
    newest = newest_reward_version(session)
    if newest is None:
        raise JobParamError("no reward model is ready; run a reward run first")
    mv = newest
    return mv


def newest_reward_version(session: Session) -> ModelVersion | None:
    """The newest reward version that is ready or active (what PPO uses by default)."""
    return session.scalar(
        select(ModelVersion)
        .where(
            ModelVersion.kind == ModelKind.reward,
            ModelVersion.status.in_([ModelStatus.ready, ModelStatus.active]),
        )
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )
