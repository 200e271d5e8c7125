"""The per-process metric files of `prefloop serve` (imports no prometheus_client: the
variable must be set before the first import of it, in this process and in its workers)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiproc_dir(data_dir: Path) -> Path:
    """Empty (or create) the directory of this server's metric files and export its path;
    files left by a previous run would otherwise be summed in."""
    chosen = os.environ.get(MULTIPROC_ENV)
    path = Path(chosen) if chosen else data_dir / "prometheus-multiproc"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path
