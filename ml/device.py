"""Where models run: torch thread count (device and dtype resolution join here)."""

from __future__ import annotations


def set_torch_threads(n: int) -> None:
    """Cap torch's CPU threads (oversubscribed threads are much slower on a shared machine)."""
    if n > 0:
        import torch

        torch.set_num_threads(n)
