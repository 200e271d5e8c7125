"""Run queue: generate, reward and PPO runs claimed by workers."""
