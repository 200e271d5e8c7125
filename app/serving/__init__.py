"""OpenAI-compatible serving of the active policy."""
