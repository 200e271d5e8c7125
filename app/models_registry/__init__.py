"""Model store: versions of policy and reward models, activation and rollback."""
