"""Run-start form fields per run kind, and their validation into a run's params."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: type
    default: float | int | str | bool | None
    lo: float | None = None
    hi: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()


class FormError(ValueError):
    """A form value that cannot be accepted; the message is shown to the admin."""


FIELDS: dict[str, list[Field]] = {
    "reward": [
        Field(
            "min_agreement",
            "Minimum agreement",
            float,
            None,
            0.0,
            1.0,
            "majority share a pair needs; blank = server setting",
        ),
        Field("eval_fraction", "Eval fraction (by prompt)", float, 0.2, 0.05, 0.9),
        Field("num_train_epochs", "Epochs", float, 1.0, 0.01, 100),
        Field("learning_rate", "Learning rate", float, 5e-5, 1e-8, 1.0),
        Field("batch_size", "Batch size (pairs)", int, 8, 1, 1024),
        Field("max_length", "Max tokens per row", int, 1024, 16, 8192),
        Field(
            "weighting",
            "Trust weighting",
            str,
            "none",
            help="none | agreement | gold (labeler trust, see docs/labeler-quality.md)",
            choices=("none", "agreement", "gold"),
        ),
    ],
    "ppo": [
        Field("kl_coef", "KL coefficient", float, 0.05, 0.0, 10.0),
        Field("num_ppo_steps", "PPO steps", int, 32, 1, 100_000),
        Field("batch_size", "Rollout batch size", int, 8, 1, 1024),
        Field("num_mini_batches", "Mini-batches", int, 1, 1, 64),
        Field("response_length", "Response length (tokens)", int, 64, 1, 2048),
        Field("learning_rate", "Learning rate", float, 3e-6, 1e-9, 1.0),
        Field("heldout_fraction", "Held-out prompt fraction", float, 0.2, 0.05, 0.9),
        Field(
            "kl_max",
            "KL bound for auto-promotion",
            float,
            None,
            0.0,
            1000.0,
            "blank = server setting",
        ),
        Field("auto_promote", "Promote automatically when better", bool, True),
    ],
    "generate": [
        Field("prompts", "Prompts to generate for", int, 20, 1, 100_000),
        Field("k", "Completions per prompt", int, 2, 2, 9),
        Field("max_new_tokens", "Max new tokens", int, 128, 1, 4096),
        Field("temperature", "Temperature", float, 0.8, 0.0, 5.0),
    ],
}


def parse(kind: str, form: dict[str, str]) -> dict[str, object]:
    """Validate submitted strings for `kind`; blank fields are left out of the params."""
    if kind not in FIELDS:
        raise FormError(f"unknown run kind {kind!r}; choose one of {', '.join(FIELDS)}")
    params: dict[str, object] = {}
    for f in FIELDS[kind]:
        raw = (form.get(f.name) or "").strip()
        if f.type is bool:
            params[f.name] = raw.lower() in ("1", "true", "on", "yes")
            continue
        if not raw:
            continue
        try:
            value = f.type(raw)
        except ValueError:
            raise FormError(f"{f.label}: {raw[:40]!r} is not a valid {f.type.__name__}") from None
        if f.choices:
            if value not in f.choices:
                raise FormError(f"{f.label} must be one of {', '.join(f.choices)}")
            params[f.name] = value
            continue
        if (
            value != value
            or (f.lo is not None and value < f.lo)
            or (f.hi is not None and value > f.hi)
        ):
            raise FormError(f"{f.label} must be between {f.lo} and {f.hi}")
        params[f.name] = value
    return params
