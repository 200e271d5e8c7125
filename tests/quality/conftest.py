"""The training fixtures (an active tiny policy, one torch thread) for exclude-and-retrain."""

from tests.training.conftest import _single_thread, active_tiny_policy  # noqa: F401
