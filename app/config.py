"""Settings, read from the environment with the PREFLOOP_ prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# published in earlier versions as the fallback signing key: refused everywhere
PUBLIC_SECRETS = frozenset({"dev-insecure-secret-change-me", "change-me", "secret"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREFLOOP_", env_file=".env", extra="ignore")

    env: str = Field("development", description="development | production | test")
    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: str = Field(
        "", description="session signing key; empty: generated once into DATA_DIR/secret_key"
    )
    host: str = "127.0.0.1"
    port: int = 8000

    lease_minutes: float = 10.0
    default_required_judgments: int = 1
    criteria: list[str] = ["helpfulness", "honesty", "harmlessness"]
    flags: list[str] = ["toxic", "dangerous", "factually_wrong"]
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 200_000_000
    auth_cache_seconds: float = 30.0
    session_max_age_s: int = 14 * 24 * 3600
    # PostgreSQL connections of `prefloop serve`: a budget shared by its worker processes
    # (`serve --workers N` sets WEB_WORKERS), split in app.db.web_pools
    db_max_connections: int = Field(40, ge=4, description="web server total, all workers")
    web_workers: int = Field(1, ge=1, description="set by `prefloop serve --workers`")
    statement_timeout_ms: int = Field(30_000, ge=0, description="web requests; 0: none")
    labeling_statement_timeout_ms: int = Field(5_000, ge=0, description="hot path; 0: none")
    pool_timeout_s: float = Field(10.0, gt=0, description="wait for a free connection, then 503")

    # model side (used by the worker and the /v1 endpoint)
    policy_model: str = ""
    queue_target: int = 20
    generate_k: int = 2
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    generation_backend: str = Field("transformers", description="transformers | openai")
    generation_base_url: str = ""
    generation_api_key: str = ""
    generation_model: str = Field("", description="model name sent to an external server")
    serving_reload_seconds: float = 3.0
    serving_max_tokens: int = Field(1024, description="/v1: largest max_tokens a request may ask")
    serving_max_n: int = Field(4, description="/v1: most choices (n) per request")
    serving_context_tokens: int = Field(
        0, description="/v1: prompt + max_tokens limit; 0: the model's own context length"
    )
    serving_concurrency: int = Field(
        0, description="/v1: generations at once per web process; 0: 1 in-process, 8 external"
    )
    serving_per_user: int = Field(4, description="/v1: requests in flight per user and process")
    serving_queue: int = Field(32, description="/v1: requests waiting for a slot per process")
    serving_queue_timeout_s: float = Field(60.0, description="/v1: longest wait for a slot")
    torch_threads: int = Field(0, description="CPU threads for torch in worker/serving; 0: auto")
    rm_every_n: int = 0
    rm_every_minutes: float = 0.0
    ppo_after_reward: bool = True
    ppo_kl_max: float = 1.0
    min_agreement: float = 0.5
    # policy algorithms (issue 16): PREFLOOP_POLICY_* win; PREFLOOP_PPO_AFTER_REWARD and
    # PREFLOOP_PPO_KL_MAX above stay as their aliases (used when the POLICY_* one is unset)
    policy_algorithm: Literal["ppo", "rloo", "grpo", "dpo"] = Field(
        "ppo",
        description="what the scheduler runs: ppo/rloo/grpo after each new reward model, "
        "dpo every DPO_EVERY_N new judgments",
    )
    policy_after_reward: bool | None = Field(None, description="unset: PPO_AFTER_REWARD")
    policy_kl_max: float | None = Field(None, ge=0, description="unset: PPO_KL_MAX")
    dpo_every_n: int = Field(0, ge=0, description="scheduled DPO after N new judgments; 0: off")
    train_weighting: Literal["none", "agreement", "gold"] = Field(
        "none", description="labeler-trust weighting of scheduled reward and DPO runs"
    )
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 60.0
    max_attempts: int = 2

    # labeler quality (app.quality): gold tasks, flags, trust weights
    gold_rate: float = Field(0.05, ge=0.0, le=1.0, description="share of requests offered gold")
    quality_min_gold_accuracy: float = Field(0.6, ge=0.0, le=1.0, description="flag below")
    quality_min_gold_count: int = Field(5, ge=1, description="gold answers before judging it")
    quality_gold_alpha: float = Field(0.05, gt=0.0, le=1.0, description="gold test level")
    quality_min_agreement: float = Field(0.5, ge=0.0, le=1.0, description="flag below")
    quality_min_agreement_gap: float = Field(
        0.1, ge=0.0, le=1.0, description="flag this far below the crowd's median agreement"
    )
    quality_min_overlap: int = Field(10, ge=1, description="shared tasks before judging it")
    quality_max_position_p: float = Field(0.001, gt=0.0, le=1.0, description="bias test p")
    quality_min_position_n: int = Field(20, ge=1, description="K=2 choices before testing")
    quality_fast_ms: int = Field(3000, ge=0, description="a task answered faster is 'fast'")
    quality_max_fast_share: float = Field(0.5, ge=0.0, le=1.0, description="flag above")
    quality_max_skip_rate: float = Field(0.5, ge=0.0, le=1.0, description="flag above")
    # --- security (issue 11): keys, sessions, login throttling, headers ---
    session_idle_timeout_s: int = Field(
        8 * 3600, ge=0, description="sign out a session unused this long; 0: never"
    )
    login_free_failures: int = Field(
        5, ge=1, description="failed logins per account before backoff"
    )
    login_free_failures_ip: int = Field(
        20, ge=1, description="failed logins per client address before backoff"
    )
    login_backoff_base_s: float = Field(1.0, gt=0, description="first block; doubles per failure")
    login_max_block_s: float = Field(900.0, gt=0, description="longest block")
    login_window_s: float = Field(900.0, gt=0, description="failures older than this are forgotten")
    pseudonym_key: str = Field(
        "", description="key of labeler pseudonyms in exports; empty: DATA_DIR/pseudonym_key"
    )
    # training at scale (issue 10): device, precision, processes; runs may override each
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$",
        description="auto | cpu | cuda | cuda:N | mps (auto: CUDA, else MPS, else CPU)",
    )
    dtype: str = Field(
        "auto",
        pattern=r"^(auto|float32|bfloat16|float16)$",
        description="auto: bf16 on GPUs that support it, fp32 on CPU",
    )
    train_processes: int = Field(1, ge=1, le=64, description="ranks per training run")
    accelerate_dir: Path | None = Field(
        None, description="folder of accelerate config files runs may name; blank: none"
    )
    accelerate_config: str = Field(
        "", description="default accelerate config (a file in ACCELERATE_DIR); blank: torchrun"
    )
    # --- observability and integrations (issue 15) ---
    metrics_token: str = Field(
        "", description="bearer token Prometheus sends to /metrics; unset: admins only"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=60, description="per delivery attempt")
    webhook_retry_s: list[Annotated[float, Field(ge=0, le=7 * 24 * 3600)]] = Field(
        [5, 300, 1800, 7200, 18000, 36000],
        max_length=20,
        description="waits before each retry (Standard Webhooks schedule); then failed",
    )
    webhook_keep_days: float = Field(30.0, gt=0, description="finished deliveries kept")
    webhook_max_endpoints: int = Field(20, ge=1)
    webhook_allow_private: bool = Field(
        False, description="allow receivers on loopback/private/link-local addresses"
    )
    # --- uncertainty selection and the arena (issue 14) ---
    selection: Literal["random", "uncertainty"] = Field(
        "random", description="generate: keep the candidates the reward model is least sure about"
    )
    gen_pool: int = Field(4, ge=2, le=32, description="uncertainty: candidates sampled per prompt")
    explore: float = Field(0.2, ge=0.0, le=1.0, description="uncertainty: share kept at random")
    promote_by: Literal["reward", "arena", "both"] = Field(
        "reward", description="who promotes a PPO policy: reward gate, human arena, or both"
    )
    arena_min_battles: int = Field(
        50, ge=1, description="judged battles a candidate needs before the arena decides"
    )
    arena_max_battles: int = Field(
        1000, ge=1, description="judged battles after which an undecided gate stops (kept ready)"
    )
    arena_open_battles: int = Field(
        8, ge=1, description="battle tasks the worker keeps open per active campaign"
    )

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'prefloop.db').resolve()}"
        for name in ("secret_key", "pseudonym_key"):
            value = getattr(self, name)
            if value and (value in PUBLIC_SECRETS or len(value) < 32):
                raise ValueError(
                    f"PREFLOOP_{name.upper()} must be a random value of at least 32 characters "
                    "(or unset: one is generated into the data directory)"
                )
        return self

    @property
    def policy_after_reward_on(self) -> bool:
        return (
            self.ppo_after_reward if self.policy_after_reward is None else self.policy_after_reward
        )

    @property
    def policy_kl_bound(self) -> float:
        return self.ppo_kl_max if self.policy_kl_max is None else self.policy_kl_max

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
