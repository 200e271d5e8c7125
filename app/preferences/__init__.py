"""Preference pairs and labeler agreement, shared by exports and reward training."""
