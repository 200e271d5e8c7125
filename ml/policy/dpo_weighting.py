"""Trust-weighted DPO: TRL 1.12's ``DPOTrainer`` with a per-pair loss weight.

A row's ``weight`` (workers.datasets.reward_rows with weighting=agreement|gold) scales its
pair's DPO loss, normalised per batch exactly as the reward loss (ml/reward.py)::

    loss = sum_i(w_i * l_i) / sum_i(w_i)

where ``l_i`` is TRL's own per-pair loss for the configured ``loss_type``. Scaling every weight
alike changes nothing; a pair of weight 0 contributes nothing (an all-zero batch gives loss 0).

TRL computes ``l_i`` inside ``DPOTrainer._compute_loss`` and reduces it there, in the same
method, with a plain ``per_sequence_loss.mean()`` (one per loss type), before logging its
metrics; no argument exposes the per-pair values, and TRL's ``margin``-style options shift a
pair's logit rather than scale its loss. So the subclass keeps TRL's whole loss and replaces
just that reduction: while TRL computes a training loss, a torch function mode turns the first
plain mean of a per-pair vector that carries gradient into the weighted mean above. It checks
that it replaced exactly one mean per loss type, so a TRL whose loss no longer has that shape
fails loudly instead of training unweighted. Evaluation (no gradient) stays unweighted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from trl import DPOTrainer

from ..reward import _WeightCollator

_MEANS = (torch.Tensor.mean, torch.mean)


def weighted_mean(losses: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum(w * l) / sum(w), as ml.reward.weighted_pair_loss normalises (0 when all w are 0)."""
    w = weight.to(device=losses.device, dtype=losses.dtype)
    return (w * losses).sum() / w.sum().clamp_min(1e-12)


class _WeightedPairMean(TorchFunctionMode):
    """Replaces the first ``expected`` plain means of a grad-carrying vector of per-pair values
    (length = number of pairs) with :func:`weighted_mean`; counts them in ``hits``."""

    def __init__(self, weight: torch.Tensor, expected: int) -> None:
        super().__init__()
        self.weight, self.expected, self.hits = weight, expected, 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if self.hits < self.expected and func in _MEANS and len(args) == 1 and not kwargs:
            t = args[0]
            if (
                isinstance(t, torch.Tensor)
                and t.ndim == 1
                and t.shape[0] == self.weight.shape[0]
                and t.requires_grad
            ):
                self.hits += 1
                return weighted_mean(t, self.weight)
        return func(*args, **kwargs)


class WeightedDPOTrainer(DPOTrainer):
    """DPOTrainer whose training loss weighs each pair by its ``weight`` column."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = _WeightCollator(self.data_collator)  # adds batch["weight"]

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        cols: list[str] = list(self._signature_columns or [])
        if "weight" not in cols:  # else remove_unused_columns drops it before collation
            # TRL declares it None on the base class, so mypy sees only that type
            self._signature_columns = [*cols, "weight"]  # type: ignore[assignment]

    def compute_loss(
        self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        weight = inputs.pop("weight", None)
        if weight is None or not torch.is_grad_enabled():
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = _WeightedPairMean(weight, len(self.loss_types))
        with mode:
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if mode.hits != mode.expected:
            raise RuntimeError(
                f"weighted DPO found {mode.hits} of {mode.expected} per-pair loss means in "
                "TRL's DPOTrainer loss; this TRL version is not supported for weighting"
            )
        return out
