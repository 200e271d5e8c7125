"""Parameters of a policy run: one pydantic model per algorithm (fields, bounds, help).

Imports only pydantic, so the web process validates a run request without loading torch.
Unknown keys are refused (a typo must not silently train with a default). Short names used by
the older PPO form and CLI (``batch_size``, ``steps``, ``max_new_tokens``) are accepted as aliases.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

Algorithm = Literal["ppo", "rloo", "grpo", "dpo"]
ALGORITHMS: tuple[str, ...] = ("ppo", "rloo", "grpo", "dpo")
#: algorithms that optimise against a reward model (DPO learns from the pairs directly)
ONLINE = frozenset({"ppo", "rloo", "grpo"})


VersionName = Annotated[str, Field(min_length=1, max_length=200)]

#: when to pick which algorithm (shown on the run form; docs/training.md says more)
WHEN = {
    "ppo": "Reward model + value model; the most knobs and the slowest step. TRL dropped it "
    "after 1.12: keep for continuity.",
    "rloo": "Reward model, no value model: several samples per prompt, leave-one-out baseline. "
    "Cheaper than PPO per step; a good default with a trusted reward model.",
    "grpo": "Like RLOO with group-normalised advantages; TRL's most developed online trainer. "
    "beta > 0 keeps it near the reference.",
    "dpo": "No reward model: learns straight from the majority-voted pairs. Cheapest; best when "
    "labels are plentiful and the reward model is weak or missing.",
}


class PolicyParamError(ValueError):
    """Run parameters that cannot be used; the message says which and why."""


class CommonParams(BaseModel):
    """What every policy run shares: the models, the held-out gate, promotion."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    algorithm: Algorithm = Field("ppo", description="ppo | rloo | grpo | dpo")
    policy_version_id: int | VersionName | None = Field(
        None, description="policy to start from (id or version name); blank: the active one"
    )
    reward_version_id: int | VersionName | None = Field(
        None, description="reward model (id or version name); blank: the newest ready one"
    )
    heldout_fraction: float = Field(
        0.2, ge=0.05, le=0.9, description="share of prompts held out for the gate (by content hash)"
    )
    max_prompts: int = Field(2000, ge=1, le=1_000_000, description="most training prompts used")
    max_heldout: int = Field(32, ge=2, le=10_000, description="most held-out prompts scored")
    eval_samples_per_prompt: int = Field(
        4, ge=1, le=64, description="samples per held-out prompt, before and after"
    )
    eval_max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="tokens per held-out sample; blank: as in training (dpo: 64)",
    )
    eval_temperature: float | None = Field(
        None, ge=0.0, le=5.0, description="held-out temperature (0: greedy); blank: as in training"
    )
    bootstrap_samples: int = Field(
        2000, ge=100, le=100_000, description="paired bootstrap resamples for the 95% interval"
    )
    kl_max: float | None = Field(
        None, ge=0.0, le=1000.0, description="KL bound for promotion; blank: server setting"
    )
    auto_promote: bool = Field(True, description="activate the new version when the gate passes")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed for sampling and shuffling")
    gradient_checkpointing: bool = Field(
        False, description="trade compute for memory (off: small models on CPU)"
    )
    # bookkeeping the scheduler writes; shown on the run page, not used for training
    trigger: str | None = Field(None, max_length=500)
    auto: bool = False
    new_judgments: int | None = Field(None, ge=0)
    max_judgment_id: int | None = Field(
        None, ge=0, description="DPO: only judgments up to this id (reproducible reruns)"
    )


class PPOParams(CommonParams):
    """TRL experimental PPO (trl<=1.12): a value model, clipped updates, per-token KL penalty."""

    algorithm: Literal["ppo"] = "ppo"
    learning_rate: float = Field(3e-6, gt=0, le=1.0, description="AdamW learning rate")
    num_ppo_steps: int = Field(32, ge=1, le=100_000, description="PPO updates (rollout batches)")
    per_device_train_batch_size: int = Field(8, ge=1, le=1024, description="rollout batch size")
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="micro-batches per step")
    num_mini_batches: int = Field(1, ge=1, le=64, description="mini-batches per rollout batch")
    num_ppo_epochs: int = Field(4, ge=1, le=64, description="epochs over each rollout batch")
    kl_coef: float = Field(0.05, ge=0.0, le=10.0, description="per-token KL penalty")
    cliprange: float = Field(0.2, gt=0, le=10.0, description="policy ratio clip range")
    vf_coef: float = Field(0.1, ge=0.0, le=100.0, description="value loss coefficient")
    response_length: int = Field(64, ge=1, le=4096, description="max new tokens per rollout")
    temperature: float = Field(0.7, gt=0, le=5.0, description="rollout sampling temperature")
    max_prompt_length: int = Field(1024, ge=8, le=32_768, description="prompt tokens kept")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _alias(
            data,
            {
                "batch_size": "per_device_train_batch_size",
                "steps": "num_ppo_steps",
                "max_new_tokens": "response_length",
            },
        )


class _GroupParams(CommonParams):
    """What RLOO and GRPO share: groups of samples per prompt scored by the reward model."""

    learning_rate: float = Field(1e-6, gt=0, le=1.0, description="AdamW learning rate")
    max_steps: int = Field(32, ge=1, le=100_000, description="optimisation steps")
    per_device_train_batch_size: int = Field(
        8, ge=1, le=1024, description="completions per step (prompts x generations)"
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="micro-batches per step")
    num_generations: int = Field(
        4, ge=2, le=64, description="samples per prompt (the group); must divide the batch"
    )
    max_completion_length: int = Field(64, ge=1, le=4096, description="max new tokens per sample")
    temperature: float = Field(1.0, gt=0, le=5.0, description="sampling temperature")
    num_iterations: int = Field(1, ge=1, le=16, description="updates per generated batch")
    epsilon: float = Field(0.2, gt=0, le=10.0, description="ratio clip range")
    max_prompt_length: int = Field(1024, ge=8, le=32_768, description="prompt tokens kept")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _alias(
            data,
            {
                "batch_size": "per_device_train_batch_size",
                "steps": "max_steps",
                "max_new_tokens": "max_completion_length",
            },
        )

    @model_validator(mode="after")
    def _groups_fit(self) -> _GroupParams:
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise ValueError(
                f"batch ({self.per_device_train_batch_size} x {self.gradient_accumulation_steps}) "
                f"must be a multiple of num_generations ({self.num_generations})"
            )
        return self


class RLOOParams(_GroupParams):
    """TRL RLOOTrainer: leave-one-out baseline over each prompt's group, KL to the reference."""

    algorithm: Literal["rloo"] = "rloo"
    beta: float = Field(
        0.05, gt=0.0, le=10.0, description="KL coefficient to the reference (must be > 0)"
    )


class GRPOParams(_GroupParams):
    """TRL GRPOTrainer: group-normalised advantages, KL to the reference."""

    algorithm: Literal["grpo"] = "grpo"
    beta: float = Field(
        0.04,
        gt=0.0,
        le=10.0,
        description="KL coefficient to the reference (must be > 0; TRL's default 0 has no KL)",
    )
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = Field(
        "dapo", description="loss normalisation (TRL 1.12 default: dapo)"
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="divide advantages by the group's (or batch's) reward std"
    )


class DPOParams(CommonParams):
    """TRL DPOTrainer on the majority-voted pairs (same pairs and split as the reward run)."""

    algorithm: Literal["dpo"] = "dpo"
    learning_rate: float = Field(1e-6, gt=0, le=1.0, description="AdamW learning rate")
    beta: float = Field(0.1, gt=0.0, le=10.0, description="strength of the pull to the reference")
    num_train_epochs: float = Field(1.0, gt=0, le=100.0, description="passes over the pairs")
    per_device_train_batch_size: int = Field(8, ge=1, le=1024, description="pairs per step")
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="micro-batches per step")
    max_length: int = Field(1024, ge=16, le=32_768, description="max tokens of prompt + reply")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid", description="DPO loss (sigmoid: the paper's)"
    )
    min_agreement: float | None = Field(
        None, ge=0.0, le=1.0, description="majority share a pair needs; blank: server setting"
    )
    eval_fraction: float = Field(
        0.2, ge=0.05, le=0.9, description="share of prompts whose pairs are held out"
    )

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _alias(data, {"batch_size": "per_device_train_batch_size"})


PolicyParams = Annotated[
    PPOParams | RLOOParams | GRPOParams | DPOParams, Field(discriminator="algorithm")
]
MODELS: dict[str, type[CommonParams]] = {
    "ppo": PPOParams,
    "rloo": RLOOParams,
    "grpo": GRPOParams,
    "dpo": DPOParams,
}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(PolicyParams)


def eval_sampling(cfg: CommonParams) -> tuple[int, float]:
    """(max new tokens, temperature) of the gate's held-out samples."""
    tokens = getattr(cfg, "response_length", None) or getattr(cfg, "max_completion_length", 64)
    temperature = getattr(cfg, "temperature", 0.7)
    return (
        cfg.eval_max_new_tokens if cfg.eval_max_new_tokens is not None else tokens,
        cfg.eval_temperature if cfg.eval_temperature is not None else temperature,
    )


def _alias(data: Any, names: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for short, full in names.items():
        if short in out:
            value = out.pop(short)
            if full in out and out[full] != value:
                raise ValueError(f"{short} and {full} are the same parameter; give one")
            out[full] = value
    return out


def parse_params(params: dict[str, Any] | None, default: str = "ppo") -> CommonParams:
    """Validate a run's params into its algorithm's model; PolicyParamError says what is wrong."""
    data = dict(params or {})
    algorithm = data.get("algorithm") or default
    if not isinstance(algorithm, str) or algorithm not in MODELS:
        raise PolicyParamError(
            f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    data["algorithm"] = algorithm
    try:
        return _ADAPTER.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise PolicyParamError(_message(exc)) from None


def _message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err["loc"][1:]) or "params"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def fields_of(algorithm: str) -> list[dict[str, Any]]:
    """Form description of an algorithm's own fields and the shared gate fields."""
    model = MODELS[algorithm]
    hidden = {"algorithm", "trigger", "auto", "new_judgments", "max_judgment_id"}
    out = []
    for name, info in model.model_fields.items():
        if name in hidden:
            continue
        lo = hi = None
        for m in info.metadata:
            lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
            lo = getattr(m, "gt", None) if getattr(m, "gt", None) is not None else lo
            hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
        out.append(
            {
                "name": name,
                "default": info.default,
                "help": info.description or "",
                "lo": lo,
                "hi": hi,
                "shared": name in CommonParams.model_fields,
                "annotation": info.annotation,
            }
        )
    return out
