"""Pure helpers of the training jobs: params -> configs, curves, id ranges, JSON safety."""

from __future__ import annotations

import math

import pytest

from app.quality.lineage import id_ranges
from ml.ppo import PPORunConfig
from ml.reward import RewardRunConfig
from workers.jobs.training import (
    JobParamError,
    clean,
    config_from,
    expand_ranges,
    number,
    series,
)


def test_config_from_maps_aliases_and_coerces_types():
    cfg = config_from(
        {"batch_size": "4", "learning_rate": "0.001", "kl_coef": 0.2, "steps": 3}, PPORunConfig
    )
    assert cfg.per_device_train_batch_size == 4 and cfg.num_ppo_steps == 3
    assert cfg.learning_rate == 0.001 and cfg.kl_coef == 0.2
    assert config_from({}, RewardRunConfig) == RewardRunConfig()
    for bad in ({"num_train_epochs": "many"}, {"per_device_train_batch_size": 2.5},
                {"learning_rate": -1}, {"learning_rate": "nan"}, {"unknown": 1}):  # fmt: skip
        with pytest.raises(JobParamError):
            config_from(bad, RewardRunConfig)


def test_number_bounds():
    assert number({}, "x", 0.5, 0, 1) == 0.5
    assert number({"x": "0.25"}, "x", 0.5, 0, 1) == 0.25
    with pytest.raises(JobParamError, match="between"):
        number({"x": 2}, "x", 0.5, 0, 1)


def test_series_and_ranges_and_clean():
    curves = series([{"step": 1, "loss": 0.9, "epoch": 0.1}, {"step": 2, "loss": math.nan}])
    assert curves == {"loss": [[1, 0.9]]}
    assert id_ranges([5, 1, 2, 3, 7, 8]) == [[1, 3], [5, 5], [7, 8]]
    assert expand_ranges(id_ranges([5, 1, 2, 3, 7, 8])) == [1, 2, 3, 5, 7, 8]
    assert clean({"a": [math.inf, 1.0], "b": {"c": math.nan}}) == {
        "a": [None, 1.0],
        "b": {"c": None},
    }
