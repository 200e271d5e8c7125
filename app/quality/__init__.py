"""Labeler quality: gold tasks, per-labeler statistics and flags, trust weights, lineage and
exclusion of a labeler's judgments."""
