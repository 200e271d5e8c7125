"""`ppo` runs: the active policy, a frozen reference copy, the newest reward model and a value
model initialised from it -> TRL PPO on database prompts -> a new policy version (ready), promoted
automatically when its held-out reward improved and its KL to the reference stays in bound."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from app.models import ModelKind, ModelStatus
from app.models_registry import service as registry
from workers.arena import gate_mode, start_arena_gate
from workers.context import JobContext
from workers.datasets import ppo_prompts
from workers.jobs.training import (
    CurveProgress,
    JobParamError,
    clean,
    config_from,
    policy_version,
    reward_version,
    series,
)


def promotion(before: float, after: float, kl: float, kl_max: float) -> tuple[bool, str]:
    """Whether a PPO result may replace the policy it started from, and why (not)."""
    if not all(map(math.isfinite, (before, after, kl))):
        return False, "no held-out estimate (no held-out prompts or non-finite values)"
    if after <= before:
        return False, f"held-out reward did not improve ({before:.4f} -> {after:.4f})"
    if kl > kl_max:
        return False, f"KL to reference {kl:.4f} exceeds the bound {kl_max:g}"
    return True, f"held-out reward {before:.4f} -> {after:.4f}, KL {kl:.4f} <= {kl_max:g}"


def run(ctx: JobContext) -> dict[str, Any]:
    """Fine-tune the active policy with PPO; returns the run's metrics."""
    from ml.params import PPOParams
    from ml.ppo import CURVE_KEYS, train_ppo

    s = ctx.settings
    cfg = config_from(ctx.params, PPOParams)
    heldout_fraction = cfg.heldout_fraction
    max_prompts, max_heldout = cfg.max_prompts, cfg.max_heldout
    kl_max = s.ppo_kl_max if cfg.kl_max is None else cfg.kl_max
    auto_promote = cfg.auto_promote
    promote_by = gate_mode(ctx.params, s)
    with ctx.session() as session:
        policy = policy_version(session, cfg.policy_version_id)
        reward = reward_version(session, cfg.reward_version_id)
        start = (policy.id, policy.version, policy.path, policy.base_model or policy.path)
        rm = (reward.id, reward.version, reward.path)
        train, heldout = ppo_prompts(session, heldout_fraction, max_prompts, max_heldout)
    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    if len(train) < batch:
        raise JobParamError(
            f"{len(train)} training prompts in the database; PPO needs at least a batch ({batch})"
        )
    ctx.log(
        f"policy {start[1]} + reward {rm[1]}: {len(train)} train / {len(heldout)} held-out "
        f"prompts, {cfg.num_ppo_steps} steps x {batch}, kl_coef {cfg.kl_coef}"
    )
    name, path = registry.new_version_path(ModelKind.policy)
    with ctx.session() as session:
        mv = registry.register_version(
            session,
            ModelKind.policy,
            path,
            status=ModelStatus.training,
            parent_id=start[0],
            base_model=start[3],
            metrics={"reward_version_id": rm[0], "run_id": ctx.run_id},
            run_id=ctx.run_id,
            version=name,
        )
        version_id = mv.id
    started = time.monotonic()
    out = train_ppo(
        Path(start[2]),
        Path(rm[2]),
        train,
        heldout,
        path,
        cfg,
        CurveProgress(ctx, dict(CURVE_KEYS)),
        ctx.should_stop,
    )
    seconds = time.monotonic() - started
    curves = series(out.pop("curves", []))
    before, after = out["heldout_reward_before"], out["heldout_reward_after"]
    ok, reason = promotion(before, after, out["kl_to_ref"], kl_max)
    result = {
        **out,
        "heldout_reward_delta": after - before,
        "kl_max": kl_max,
        "train_seconds": round(seconds, 2),
        "policy_version_id": start[0],
        "reward_version_id": rm[0],
        "heldout_fraction": heldout_fraction,
        "config": cfg.model_dump(mode="json"),
        "promotable": ok,
        "promotion_reason": reason,
    }
    with ctx.session() as session:
        registry.set_status(
            session, version_id, ModelStatus.ready, metrics=clean({**result, "curves": curves})
        )
    ctx.log(f"{name}: {reason} ({seconds:.1f}s)")
    promoted = False
    if auto_promote and (promote_by == "arena" or (promote_by == "both" and ok)):
        reason = start_arena_gate(ctx, version_id, reason, promote_by)
    elif ok and auto_promote:
        promoted, reason = _promote(ctx, version_id, start[0], reason)
    elif ok:
        reason += "; auto-promotion off: left ready for an admin"
    else:
        reason += "; left ready for an admin"
    with ctx.session() as session:
        _note(session, version_id, promoted, reason)
    return clean(
        {
            **result,
            "curves": curves,
            "promoted": promoted,
            "promotion_reason": reason,
            "policy_version_new_id": version_id,
            "policy_version_new": name,
        }
    )


def _note(session: Any, version_id: int, promoted: bool, reason: str) -> None:
    """Record the promotion outcome on the version (whatever its status now)."""
    mv = registry.get_version(session, version_id)
    mv.metrics = {**(mv.metrics or {}), "promoted": promoted, "promotion_reason": reason}
    session.flush()


def _promote(ctx: JobContext, version_id: int, started_from: int, reason: str) -> tuple[bool, str]:
    """Activate the new version unless an admin changed the active policy meanwhile."""
    with ctx.session() as session:
        active = registry.active_version(session, ModelKind.policy)
        if active is not None and active.id != started_from:
            return False, f"{reason}; not promoted: the active policy changed during the run"
        try:
            registry.activate(session, version_id)
        except registry.RegistryError as exc:
            ctx.log(f"promotion failed: {exc}")
            return False, f"{reason}; promotion failed: {exc}"
    ctx.log(f"promoted to active: {reason}")
    return True, f"promoted: {reason}"
