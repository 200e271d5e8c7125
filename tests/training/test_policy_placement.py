"""How rloo/grpo/dpo load their models for a placement (GPU placements simulated: no GPU here),
and that TRL 1.12 really loads the full fine-tune's reference with our ``model_init_kwargs`` and
no reference at all with LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.device import Placement
from ml.params import DPOParams, GRPOParams
from ml.policy import model_dtypes, ref_init_kwargs, trl_common

CPU = Placement("cpu", "float32")
GPU = Placement("cuda:0", "bfloat16")


def test_dtypes_and_reference_kwargs_follow_the_placement() -> None:
    full, lora = GRPOParams(), GRPOParams(lora_r=8)
    assert model_dtypes(full, CPU) == model_dtypes(lora, CPU) == (torch.float32, torch.float32)
    assert model_dtypes(full, GPU) == (torch.float32, torch.bfloat16)  # fp32 master weights
    assert model_dtypes(lora, GPU) == (torch.bfloat16, torch.bfloat16)  # frozen base in bf16
    assert ref_init_kwargs(full, CPU) is None and ref_init_kwargs(lora, GPU) is None
    assert ref_init_kwargs(full, GPU) == {"dtype": "bfloat16", "device_map": None}
    flags = trl_common(full, "out", GPU)
    assert (flags["bf16"], flags["fp16"], flags["use_cpu"]) == (True, False, False)
    flags = trl_common(full, "out", CPU)
    assert (flags["bf16"], flags["use_cpu"], flags["model_init_kwargs"]) == (False, True, None)


def _dpo(policy_dir: Path, tmp: Path, cfg: DPOParams, init: dict | None) -> object:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from ml.policy import peft_config
    from ml.store import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    args = {**trl_common(cfg, str(tmp), CPU), "model_init_kwargs": init}
    row = {
        "prompt": [{"role": "user", "content": "hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    return DPOTrainer(
        model=model,
        args=DPOConfig(**args, max_length=64),
        train_dataset=Dataset.from_list([row] * 2),
        processing_class=load_tokenizer(policy_dir, padding_side="left"),
        peft_config=peft_config(cfg, model),
    )


@pytest.mark.slow
def test_trl_builds_the_reference_as_documented(tiny_policy_dir: Path, tmp_path: Path) -> None:
    # full fine-tune: TRL loads a second copy from the policy's path with our kwargs (the dtype
    # a GPU run asks for), so the frozen reference is in the run's dtype
    full = _dpo(tiny_policy_dir, tmp_path, DPOParams(), {"dtype": "bfloat16", "device_map": None})
    ref = full.ref_model  # type: ignore[attr-defined]
    assert ref is not None and next(ref.parameters()).dtype == torch.bfloat16
    # LoRA: no second copy; the reference is the policy with its adapter disabled
    lora = _dpo(tiny_policy_dir, tmp_path, DPOParams(lora_r=4), None)
    assert lora.ref_model is None  # type: ignore[attr-defined]
    assert hasattr(lora.model, "disable_adapter")  # type: ignore[attr-defined]


def _length_reward(completions: list, **_: object) -> list[float]:
    return [float(len(str(c))) for c in completions]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_online_trainers_build_the_reference_as_documented(
    algorithm: str, tiny_policy_dir: Path, tmp_path: Path
) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    from ml.params import RLOOParams
    from ml.policy import peft_config
    from ml.policy.online import group_args
    from ml.store import load_tokenizer

    params, config, trainer_cls = {
        "rloo": (RLOOParams, RLOOConfig, RLOOTrainer),
        "grpo": (GRPOParams, GRPOConfig, GRPOTrainer),
    }[algorithm]
    refs = []
    for lora_r, init in ((0, {"dtype": "bfloat16", "device_map": None}), (4, None)):
        cfg = params(lora_r=lora_r, batch_size=2, num_generations=2)
        model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir, dtype=torch.float32)
        trainer = trainer_cls(
            model=model,
            reward_funcs=_length_reward,
            args=config(**{**group_args(cfg, str(tmp_path), CPU), "model_init_kwargs": init}),
            train_dataset=Dataset.from_dict({"prompt": [[{"role": "user", "content": "hi"}]]}),
            processing_class=load_tokenizer(tiny_policy_dir, padding_side="left"),
            peft_config=peft_config(cfg, model),
        )
        refs.append(trainer.ref_model)
    assert refs[0] is not None and next(refs[0].parameters()).dtype == torch.bfloat16
    assert refs[1] is None  # LoRA: the reference is the policy with its adapter disabled
