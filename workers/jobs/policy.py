"""`policy` runs (and the `ppo` alias): one algorithm from ml.policy -> a new policy version
(ready) -> the promotion gate -> activated when the gate passes and auto-promotion is on.

ppo, rloo and grpo train on database prompts against the named (default: newest ready) reward
model; dpo trains on the reward run's majority-voted pairs and split and uses a reward model
only for the gate, when one is ready. The gate scores held-out prompts before and after for
every algorithm alike (ml/policy/gate.py) and its result is stored on the version.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.models import ModelKind, ModelStatus, ModelVersion
from app.models_registry import service as registry
from app.quality.lineage import id_ranges
from workers.context import JobContext
from workers.datasets import ppo_prompts, reward_rows
from workers.jobs.training import (
    CurveProgress,
    JobParamError,
    clean,
    compute_metrics,
    compute_placement,
    ids_digest,
    newest_reward_version,
    policy_version,
    reward_version,
    series,
)


def params_of(ctx: JobContext, default: str = "ppo") -> Any:
    from ml.policy.params import PolicyParamError, parse_params

    try:
        return parse_params(ctx.params, default)
    except PolicyParamError as exc:
        raise JobParamError(str(exc)) from None


def run(ctx: JobContext) -> dict[str, Any]:
    """Train the run's algorithm, gate the result, register and maybe promote it."""
    from ml.policy import Callbacks, PolicyData, module
    from ml.policy import train as train_policy
    from ml.policy.gate import GateInputs, evaluate
    from ml.policy.params import ONLINE, eval_sampling
    from workers.arena import gate_mode, start_arena_gate

    cfg = params_of(ctx)
    algo, s = cfg.algorithm, ctx.settings
    promote_by = gate_mode(ctx.params, s)
    from workers.launch import launch_for

    # device, precision and ranks for every algorithm (LoRA is in the params); a device or
    # launcher this worker lacks fails here, before anything is registered
    place = compute_placement(cfg, s)
    launch = launch_for(cfg, s, place)
    kl_max = cfg.kl_max if cfg.kl_max is not None else s.policy_kl_bound
    dataset: dict[str, Any] = {}
    with ctx.session() as session:
        policy = policy_version(session, cfg.policy_version_id)
        start = (policy.id, policy.version, policy.path, policy.base_model or policy.path)
        rmv: ModelVersion | None
        if algo in ONLINE or cfg.reward_version_id not in (None, ""):
            rmv = reward_version(session, cfg.reward_version_id)
        else:
            rmv = newest_reward_version(session)
        rm = (rmv.id, rmv.version, rmv.path) if rmv is not None else None
        if algo in ONLINE:
            train, heldout = ppo_prompts(
                session, cfg.heldout_fraction, cfg.max_prompts, cfg.max_heldout
            )
            pairs: tuple[list, list, list[str]] = ([], [], [])
        else:
            min_agreement = cfg.min_agreement if cfg.min_agreement is not None else s.min_agreement
            data = reward_rows(
                session,
                min_agreement,
                cfg.eval_fraction,
                cfg.max_judgment_id,
                weighting=cfg.weighting,  # stats record it and the labeler weights, as reward's
            )
            pairs = (data.train, data.eval, data.eval_groups)
            train, heldout = [], _unique_prompts(data.eval, data.eval_groups, cfg.max_heldout)
            dataset = {
                **data.stats,
                "judgment_count": len(data.judgment_ids),
                "judgment_ids_sha256": ids_digest(data.judgment_ids),
                "judgment_id_ranges": id_ranges(data.judgment_ids),
            }
    _check_data(cfg, train, pairs[0], dataset)
    ctx.log(
        f"{algo}: policy {start[1]}"
        + (f" + reward {rm[1]}" if rm else " (no reward model: preference gate only)")
        + (
            f": {len(train)} train / {len(heldout)} held-out prompts"
            if algo in ONLINE
            else f": {len(pairs[0])} train / {len(pairs[1])} eval pairs "
            f"({dataset.get('pairs_kwise', 0)} from K-wise rankings)"
        )
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
            metrics={
                "algorithm": algo,
                "reward_version_id": rm[0] if rm else None,
                "run_id": ctx.run_id,
            },
            run_id=ctx.run_id,
            version=name,
        )
        version_id = mv.id
    started = time.monotonic()
    keys = dict(module(algo).CURVE_KEYS)
    data_in = PolicyData(
        policy_path=Path(start[2]),
        out_dir=path,
        reward_path=Path(rm[2]) if rm else None,
        train_prompts=train,
        heldout_prompts=heldout,
        train_pairs=pairs[0],
        eval_pairs=pairs[1],
        place=place,
    )
    progress = CurveProgress(ctx, keys)
    ctx.progress(0, 0, compute_metrics(place, launch.processes, cfg))
    ctx.log(f"{place.device}, {place.dtype}, {launch.processes} process(es)")
    if not launch.in_process:
        out = _ranks(ctx, cfg, data_in, launch, progress)
    else:
        out = train_policy(cfg, data_in, Callbacks(progress, ctx.should_stop))
    train_seconds = time.monotonic() - started
    ctx.log(f"{name}: trained in {train_seconds:.1f}s; scoring held-out set for the gate")
    eval_tokens, eval_temperature = eval_sampling(cfg)
    gate = evaluate(
        Path(start[2]),
        path,
        Path(rm[2]) if rm else None,
        GateInputs(
            heldout_prompts=heldout,
            kl_max=kl_max,
            samples_per_prompt=cfg.eval_samples_per_prompt,
            max_new_tokens=eval_tokens,
            temperature=eval_temperature,
            bootstrap_samples=cfg.bootstrap_samples,
            seed=cfg.seed,
            eval_pairs=pairs[1] if algo == "dpo" else [],
            pair_groups=pairs[2] if algo == "dpo" else [],
            dpo_beta=cfg.beta if algo == "dpo" else None,
        ),
        ctx.should_stop,
        place,
    )
    seconds = time.monotonic() - started
    curves = series(out.curves)
    result = {
        "algorithm": algo,
        **out.metrics,
        **{k: v for k, v in dataset.items() if k != "judgment_id_ranges"},
        **gate.as_metrics(),
        "n_heldout": len(heldout),
        "train_seconds": round(train_seconds, 2),
        "gate_seconds": round(seconds - train_seconds, 2),
        **compute_metrics(place, launch.processes, cfg),
        "policy_version_id": start[0],
        "reward_version_id": rm[0] if rm else None,
        "config": cfg.model_dump(mode="json"),
        "promotable": gate.passed,
        "promotion_reason": gate.reason,
    }
    with ctx.session() as session:
        extra = {"judgment_id_ranges": dataset["judgment_id_ranges"]} if dataset else {}
        registry.set_status(
            session,
            version_id,
            ModelStatus.ready,
            metrics=clean({**result, "curves": curves, **extra}),
        )
    ctx.log(f"{name}: gate {'passed' if gate.passed else 'failed'}: {gate.reason}")
    promoted, reason = False, gate.reason
    if cfg.auto_promote and (promote_by == "arena" or (promote_by == "both" and gate.passed)):
        reason = start_arena_gate(ctx, version_id, reason, promote_by)
    elif gate.passed and cfg.auto_promote:
        promoted, reason = promote(ctx, version_id, start[0], reason)
    elif gate.passed:
        reason += "; auto-promotion off: left ready for an admin"
    else:
        reason += "; left ready for an admin"
    with ctx.session() as session:
        note(session, version_id, promoted, reason)
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


def _ranks(ctx: JobContext, cfg: Any, data: Any, launch: Any, progress: Any) -> Any:
    """Train over several processes (workers/launch.py): PPO as train's ppo job runs it, the
    other algorithms through ml.policy's ``train`` in every rank (spec kind ``policy``)."""
    from ml.params import PPOParams
    from ml.policy import TrainResult
    from workers.launch import run_ranks

    common = {
        "place": {"device": data.place.device, "dtype": data.place.dtype},
        "base": str(data.policy_path),
        "reward": str(data.reward_path) if data.reward_path is not None else None,
        "out": str(data.out_dir),
    }
    threads = ctx.settings.torch_threads
    if cfg.algorithm != "ppo":
        spec = {
            **common,
            "cfg": cfg.model_dump(mode="json"),
            "train": data.train_prompts,
            "pairs": data.train_pairs,  # dpo; its eval pairs are the gate's, in this process
        }
        out = run_ranks(ctx, "policy", spec, launch, progress, threads)
        return TrainResult(metrics=out["metrics"], curves=out["curves"])
    ppo = PPOParams.model_validate(cfg.model_dump(include=set(PPOParams.model_fields)))
    spec = {
        **common,
        "cfg": ppo.model_dump(mode="json"),
        "train": data.train_prompts,
        "eval": [],  # the gate scores the held-out prompts afterwards
    }
    out = run_ranks(ctx, "ppo", spec, launch, progress, threads)
    curves = out.pop("curves", [])
    keep = {k: v for k, v in out.items() if not k.startswith("heldout_") and k != "kl_to_ref"}
    return TrainResult(metrics=keep, curves=curves)


def _unique_prompts(rows: list[dict[str, Any]], groups: list[str], limit: int) -> list[Any]:
    """One prompt per eval group (prompt hash), in a stable order, at most `limit`."""
    seen: dict[str, Any] = {}
    for row, key in zip(rows, groups, strict=True):
        seen.setdefault(key, row["prompt"])
    return [seen[k] for k in sorted(seen)[:limit]]


def _check_data(cfg: Any, train: list[Any], pairs: list[Any], dataset: dict[str, Any]) -> None:
    if cfg.algorithm == "dpo":
        if not pairs:
            raise JobParamError(
                f"no training pairs from {dataset.get('judgments', 0)} judgments "
                f"(min_agreement={dataset.get('min_agreement')})"
            )
        return
    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    per_prompt = getattr(cfg, "num_generations", 1)
    if len(train) * per_prompt < batch:
        raise JobParamError(
            f"{len(train)} training prompts in the database; {cfg.algorithm} needs a batch "
            f"({batch} {'completions' if per_prompt > 1 else 'prompts'})"
        )


def note(session: Any, version_id: int, promoted: bool, reason: str) -> None:
    """Record the promotion outcome on the version (whatever its status now)."""
    mv = registry.get_version(session, version_id)
    mv.metrics = {**(mv.metrics or {}), "promoted": promoted, "promotion_reason": reason}
    session.flush()


def promote(ctx: JobContext, version_id: int, started_from: int, reason: str) -> tuple[bool, str]:
    """Activate the new version unless an admin changed the active policy meanwhile."""
    with ctx.session() as session:
        active = registry.active_version(session, ModelKind.policy)
        if active is not None and active.id != started_from:
            return False, f"{reason}; not promoted: the active policy changed during the run"
        try:
            mv = registry.activate(session, version_id)
            # audited like an admin's activation, with the job as the actor
            actor = f"worker:run {ctx.run_id}"
            registry.record_activation(session, actor, mv, active.id if active else None, None)
        except registry.RegistryError as exc:
            ctx.log(f"promotion failed: {exc}")
            return False, f"{reason}; promotion failed: {exc}"
    ctx.log(f"promoted to active: {reason}")
    return True, f"promoted: {reason}"
