"""Device and dtype resolution, with CUDA and MPS simulated (tests never need a GPU)."""

from __future__ import annotations

import pytest

from ml import device as dev
from ml.device import DeviceError, Placement, placement, resolve_device, resolve_dtype


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Simulate a machine: set .cuda (device count), .bf16, .mps."""

    class Machine:
        cuda = 0
        bf16 = False
        mps = False

    m = Machine()
    monkeypatch.setattr(dev, "_cuda_count", lambda: m.cuda)
    monkeypatch.setattr(dev, "_bf16_ok", lambda d: d.startswith("cuda") and m.bf16)
    monkeypatch.setattr(dev, "_mps", lambda: m.mps)
    return m


def test_cpu_only_machine(gpu) -> None:  # type: ignore[no-untyped-def]
    assert resolve_device("auto") == resolve_device(None) == resolve_device("cpu") == "cpu"
    assert placement("auto", "auto") == Placement("cpu", "float32")
    for spec in ("cuda", "cuda:0", "mps"):
        with pytest.raises(DeviceError):
            resolve_device(spec)
    with pytest.raises(DeviceError, match="expected"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="CPU"):
        resolve_dtype("float16", "cpu")
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"  # explicit override is honoured


def test_auto_picks_cuda_and_bf16_where_supported(gpu) -> None:  # type: ignore[no-untyped-def]
    gpu.cuda, gpu.bf16, gpu.mps = 2, True, True
    assert placement("auto", "auto") == Placement("cuda:0", "bfloat16")
    assert placement("cuda:1", None).device == "cuda:1"
    with pytest.raises(DeviceError, match="2 CUDA"):
        resolve_device("cuda:2")
    assert placement("cpu", "auto") == Placement("cpu", "float32")
    p = placement("cuda", "auto")
    assert p.trainer_flags()["bf16"] and not p.trainer_flags()["use_cpu"] and p.is_gpu
    gpu.bf16 = False  # e.g. a T4: no bf16; trains fp32, serves fp16
    assert resolve_dtype("auto", "cuda:0") == "float32"
    assert resolve_dtype("auto", "cuda:0", training=False) == "float16"
    with pytest.raises(DeviceError, match="bfloat16"):
        resolve_dtype("bfloat16", "cuda:0")


def test_mps_when_no_cuda(gpu) -> None:  # type: ignore[no-untyped-def]
    gpu.mps = True
    assert placement("auto", "auto") == Placement("mps", "float32")
    assert placement("auto", "auto", training=False) == Placement("mps", "float16")
    assert Placement("cpu", "float32").trainer_flags() == {
        "bf16": False, "fp16": False, "use_cpu": True, "ddp_backend": None,
    }  # fmt: skip


def test_settings_and_run_params_accept_the_same_specs() -> None:
    from pydantic import ValidationError

    from app.config import Settings
    from ml.params import parse

    assert Settings(device="cuda:1", dtype="bfloat16").device == "cuda:1"
    with pytest.raises(ValidationError):
        Settings(device="gpu")
    assert parse("ppo", {"device": "mps", "dtype": "float16"}).device == "mps"


def test_generation_and_serving_load_with_the_one_placement(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    """The generate job's and /v1's generator both take their device/dtype from placement()."""
    import torch

    from app.config import Settings
    from app.serving.engine import ServingEngine, Target
    from ml.generate import GenerationParams, LocalGenerator

    gen = LocalGenerator(tiny_policy_dir, place=placement("cpu", "bfloat16", training=False))
    assert gen.model.dtype == torch.bfloat16 and gen.model.device.type == "cpu"
    texts = gen.generate([[{"role": "user", "content": "hi"}]] * 3, 2, GenerationParams(
        max_new_tokens=4, seed=1))  # fmt: skip
    assert len(texts) == 3 and all(len(t) == 2 for t in texts)
    engine = ServingEngine(Settings(device="cpu", dtype="bfloat16"))
    loaded = engine._build(Target(None, "tiny", str(tiny_policy_dir)))
    assert loaded.generator.model.dtype == torch.bfloat16
    with pytest.raises(DeviceError):  # a device this machine lacks fails loudly, not silently
        ServingEngine(Settings(device="cuda:3"))._build(Target(None, "tiny", str(tiny_policy_dir)))
