"""The admin run form, rendered from the run-parameter models in ml/params.py (fields whose
``json_schema_extra`` carries a ``form`` label) and validated by the same models."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic.fields import FieldInfo

from ml import params as run_params


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


def _base_type(annotation: Any) -> tuple[type, tuple[str, ...]]:
    """(python type, choices) of a field annotation, ignoring Optional."""
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    first = args[0]
    if get_origin(first) is Literal:
        return str, tuple(str(c) for c in get_args(first))
    while get_args(first) and get_origin(first) is not None and get_origin(first) is not list:
        first = get_args(first)[0]  # Annotated[int, ...]
    return (first if isinstance(first, type) else str), ()


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo: float | None = None
    hi: float | None = None
    for m in info.metadata:
        if isinstance(m, at.Ge | at.Gt):
            v = m.ge if isinstance(m, at.Ge) else m.gt
            lo = v if isinstance(v, int | float) else lo
        if isinstance(m, at.Le | at.Lt):
            w = m.le if isinstance(m, at.Le) else m.lt
            hi = w if isinstance(w, int | float) else hi
    return lo, hi


def _between(field: Field) -> str:
    """ " (must be between 2 and 9)": bounds as the admin typed them (no 2.0 for an int)."""
    lo = "" if field.lo is None else f"{field.lo:g}"
    hi = "" if field.hi is None else f"{field.hi:g}"
    if lo and hi:
        return f" (must be between {lo} and {hi})"
    return f" (must be at least {lo})" if lo else f" (must be at most {hi})"


def fields_of(model: type[run_params.RunParams]) -> list[Field]:
    """The form fields of a parameter model: its own first, then compute/LoRA fields."""
    own = [n for n in model.__annotations__ if n in model.model_fields]
    order = own + [n for n in model.model_fields if n not in own]
    out = []
    for name in order:
        info = model.model_fields[name]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        label = extra.get("form")
        if not label:
            continue
        kind, choices = _base_type(info.annotation)
        lo, hi = _bounds(info)
        out.append(
            Field(name, str(label), kind, info.default, lo, hi, info.description or "", choices)
        )
    return out


FIELDS: dict[str, list[Field]] = {
    kind: fields_of(m) for kind, m in run_params.PARAMS.items() if kind != "policy"
}
_SHARED = set(run_params.PolicyGateParams.model_fields)
#: policy algorithm -> its form fields (own, then the shared gate fields, marked `shared`)
POLICY_FIELDS: dict[str, list[Field]] = {
    a: [replace(f, shared=f.name in _SHARED) for f in fields_of(m)]
    for a, m in run_params.POLICY_MODELS.items()
}


def parse_policy(form: dict[str, str]) -> dict[str, object]:
    """The policy form: the chosen algorithm's own fields (named `algo.field`) and the gate's."""
    algorithm = (form.get("algorithm") or "").strip()
    if algorithm not in POLICY_FIELDS:
        raise FormError(f"unknown algorithm; choose one of {', '.join(POLICY_FIELDS)}")
    fields = POLICY_FIELDS[algorithm]
    raw: dict[str, object] = {"algorithm": algorithm}
    for f in fields:
        value = (form.get(f.name if f.shared else f"{algorithm}.{f.name}") or "").strip()
        if f.type is bool:
            raw[f.name] = value.lower() in ("1", "true", "on", "yes")
        elif value:
            raw[f.name] = value
    try:
        return run_params.parse("policy", raw).stored()
    except run_params.ParamError as exc:
        first = exc.issues[0]
        loc = [str(x) for x in first["loc"] if str(x) != algorithm]
        name = loc[0] if loc else ""
        field = next((f for f in fields if f.name == name), None)
        shown = str(raw.get(name, ""))[:40]
        bounds = ""
        if field is not None and (field.lo is not None or field.hi is not None):
            bounds = _between(field)
        label = field.label if field is not None else (name or algorithm)
        raise FormError(f"{label} {shown!r}: {first['msg']}{bounds}") from None


def parse(kind: str, form: dict[str, str]) -> dict[str, object]:
    """Validate submitted strings for `kind` with its model; blank fields are left out."""
    if kind == "policy":
        return parse_policy(form)
    if kind not in FIELDS:
        raise FormError(f"unknown run kind {kind!r}; choose one of {', '.join(FIELDS)}")
    raw: dict[str, object] = {}
    labels = {f.name: f.label for f in FIELDS[kind]}
    for f in FIELDS[kind]:
        value = (form.get(f.name) or "").strip()
        if f.type is bool:
            raw[f.name] = value.lower() in ("1", "true", "on", "yes")
        elif value:
            raw[f.name] = value
    try:
        return run_params.parse(kind, raw).stored()
    except run_params.ParamError as exc:
        first = exc.issues[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        shown = str(raw.get(name, ""))[:40]
        field = next((f for f in FIELDS[kind] if f.name == name), None)
        bounds = ""
        if field is not None and (field.lo is not None or field.hi is not None):
            bounds = _between(field)
        raise FormError(f"{labels.get(name, name)} {shown!r}: {first['msg']}{bounds}") from None
