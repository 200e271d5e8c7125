"""Admin pages: dashboard, training runs and model versions."""
