"""Geometry of the run page's gate charts (inline SVG drawn by the template, no JS).

Three small charts from a policy run's ``metrics["gate"]``: held-out reward per prompt before
vs after (a point above the diagonal improved), the gain's 95% interval against zero, and KL to
the reference against its bound; for DPO also the held-out preference accuracy before/after.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

W, H, L, R, T, B = 300, 200, 44, 12, 18, 26


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    return lambda v: a + (v - lo) / (hi - lo) * (b - a)


def _scatter(per_prompt: list[Any]) -> dict[str, Any] | None:
    raw = [(_num(p[0]), _num(p[1])) for p in per_prompt if isinstance(p, list) and len(p) == 2]
    pts = [(b, a) for b, a in raw if b is not None and a is not None]
    if not pts:
        return None
    lo = min(min(b, a) for b, a in pts)
    hi = max(max(b, a) for b, a in pts)
    pad = (hi - lo) * 0.05 or 0.5
    lo, hi = lo - pad, hi + pad
    sx, sy = _scale(lo, hi, L, W - R), _scale(lo, hi, H - B, T)
    return {
        "points": [
            {"x": round(sx(b), 1), "y": round(sy(a), 1), "up": a > b, "title": f"{b:.3f} → {a:.3f}"}
            for b, a in pts
        ],
        "diag": [round(sx(lo), 1), round(sy(lo), 1), round(sx(hi), 1), round(sy(hi), 1)],
        "lo": lo,
        "hi": hi,
    }


def _interval(mean: float, low: float, high: float) -> dict[str, Any]:
    ends = [v for v in (low, high, mean, 0.0) if math.isfinite(v)]
    lo, hi = min(ends), max(ends)
    pad = (hi - lo) * 0.1 or 0.5
    sx = _scale(lo - pad, hi + pad, L, W - R)

    def x(v: float) -> float:
        return round(sx(min(max(v, lo - pad), hi + pad)), 1)

    return {
        "zero": x(0.0),
        "low": x(low),
        "high": x(high),
        "mean": x(mean),
        "lo": lo - pad,
        "hi": hi + pad,
    }


def gate_view(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the template draws, or None for runs without a gate."""
    gate = (metrics or {}).get("gate")
    if not isinstance(gate, dict):
        return None
    view: dict[str, Any] = {
        "passed": bool((metrics or {}).get("gate_passed")),
        "reason": str((metrics or {}).get("gate_reason") or ""),
        "W": W,
        "H": H,
        "L": L,
        "R": R,
        "T": T,
        "B": B,
    }
    gain = gate.get("gain") if isinstance(gate.get("gain"), dict) else None
    if gain is not None:
        mean, low, high = (_num(gain.get(k)) for k in ("mean", "low", "high"))
        if mean is not None and low is not None and high is not None:
            view["gain"] = {**_interval(mean, low, high), "vals": (mean, low, high)}
        view["scatter"] = _scatter(gate.get("per_prompt") or [])
    kl, bound = _num(gate.get("kl")), _num(gate.get("kl_max"))
    if kl is not None and bound is not None:
        top = max(kl, bound, 1e-9) * 1.15
        sx = _scale(0.0, top, L, W - R)
        view["kl"] = {
            "value": kl,
            "bound": bound,
            "x": round(sx(max(kl, 0.0)), 1),
            "bx": round(sx(bound), 1),
            "over": kl > bound,
        }
    pref = gate.get("preference") if isinstance(gate.get("preference"), dict) else None
    if pref is not None:
        before, after = _num(pref.get("accuracy_before")), _num(pref.get("accuracy_after"))
        if before is not None and after is not None:
            sx = _scale(0.0, 1.0, L, W - R)
            view["pref"] = {
                "before": before,
                "after": after,
                "bx": round(sx(before), 1),
                "ax": round(sx(after), 1),
                "margin": tuple(
                    _num(pref.get(k)) for k in ("margin_mean", "margin_low", "margin_high")
                ),
            }
    return view
