"""The served policy: loaded lazily in the web process, reloaded when the active version changes.

The database pointer is read at most every `serving_reload_seconds`. A new version loads in a
background thread while the old one keeps answering; requests hold a reference to the generator
they started with, so an activation never fails a request in flight (the old model is freed when
its last request finishes)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import ModelKind, ModelStatus, ModelVersion

log = logging.getLogger("prefloop.serving")

ALIAS = "prefloop-policy"


class NoModel(Exception):
    """Nothing to serve yet (HTTP 503)."""


@dataclass(frozen=True)
class Target:
    version_id: int | None
    name: str
    path: str


@dataclass
class Loaded:
    target: Target
    generator: Any
    loaded_at: float


class ServingEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loaded: Loaded | None = None
        self._checked = 0.0
        self._loading: asyncio.Task[Loaded] | None = None
        self._failed: dict[Target, str] = {}
        self._lock = asyncio.Lock()

    async def _target(self, session: AsyncSession) -> Target:
        row = (
            await session.execute(
                select(ModelVersion.id, ModelVersion.version, ModelVersion.path).where(
                    ModelVersion.kind == ModelKind.policy,
                    ModelVersion.status == ModelStatus.active,
                )
            )
        ).first()
        if row is not None:
            return Target(row[0], row[1], row[2])
        ref = self.settings.policy_model.strip()
        if ref and Path(ref).expanduser().is_dir():
            return Target(None, Path(ref).name or ALIAS, str(Path(ref).expanduser()))
        if self.settings.generation_backend == "openai" and self.settings.generation_model:
            return Target(None, self.settings.generation_model, "")
        raise NoModel(
            "no active policy yet: start `prefloop worker` (it sets up the embedded SmolLM2) or "
            "activate one with `prefloop models activate VERSION`"
        )

    def _build(self, target: Target) -> Loaded:
        from ml.device import placement, set_torch_threads
        from ml.generate import generator_for_settings

        s = self.settings
        place = None
        if s.generation_backend != "openai":
            set_torch_threads(s.torch_threads)
            place = placement(s.device, s.dtype, training=False)
        try:
            gen = generator_for_settings(target.path, target.name, s, place)
        except ValueError as e:
            raise NoModel(str(e)) from None
        return Loaded(target, gen, time.monotonic())

    async def _load(self, target: Target) -> Loaded:
        log.info("loading policy %s from %s", target.name, target.path)
        loaded = await asyncio.to_thread(self._build, target)
        self.loaded = loaded  # requests already running keep their own reference to the old one
        log.info("serving policy %s", target.name)
        return loaded

    async def current(self, session: AsyncSession) -> Loaded:
        """The generator to use for a new request."""
        now = time.monotonic()
        if self.loaded is not None and now - self._checked < self.settings.serving_reload_seconds:
            return self.loaded
        async with self._lock:
            if self.loaded is None or now - self._checked >= self.settings.serving_reload_seconds:
                self._checked = time.monotonic()
                target = await self._target(session)
                if target in self._failed:
                    if self.loaded is None:
                        raise NoModel(self._failed[target])
                elif (self.loaded is None or self.loaded.target != target) and (
                    self._loading is None or self._loading.done()
                ):
                    self._loading = asyncio.create_task(self._load(target))
                    self._loading.add_done_callback(partial(self._done, target=target))
            pending = self._loading
        if self.loaded is None and pending is not None:
            try:
                return await asyncio.shield(pending)
            except NoModel:
                raise
            except Exception as e:  # the reason is logged (_done); clients get no internals
                raise NoModel("cannot load the active policy; see the server log") from e
        if self.loaded is None:
            raise NoModel("no policy loaded")
        return self.loaded

    def _done(self, task: asyncio.Task[Loaded], target: Target) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("loading policy %s failed: %s", target.name, exc)
            self._failed[target] = f"cannot load policy {target.name}; see the server log"

    def names(self) -> set[str]:
        """Model names a request may ask for: the alias, the loaded and the loading version."""
        names = {ALIAS}
        if self.loaded is not None:
            names.add(self.loaded.target.name)
        return names
