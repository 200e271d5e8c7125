"""Researcher exports: TRL-ready preference datasets, raw judgments, rankings, snapshots."""
