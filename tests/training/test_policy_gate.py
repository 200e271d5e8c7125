"""The promotion gate: paired bootstrap interval, the decision both ways, scoring real models."""

from __future__ import annotations

import math
import random

import pytest

from ml.policy import gate
from ml.policy.gate import Interval, bootstrap, decide
from ml.policy.params import PolicyParamError, parse_params


def test_bootstrap_interval_covers_the_mean_and_is_deterministic():
    rng = random.Random(0)
    values = [rng.gauss(0.3, 1.0) for _ in range(40)]
    a, b = bootstrap(values, 2000, seed=1), bootstrap(values, 2000, seed=1)
    assert a == b and a.n == 40
    assert a.low < a.mean < a.high
    assert a.mean == pytest.approx(sum(values) / 40)
    # the half-width is about 1.96 standard errors of the mean
    se = (sum((v - a.mean) ** 2 for v in values) / 39) ** 0.5 / 40**0.5
    assert (a.high - a.low) / 2 == pytest.approx(1.96 * se, rel=0.2)


def test_bootstrap_edge_cases():
    assert bootstrap([]).n == 0 and math.isnan(bootstrap([]).mean)
    one = bootstrap([1.0])
    assert one.low == -math.inf  # one prompt cannot rule out noise
    assert bootstrap([math.nan, 1.0, 2.0]).n == 2


def test_noise_does_not_pass_but_a_clear_gain_does():
    # the case from the issue: a +0.048 mean gain on 32 prompts with unit noise
    rng = random.Random(3)
    noisy = [0.048 + rng.gauss(0, 1.0) for _ in range(32)]
    ok, reason = decide(bootstrap(noisy), kl=0.1, kl_max=1.0)
    assert not ok and "not distinguishable from noise" in reason
    clear = [0.8 + rng.gauss(0, 0.3) for _ in range(32)]
    ok, reason = decide(bootstrap(clear), kl=0.1, kl_max=1.0)
    assert ok and "95% CI" in reason


def test_kl_bound_and_missing_checks_fail():
    good = Interval(0.5, 0.2, 0.8, 10)
    assert not decide(good, kl=2.0, kl_max=1.0)[0]
    assert "exceeds the bound" in decide(good, kl=2.0, kl_max=1.0)[1]
    assert not decide(good, kl=math.nan, kl_max=1.0)[0]
    assert not decide(None, kl=0.1, kl_max=1.0)[0]
    assert not decide(Interval(0.5, -math.inf, math.inf, 1), kl=0.1, kl_max=1.0)[0]


def test_preference_check_both_ways():
    rise = gate.preference_check([0.5, 0.4, 0.6, 0.3], ["a", "a", "b", "c"], 500, 0)
    assert rise["accuracy_after"] == 1.0 and rise["margin_low"] > 0
    assert decide(None, 0.1, 1.0, rise)[0]
    flat = gate.preference_check([0.0, 0.0, 0.0, 0.0], ["a", "b", "c", "d"], 500, 0)
    ok, reason = decide(None, 0.1, 1.0, flat)
    assert not ok and "did not rise" in reason
    mixed = gate.preference_check([0.9, -0.8, 0.1, -0.05], ["a", "b", "c", "d"], 500, 0)
    assert not decide(None, 0.1, 1.0, mixed)[0]
    # with a reward model too, both must pass
    assert not decide(Interval(0.1, -0.1, 0.3, 8), 0.1, 1.0, rise)[0]


def test_params_validate_per_algorithm():
    assert parse_params({}).algorithm == "ppo"
    grpo = parse_params({"algorithm": "grpo", "batch_size": 8, "num_generations": 4})
    assert grpo.beta > 0 and grpo.per_device_train_batch_size == 8
    with pytest.raises(PolicyParamError, match="beta"):
        parse_params({"algorithm": "grpo", "beta": 0})
    with pytest.raises(PolicyParamError, match="multiple of num_generations"):
        parse_params({"algorithm": "rloo", "batch_size": 6, "num_generations": 4})
    with pytest.raises(PolicyParamError, match="Extra inputs"):
        parse_params({"algorithm": "dpo", "num_generations": 4})
    with pytest.raises(PolicyParamError, match="Input should be 'ppo'"):
        parse_params({"algorithm": "reinforce"})


def test_policy_against_itself_has_zero_kl_and_fails(tiny_policy_dir, tiny_reward_dir):
    prompts = [[{"role": "user", "content": f"Hello, how are you? {i}"}] for i in range(6)]
    inputs = gate.GateInputs(prompts, kl_max=1.0, samples_per_prompt=2, max_new_tokens=8)
    result = gate.evaluate(tiny_policy_dir, tiny_policy_dir, tiny_reward_dir, inputs)
    assert result.kl == pytest.approx(0.0, abs=1e-4)
    assert result.gain is not None and result.gain["mean"] == pytest.approx(0.0, abs=1e-5)
    assert not result.passed and "noise" in result.reason
    assert len(result.per_prompt) == 6
    metrics = result.as_metrics()
    assert metrics["gate"]["gain"]["n"] == 6 and metrics["gate_passed"] is False
