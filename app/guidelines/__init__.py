"""Labeling guidelines: Markdown the admin edits and labelers read beside the task."""
