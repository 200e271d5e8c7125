"""Where models run: device and precision, chosen in one place for training, generation and /v1.

``PREFLOOP_DEVICE`` (or a run's ``device``) is ``auto|cpu|cuda|cuda:N|mps``; ``auto`` picks CUDA
when present, then MPS, then CPU. ``PREFLOOP_DTYPE`` (or a run's ``dtype``) is ``auto`` (bf16 on
a GPU that supports it, fp16 on other GPUs and MPS for inference, fp32 on CPU) or an explicit
``float32|bfloat16|float16``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class DeviceError(ValueError):
    """A device or dtype that this machine cannot honour."""


@dataclass(frozen=True)
class Placement:
    """A resolved device and dtype (names, so they serialize into run metrics)."""

    device: str
    dtype: str

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @property
    def is_gpu(self) -> bool:
        return self.device.startswith(("cuda", "mps"))

    def trainer_flags(self) -> dict[str, Any]:
        """Mixed-precision and device flags for a transformers/TRL ``TrainingArguments``."""
        import os

        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        return {
            "bf16": self.dtype == "bfloat16",
            "fp16": self.dtype == "float16",
            "use_cpu": self.device == "cpu",
            # ranks on CPU talk over gloo; set only when launched as several processes
            "ddp_backend": "gloo" if distributed and self.device == "cpu" else None,
        }


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _bf16_ok(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    return False


def resolve_device(spec: str | None = "auto") -> str:
    """The torch device name for ``spec``; DeviceError when it is not available here."""
    spec = (spec or "auto").strip().lower()
    if not DEVICE_RE.match(spec):
        raise DeviceError(f"device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
    if spec == "cpu":
        return "cpu"
    count = _cuda_count()
    if spec == "auto":
        if count:
            return "cuda:0"
        return "mps" if _mps() else "cpu"
    if spec == "mps":
        if not _mps():
            raise DeviceError("device mps: Apple MPS is not available on this machine")
        return "mps"
    index = int(spec.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} CUDA device(s)" if count else "no CUDA device"
        raise DeviceError(f"device {spec}: this machine has {have}")
    return f"cuda:{index}"


def resolve_dtype(spec: str | None, device: str, training: bool = True) -> str:
    """The dtype name for ``spec`` on ``device``: auto = bf16 where supported, fp32 on CPU."""
    spec = (spec or "auto").strip().lower()
    if spec not in DTYPES:
        raise DeviceError(f"dtype {spec!r}: expected one of {', '.join(DTYPES)}")
    if spec == "auto":
        if device.startswith("cuda"):
            return "bfloat16" if _bf16_ok(device) else ("float32" if training else "float16")
        if device == "mps":
            return "float32" if training else "float16"
        return "float32"
    if spec == "bfloat16" and device.startswith("cuda") and not _bf16_ok(device):
        raise DeviceError(f"dtype bfloat16 is not supported on {device}")
    if spec == "float16" and device == "cpu" and training:
        raise DeviceError("dtype float16 cannot be trained on CPU; use float32 or bfloat16")
    return spec


def placement(device: str | None, dtype: str | None, training: bool = True) -> Placement:
    """Device and dtype for a run or a server: one policy, used everywhere."""
    dev = resolve_device(device)
    return Placement(dev, resolve_dtype(dtype, dev, training))


def set_torch_threads(n: int) -> None:
    """Cap torch's CPU threads (oversubscribed threads are much slower on a shared machine)."""
    if n > 0:
        import torch

        torch.set_num_threads(n)
