"""`reward` runs: pairs from judgments -> TRL RewardTrainer from the policy's backbone -> a
registered reward version (ready) with its metrics and the exact judgments it was trained on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.models import ModelKind, ModelStatus
from app.models_registry import service as registry
from app.quality.lineage import id_ranges
from workers.context import JobContext
from workers.datasets import reward_rows
from workers.jobs.training import (
    CurveProgress,
    JobParamError,
    clean,
    compute_metrics,
    compute_placement,
    config_from,
    ids_digest,
    policy_version,
    series,
)


def run(ctx: JobContext) -> dict[str, Any]:
    """Train a reward model on the judgments so far; returns the run's metrics."""
    from ml.params import RewardParams
    from ml.reward import CURVE_KEYS, train_reward
    from workers.launch import launch_for, run_ranks

    s = ctx.settings
    cfg = config_from(ctx.params, RewardParams)
    place = compute_placement(cfg, s)  # a device or launcher this worker lacks fails here
    launch = launch_for(cfg, s, place)
    min_agreement = s.min_agreement if cfg.min_agreement is None else cfg.min_agreement
    eval_fraction = cfg.eval_fraction
    max_id = cfg.max_judgment_id
    with ctx.session() as session:
        policy = policy_version(session, cfg.policy_version_id)
        base = (policy.id, policy.version, policy.path)
        data = reward_rows(session, min_agreement, eval_fraction, max_id, weighting=cfg.weighting)
    st = data.stats
    ctx.log(
        f"{st['judgments']} judgments -> {st['pairs_train']} train / {st['pairs_eval']} eval pairs "
        f"({st['prompts_train']}/{st['prompts_eval']} prompts; dropped: {st['pairs_tied']} tied, "
        f"{st['pairs_low_agreement']} below agreement {min_agreement}); "
        f"{st['both_bad_judgments']} both-bad"
    )
    if not data.train:
        raise JobParamError(
            f"no training pairs from {st['judgments']} judgments (min_agreement={min_agreement})"
        )
    dataset = {
        **st,
        "judgment_count": len(data.judgment_ids),
        "judgment_ids_sha256": ids_digest(data.judgment_ids),
    }
    name, path = registry.new_version_path(ModelKind.reward)
    with ctx.session() as session:
        mv = registry.register_version(
            session,
            ModelKind.reward,
            path,
            status=ModelStatus.training,
            parent_id=base[0],
            base_model=base[2],
            metrics=clean({**dataset, "policy_version": base[1], "run_id": ctx.run_id}),
            run_id=ctx.run_id,
            version=name,
        )
        version_id = mv.id
    ctx.log(f"training {name} from policy {base[1]} on {len(data.train)} pairs")
    ctx.progress(0, 0, compute_metrics(place, launch.processes, cfg))
    ctx.log(
        f"{place.device}, {place.dtype}, {launch.processes} process(es)"
        + (f", LoRA r={cfg.lora_r}" if cfg.lora_r else "")
    )
    progress = CurveProgress(ctx, {k: k for k in CURVE_KEYS})
    started = time.monotonic()
    if launch.in_process:
        out = train_reward(
            Path(base[2]), data.train, data.eval, path, cfg, progress, ctx.should_stop, place
        )
    else:
        spec = {
            "cfg": cfg.model_dump(mode="json"),
            "place": {"device": place.device, "dtype": place.dtype},
            "base": base[2],
            "train": data.train,
            "eval": data.eval,
            "out": str(path),
        }
        out = run_ranks(ctx, "reward", spec, launch, progress, s.torch_threads)
    seconds = time.monotonic() - started
    curves = series(out.pop("curves", []))
    result = {
        **out,
        **dataset,
        "train_seconds": round(seconds, 2),
        **compute_metrics(place, launch.processes, cfg),
        "policy_version_id": base[0],
        "config": cfg.model_dump(mode="json"),
    }
    with ctx.session() as session:
        registry.set_status(
            session,
            version_id,
            ModelStatus.ready,
            metrics=clean(
                {**result, "curves": curves, "judgment_id_ranges": id_ranges(data.judgment_ids)}
            ),
        )
    ctx.log(
        f"{name}: eval accuracy {out.get('eval_accuracy')}, eval loss {out.get('eval_loss')} "
        f"({seconds:.1f}s)"
    )
    return clean(
        {**result, "curves": curves, "reward_version_id": version_id, "reward_version": name}
    )
