"""Run-start form fields per run kind, and their validation into a run's params."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any


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
    shared: bool = False  # policy form: a gate field every algorithm has


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


def _policy_field(spec: dict[str, Any]) -> Field:
    """A form field from an ml.policy.params field description."""
    ann, choices = spec["annotation"], ()
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) is typing.Literal:
        kind: type = str
        choices = tuple(typing.get_args(ann))
    elif isinstance(ann, type):
        kind = ann
    elif typing.get_origin(ann) in (typing.Union, types.UnionType) and len(args) == 1:
        kind = args[0]
    else:
        kind = str
    return Field(
        spec["name"],
        spec["name"].replace("_", " ").capitalize(),
        kind,
        spec["default"],
        spec["lo"],
        spec["hi"],
        spec["help"],
        choices,
        spec["shared"],
    )


def _policy_fields() -> dict[str, list[Field]]:
    from ml.policy.params import ALGORITHMS, fields_of

    return {a: [_policy_field(f) for f in fields_of(a)] for a in ALGORITHMS}


#: algorithm -> its fields (own and shared gate fields), from the pydantic models
POLICY_FIELDS = _policy_fields()


def parse_policy(form: dict[str, str]) -> dict[str, object]:
    """The policy form: the chosen algorithm's fields (named `algo.field`) and the gate fields."""
    from ml.policy.params import PolicyParamError, parse_params

    algorithm = (form.get("algorithm") or "").strip()
    if algorithm not in POLICY_FIELDS:
        raise FormError(f"unknown algorithm; choose one of {', '.join(POLICY_FIELDS)}")
    named = [(f.name if f.shared else f"{algorithm}.{f.name}", f) for f in POLICY_FIELDS[algorithm]]
    values = _values(named, form)
    params: dict[str, object] = {"algorithm": algorithm}
    params.update({f.name: values[key] for key, f in named if key in values})
    try:
        parse_params(params)
    except PolicyParamError as exc:
        raise FormError(str(exc)) from None
    return params


def _values(named: list[tuple[str, Field]], form: dict[str, str]) -> dict[str, object]:
    """Form key -> validated value; blank fields are left out (unchecked boxes are False)."""
    out: dict[str, object] = {}
    for key, f in named:
        raw = (form.get(key) or "").strip()
        if f.type is bool:
            out[key] = raw.lower() in ("1", "true", "on", "yes")
            continue
        if not raw:
            continue
        if f.choices:
            if raw not in f.choices:
                raise FormError(f"{f.label}: choose one of {', '.join(f.choices)}")
            out[key] = raw
            continue
        try:
            value = f.type(raw)
        except ValueError:
            raise FormError(f"{f.label}: {raw[:40]!r} is not a valid {f.type.__name__}") from None
        if f.type is str:
            out[key] = value
            continue
        if (
            value != value
            or (f.lo is not None and value < f.lo)
            or (f.hi is not None and value > f.hi)
        ):
            raise FormError(f"{f.label} must be between {f.lo} and {f.hi}")
        out[key] = value
    return out


def parse(kind: str, form: dict[str, str]) -> dict[str, object]:
    """Validate submitted strings for `kind`; blank fields are left out of the params."""
    if kind == "policy":
        return parse_policy(form)
    if kind not in FIELDS:
        raise FormError(f"unknown run kind {kind!r}; choose one of {', '.join(FIELDS)}")
    return _values([(f.name, f) for f in FIELDS[kind]], form)
