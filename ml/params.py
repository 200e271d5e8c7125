"""Run parameters: one pydantic model per run kind, the single definition of every parameter.

`POST /api/v1/runs`, the admin run form (fields marked with a ``form`` label), the CLI's
``--param``, the scheduler and the jobs all read these models. A field's bounds, default and
``description`` (help) live here and nowhere else. ``None`` means "the server setting".

Other run kinds (or policy algorithms) add their model to :data:`PARAMS` next to these.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ml.limits import INT32_MAX as MAX_INT32
from ml.limits import check_no_nul

Text = Annotated[str, Field(max_length=200), AfterValidator(check_no_nul)]
VersionRef = int | Text  # a model version id or name
Seed = Annotated[int, Field(ge=0, le=MAX_INT32)]


def form(label: str) -> dict[str, Any]:
    """Field extra marking a field as shown on the admin run form, with its label."""
    return {"form": label}


class RunParams(BaseModel):
    """Base of every run kind's parameters: unknown keys are refused, numbers must be finite."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, allow_inf_nan=False, validate_assignment=True
    )
    kind: ClassVar[str] = ""

    # bookkeeping the scheduler writes (never on the form)
    auto: bool = Field(False, description="queued by the scheduler, not by a person")
    trigger: Text | None = Field(None, description="why the scheduler queued it")

    def stored(self) -> dict[str, Any]:
        """The params as stored on the run: what was given, normalized (JSON-safe)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ComputeParams(BaseModel):
    """Where and how a training run executes (all default to the worker's settings)."""

    device: (
        Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$", max_length=8)] | None
    ) = Field(
        None,
        description="auto | cpu | cuda | cuda:N | mps; blank = PREFLOOP_DEVICE",
        json_schema_extra=form("Device"),
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
        None,
        description="auto: bf16 on GPUs that support it, fp32 on CPU; blank = PREFLOOP_DTYPE",
        json_schema_extra=form("Precision"),
    )
    num_processes: int | None = Field(
        None,
        ge=1,
        le=64,
        description="training processes (ranks); blank = PREFLOOP_TRAIN_PROCESSES",
        json_schema_extra=form("Processes"),
    )
    accelerate_config: Text | None = Field(
        None,
        description="accelerate config file name in PREFLOOP_ACCELERATE_DIR (DDP/FSDP/DeepSpeed);"
        " blank = PREFLOOP_ACCELERATE_CONFIG",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )


class LoraParams(BaseModel):
    """Low-rank adapters (peft). ``lora_r`` 0 means a full fine-tune."""

    lora_r: int = Field(
        0,
        ge=0,
        le=1024,
        description="LoRA rank; 0 = full fine-tune",
        json_schema_extra=form("LoRA rank"),
    )
    lora_alpha: int | None = Field(None, ge=1, le=4096, description="LoRA alpha; blank = 2 x rank")
    lora_dropout: float = Field(0.05, ge=0.0, le=0.9, description="dropout on the LoRA path")
    lora_target_modules: list[Text] | None = Field(
        None,
        max_length=64,
        description="module names to adapt; blank = the architecture's attention projections",
    )


#: a reward run's max_length when left blank. On CPU, 512 tokens gave the most eval accuracy per
#: CPU-minute of 256/512/1024, and a step at 1024 peaks at 15 GB even with LoRA at batch 4
#: (bench/README.md, "Training at scale"); a GPU affords whole chats.
DEFAULT_MAX_LENGTH = {"cpu": 512, "gpu": 1024}


class RewardParams(RunParams, ComputeParams, LoraParams):
    """A `reward` run: pairs from judgments -> TRL RewardTrainer -> a reward model version."""

    kind: ClassVar[str] = "reward"

    policy_version_id: VersionRef | None = Field(
        None, description="policy whose backbone is trained; blank = the active policy"
    )
    max_judgment_id: int | None = Field(
        None, ge=0, le=MAX_INT32, description="use judgments up to this id (scheduler watermark)"
    )
    new_judgments: int | None = Field(None, ge=0, description="scheduler bookkeeping")
    min_agreement: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="majority share a pair needs; blank = PREFLOOP_MIN_AGREEMENT",
        json_schema_extra=form("Minimum agreement"),
    )
    eval_fraction: float = Field(
        0.2,
        ge=0.0,
        le=0.9,
        description="share of prompts held out for evaluation",
        json_schema_extra=form("Eval fraction (by prompt)"),
    )
    learning_rate: float = Field(
        5e-5,
        gt=0.0,
        le=1.0,
        description="AdamW learning rate",
        json_schema_extra=form("Learning rate"),
    )
    num_train_epochs: float = Field(
        1.0, gt=0.0, le=100.0, description="passes over the pairs", json_schema_extra=form("Epochs")
    )
    max_steps: int | None = Field(
        None, ge=1, le=1_000_000, description="stop after this many steps; blank = epochs decide"
    )
    per_device_train_batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("per_device_train_batch_size", "batch_size"),
        description="preference pairs per step and process",
        json_schema_extra=form("Batch size (pairs)"),
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, le=1024, description="micro-batches accumulated per optimiser step"
    )
    per_device_eval_batch_size: int = Field(
        16, ge=1, le=1024, description="pairs per forward pass when evaluating"
    )
    max_length: int | None = Field(
        None,
        ge=16,
        le=131_072,
        description="max tokens of prompt + reply; longer pairs are cut from the left; "
        "blank = 512 on CPU, 1024 on a GPU",
        json_schema_extra=form("Max tokens per row"),
    )
    truncation: Literal["left", "drop"] = Field(
        "left",
        description="left: cut the oldest turns/tokens of a long pair (kept, counted); "
        "drop: leave long pairs out of training (counted)",
    )
    warmup_steps: int = Field(0, ge=0, le=1_000_000, description="linear warm-up steps")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="AdamW weight decay")
    center_rewards_coefficient: float | None = Field(
        None, ge=0.0, le=10.0, description="penalty pushing mean reward to 0 (TRL option)"
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    logging_steps: int = Field(1, ge=1, le=10_000, description="log (and report) every N steps")
    seed: Seed = Field(0, description="seed for head init, shuffling, dropout")
    # labeler quality (app.quality): trust weighting, and "exclude and retrain" bookkeeping
    weighting: Literal["none", "agreement", "gold"] = Field(
        "none",
        description="weight votes and pairs by labeler trust (docs/labeler-quality.md)",
        json_schema_extra=form("Trust weighting"),
    )
    exclusion_id: int | None = Field(
        None, ge=1, le=MAX_INT32, description="the labeler exclusion that queued this run"
    )
    then_policy: bool = Field(
        False, description="queue the policy run once this reward model is ready"
    )


def reward_max_length(cfg: Any, device: str) -> int:
    """A reward run's ``max_length``, or when blank the default for ``device`` (cpu or a GPU)."""
    if cfg.max_length is not None:
        return int(cfg.max_length)
    return DEFAULT_MAX_LENGTH["cpu" if device == "cpu" else "gpu"]


class PPOParams(RunParams, ComputeParams, LoraParams):
    """A `ppo` run: TRL PPO of a policy against a reward model -> a new policy version."""

    kind: ClassVar[str] = "ppo"

    policy_version_id: VersionRef | None = Field(
        None, description="policy to start from; blank = the active policy"
    )
    reward_version_id: VersionRef | None = Field(
        None, description="reward model; blank = the newest ready one"
    )
    heldout_fraction: float = Field(
        0.2,
        ge=0.0,
        le=0.9,
        description="share of prompts held out for the reward/KL estimate",
        json_schema_extra=form("Held-out prompt fraction"),
    )
    max_prompts: int = Field(2000, ge=1, le=1_000_000, description="prompts read from the database")
    max_heldout: int = Field(32, ge=0, le=100_000, description="most held-out prompts")
    kl_max: float | None = Field(
        None,
        ge=0.0,
        le=1000.0,
        description="KL bound for auto-promotion; blank = PREFLOOP_PPO_KL_MAX",
        json_schema_extra=form("KL bound for auto-promotion"),
    )
    auto_promote: bool = Field(
        True,
        description="activate the new policy when it beats the old one within the KL bound",
        json_schema_extra=form("Promote automatically when better"),
    )
    learning_rate: float = Field(
        3e-6,
        gt=0.0,
        le=1.0,
        description="AdamW learning rate",
        json_schema_extra=form("Learning rate"),
    )
    num_ppo_steps: int = Field(
        32,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("num_ppo_steps", "steps"),
        description="PPO updates; each samples one rollout batch of prompts",
        json_schema_extra=form("PPO steps"),
    )
    per_device_train_batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("per_device_train_batch_size", "batch_size"),
        description="rollout micro-batch per process",
        json_schema_extra=form("Rollout batch size"),
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, le=1024, description="rollout batch = batch size x this"
    )
    num_mini_batches: int = Field(
        1,
        ge=1,
        le=64,
        description="mini-batches each rollout batch is split into",
        json_schema_extra=form("Mini-batches"),
    )
    num_ppo_epochs: int = Field(4, ge=1, le=100, description="epochs over each rollout batch")
    kl_coef: float = Field(
        0.05,
        ge=0.0,
        le=10.0,
        description="per-token KL penalty",
        json_schema_extra=form("KL coefficient"),
    )
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="KL estimator")
    cliprange: float = Field(0.2, gt=0.0, le=10.0, description="policy ratio clip range")
    vf_coef: float = Field(0.1, ge=0.0, le=100.0, description="value loss coefficient")
    response_length: int = Field(
        64,
        ge=1,
        le=4096,
        validation_alias=AliasChoices("response_length", "max_new_tokens"),
        description="max new tokens per rollout",
        json_schema_extra=form("Response length (tokens)"),
    )
    temperature: float = Field(0.7, gt=0.0, le=5.0, description="rollout sampling temperature")
    promote_by: Literal["reward", "arena", "both"] | None = Field(
        None,
        description="who promotes the result: the reward gate, human arena battles, or both in "
        "that order; blank = PREFLOOP_PROMOTE_BY",
    )
    missing_eos_penalty: float | None = Field(
        None, ge=0.0, le=100.0, description="score penalty for responses that never emit EOS"
    )
    max_prompt_length: int = Field(
        1024, ge=8, le=131_072, description="prompts longer than this (tokens) are left-truncated"
    )
    eval_samples_per_prompt: int = Field(
        4, ge=1, le=64, description="held-out samples per prompt for the reward/KL estimate"
    )
    eval_temperature: float | None = Field(
        None,
        ge=0.0,
        le=5.0,
        description="held-out sampling temperature (blank: rollout's; 0: greedy)",
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    seed: Seed = Field(0, description="seed for sampling, shuffling, value head")


class GenerateParams(RunParams):
    """A `generate` run: K candidates per prompt from policy versions -> comparison tasks."""

    kind: ClassVar[str] = "generate"

    prompts: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="prompts to generate for; blank = PREFLOOP_QUEUE_TARGET",
        json_schema_extra=form("Prompts to generate for"),
    )
    k: int | None = Field(
        None,
        ge=2,
        le=9,
        description="completions per prompt; blank = PREFLOOP_GENERATE_K",
        json_schema_extra=form("Completions per prompt"),
    )
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="max new tokens per completion; blank = PREFLOOP_MAX_NEW_TOKENS",
        json_schema_extra=form("Max new tokens"),
    )
    temperature: float | None = Field(
        None,
        ge=0.0,
        le=5.0,
        description="sampling temperature; blank = PREFLOOP_TEMPERATURE",
        json_schema_extra=form("Temperature"),
    )
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="blank = PREFLOOP_TOP_P")
    seed: Seed | None = Field(None, description="sampling seed; blank = random")
    required_judgments: int | None = Field(
        None, ge=1, le=100, description="judgments per task; blank = server default"
    )
    batch_prompts: int = Field(4, ge=1, le=256, description="prompts generated per batch")
    versions: list[VersionRef] | None = Field(
        None, max_length=9, description="policy versions (A/B: candidates alternate between them)"
    )
    prompt_ids: list[Annotated[int, Field(ge=1, le=MAX_INT32)]] | None = Field(
        None, max_length=100_000, description="exactly these prompts"
    )
    fresh: bool = Field(True, description="top up with prompts already generated for")
    device: (
        Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$", max_length=8)] | None
    ) = Field(None, description="auto | cpu | cuda | cuda:N | mps; blank = PREFLOOP_DEVICE")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
        None, description="blank = PREFLOOP_DTYPE"
    )
    selection: Literal["random", "uncertainty"] | None = Field(
        None,
        description="which candidates become the task: random, or the pair the newest reward "
        "model is least sure about; blank = PREFLOOP_SELECTION",
    )
    pool: int | None = Field(
        None,
        ge=2,
        le=32,
        description="uncertainty: candidates sampled per prompt; blank = PREFLOOP_GEN_POOL",
    )
    explore: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="uncertainty: share kept at random; blank = PREFLOOP_EXPLORE",
    )


class BattleParams(RunParams):
    """A `battle` run: answers of two policy versions to fresh prompts for an arena campaign."""

    kind: ClassVar[str] = "battle"

    campaign_id: Annotated[int, Field(ge=1, le=MAX_INT32)] = Field(
        description="the arena campaign the battles belong to"
    )
    battles: int | None = Field(
        None, ge=1, le=1000, description="battles to prepare; blank = PREFLOOP_ARENA_OPEN_BATTLES"
    )
    max_new_tokens: int | None = Field(
        None, ge=1, le=4096, description="blank = PREFLOOP_MAX_NEW_TOKENS"
    )
    temperature: float | None = Field(
        None, ge=0.0, le=5.0, description="blank = PREFLOOP_TEMPERATURE"
    )
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="blank = PREFLOOP_TOP_P")
    seed: Seed | None = Field(None, description="sampling seed; blank = random")


#: run kind -> its parameter model (policy algorithms register theirs here too)
PARAMS: dict[str, type[RunParams]] = {
    "generate": GenerateParams,
    "reward": RewardParams,
    "ppo": PPOParams,
    "battle": BattleParams,
}


class ParamError(ValueError):
    """Run parameters that do not validate; ``issues`` name each field (API 422 ``detail``)."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        self.issues = issues
        super().__init__(
            "; ".join(f"{'.'.join(map(str, i['loc'])) or 'params'}: {i['msg']}" for i in issues)
        )


def parse(kind: str, params: dict[str, Any] | None) -> RunParams:
    """Validate ``params`` for run ``kind``; :class:`ParamError` names every bad field."""
    model = PARAMS.get(str(kind))
    if model is None:
        raise ParamError(
            [{"loc": ["kind"], "msg": f"unknown run kind {kind!r}", "type": "value_error"}]
        )
    if not isinstance(params, dict):
        raise ParamError([{"loc": [], "msg": "params must be an object", "type": "dict_type"}])
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ParamError(
            [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
        ) from None


# --- policy runs (issue 16): kind `policy`, one model per algorithm, `kind=ppo` an alias ---

PolicyAlgorithm = Literal["ppo", "rloo", "grpo", "dpo"]
POLICY_ALGORITHMS: tuple[str, ...] = ("ppo", "rloo", "grpo", "dpo")


class PolicyGateParams(BaseModel):
    """What every policy algorithm shares: the models, the held-out gate, promotion."""

    policy_version_id: VersionRef | None = Field(
        None, description="policy to start from; blank = the active policy"
    )
    reward_version_id: VersionRef | None = Field(
        None, description="reward model; blank = the newest ready one (dpo: gate only, optional)"
    )
    heldout_fraction: float = Field(
        0.2,
        ge=0.05,
        le=0.9,
        description="share of prompts held out for the gate (by content hash; dpo: eval_fraction)",
        json_schema_extra=form("Held-out prompt fraction"),
    )
    max_prompts: int = Field(2000, ge=1, le=1_000_000, description="prompts read from the database")
    max_heldout: int = Field(
        32,
        ge=2,
        le=10_000,
        description="most held-out prompts scored before and after",
        json_schema_extra=form("Held-out prompts (max)"),
    )
    eval_samples_per_prompt: int = Field(
        4,
        ge=1,
        le=64,
        description="samples per held-out prompt, before and after",
        json_schema_extra=form("Samples per held-out prompt"),
    )
    eval_max_new_tokens: int | None = Field(
        None, ge=1, le=4096, description="tokens per held-out sample; blank = as in training"
    )
    eval_temperature: float | None = Field(
        None, ge=0.0, le=5.0, description="held-out temperature (0: greedy); blank = as in training"
    )
    bootstrap_samples: int = Field(
        2000, ge=100, le=100_000, description="paired bootstrap resamples for the 95% interval"
    )
    kl_max: float | None = Field(
        None,
        ge=0.0,
        le=1000.0,
        description="KL bound for promotion; blank = PREFLOOP_POLICY_KL_MAX (alias PPO_KL_MAX)",
        json_schema_extra=form("KL bound for auto-promotion"),
    )
    auto_promote: bool = Field(
        True,
        description="activate the new version when the gate passes",
        json_schema_extra=form("Promote automatically when the gate passes"),
    )
    promote_by: Literal["reward", "arena", "both"] | None = Field(
        None,
        description="who promotes the result: the gate, human arena battles, or both in that "
        "order; blank = PREFLOOP_PROMOTE_BY",
    )
    new_judgments: int | None = Field(None, ge=0, description="scheduler bookkeeping")
    max_judgment_id: int | None = Field(
        None, ge=0, le=MAX_INT32, description="dpo: judgments up to this id (scheduler watermark)"
    )


class PolicyPPOParams(PolicyGateParams, PPOParams):
    """TRL experimental PPO (trl <= 1.12): value model, clipped updates, per-token KL penalty."""

    kind: ClassVar[str] = "policy"
    algorithm: Literal["ppo"] = "ppo"


class _GroupParams(PolicyGateParams, RunParams, ComputeParams, LoraParams):
    """What RLOO and GRPO share: a group of samples per prompt scored by the reward model.
    Device, precision, processes and LoRA as for PPO (same fields, bounds and defaults)."""

    kind: ClassVar[str] = "policy"
    learning_rate: float = Field(
        1e-6,
        gt=0.0,
        le=1.0,
        description="AdamW learning rate",
        json_schema_extra=form("Learning rate"),
    )
    max_steps: int = Field(
        32,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("max_steps", "steps"),
        description="optimisation steps",
        json_schema_extra=form("Steps"),
    )
    per_device_train_batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("per_device_train_batch_size", "batch_size"),
        description="completions per step (prompts x generations)",
        json_schema_extra=form("Batch size (completions)"),
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="micro-batches per step")
    num_generations: int = Field(
        4,
        ge=2,
        le=64,
        description="samples per prompt (the group); must divide the batch",
        json_schema_extra=form("Samples per prompt (group)"),
    )
    max_completion_length: int = Field(
        64,
        ge=1,
        le=4096,
        validation_alias=AliasChoices("max_completion_length", "max_new_tokens"),
        description="max new tokens per sample",
        json_schema_extra=form("Completion length (tokens)"),
    )
    temperature: float = Field(1.0, gt=0.0, le=5.0, description="sampling temperature")
    num_iterations: int = Field(1, ge=1, le=16, description="updates per generated batch")
    epsilon: float = Field(0.2, gt=0.0, le=10.0, description="ratio clip range")
    max_prompt_length: int = Field(
        1024, ge=8, le=131_072, description="longer prompts are left out (counted)"
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    seed: Seed = Field(0, description="seed for sampling and shuffling")

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
        0.05,
        gt=0.0,
        le=10.0,
        description="KL coefficient to the reference (must be > 0)",
        json_schema_extra=form("KL coefficient (beta)"),
    )


class GRPOParams(_GroupParams):
    """TRL GRPOTrainer: group-normalised advantages, KL to the reference."""

    algorithm: Literal["grpo"] = "grpo"
    beta: float = Field(
        0.04,
        gt=0.0,
        le=10.0,
        description="KL coefficient to the reference (must be > 0; TRL's default 0 has no KL)",
        json_schema_extra=form("KL coefficient (beta)"),
    )
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = Field(
        "dapo",
        description="loss normalisation (TRL 1.12 default: dapo)",
        json_schema_extra=form("Loss"),
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="divide advantages by the group's (or batch's) reward std"
    )


class DPOParams(PolicyGateParams, RunParams, ComputeParams, LoraParams):
    """TRL DPOTrainer on the majority-voted pairs (same pairs and split as the reward run).
    Device, precision, processes and LoRA as for PPO (same fields, bounds and defaults)."""

    kind: ClassVar[str] = "policy"
    algorithm: Literal["dpo"] = "dpo"
    learning_rate: float = Field(
        1e-6,
        gt=0.0,
        le=1.0,
        description="AdamW learning rate",
        json_schema_extra=form("Learning rate"),
    )
    beta: float = Field(
        0.1,
        gt=0.0,
        le=10.0,
        description="strength of the pull to the reference",
        json_schema_extra=form("Beta"),
    )
    num_train_epochs: float = Field(
        1.0, gt=0.0, le=100.0, description="passes over the pairs", json_schema_extra=form("Epochs")
    )
    per_device_train_batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("per_device_train_batch_size", "batch_size"),
        description="pairs per step",
        json_schema_extra=form("Batch size (pairs)"),
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=256, description="micro-batches per step")
    max_length: int = Field(1024, ge=16, le=131_072, description="max tokens of prompt + reply")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid", description="DPO loss (sigmoid: the paper's)", json_schema_extra=form("Loss")
    )
    min_agreement: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="majority share a pair needs; blank = PREFLOOP_MIN_AGREEMENT",
        json_schema_extra=form("Minimum agreement"),
    )
    eval_fraction: float = Field(
        0.2, ge=0.05, le=0.9, description="share of prompts whose pairs are held out"
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    seed: Seed = Field(0, description="seed for shuffling")
    weighting: Literal["none", "agreement", "gold"] = Field(
        "none",
        description="weight votes and pairs by labeler trust (docs/labeler-quality.md)",
        json_schema_extra=form("Trust weighting"),
    )


POLICY_MODELS: dict[str, type[RunParams]] = {
    "ppo": PolicyPPOParams,
    "rloo": RLOOParams,
    "grpo": GRPOParams,
    "dpo": DPOParams,
}


class _Algorithm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    algorithm: PolicyAlgorithm = Field("ppo", description="ppo | rloo | grpo | dpo")


class PolicyParams:
    """Kind `policy`: validates into the model of ``params["algorithm"]`` (default ppo); errors
    name the field itself (``params.beta``), as for every other kind."""

    kind: ClassVar[str] = "policy"
    model_fields: ClassVar[dict[str, Any]] = {}

    @classmethod
    def model_validate(cls, data: Any) -> RunParams:
        algorithm = _Algorithm.model_validate(data).algorithm
        return POLICY_MODELS[algorithm].model_validate(data)


# a dispatcher (by `algorithm`), not a RunParams subclass, but it validates the same way
PARAMS["policy"] = PolicyParams  # type: ignore[assignment]
