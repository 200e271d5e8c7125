"""The per-process metric files of `prefloop serve` (imports no prometheus_client: the
variable must be set before the first import of it, in this process and in its workers)."""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


METRIC_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def prepare_multiproc_dir(data_dir: Path) -> Path:
    """Create the directory of this server's metric files, remove metric files a previous run
    left there (they would be summed in; nothing else in it is touched), export its path."""
    chosen = os.environ.get(MULTIPROC_ENV)
    path = Path(chosen) if chosen else data_dir / "prometheus-multiproc"
    path.mkdir(parents=True, exist_ok=True)
    for pattern in METRIC_FILES:
        for stale in path.glob(pattern):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path
