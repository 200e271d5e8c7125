"""The demo comparisons loaded by `prefloop bootstrap` (written for prefloop)."""

from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo.jsonl")
