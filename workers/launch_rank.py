"""One rank of a multi-process training run (started by workers/launch.py through torchrun or
``accelerate launch``). It reads the run's spec, trains with the database-free code in ml/, and
on rank 0 only writes progress events, a heartbeat file, the model and the result.

Usage: ``python -m workers.launch_rank SPEC.json`` under a launcher that sets RANK/WORLD_SIZE.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

HEARTBEAT_S = 1.0


class Events:
    """Rank 0's append-only JSON-lines channel to the worker (progress, log lines)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run's life
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=float, allow_nan=False) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()

    def progress(self, step: int, total: int, logs: dict[str, Any] | None = None) -> None:
        finite = {
            k: v
            for k, v in (logs or {}).items()
            if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")
        }
        self.write(
            {"t": "progress", "step": step, "total": total, "logs": finite, "at": time.time()}
        )

    def log(self, line: str) -> None:
        self.write({"t": "log", "line": line})


def _beat(path: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        path.touch()
        stop.wait(HEARTBEAT_S)


def main(spec_path: str) -> int:
    from ml.device import Placement, set_torch_threads
    from ml.params import parse

    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    set_torch_threads(int(spec.get("threads") or 0))
    events = Events(Path(spec["events"])) if rank == 0 else None
    stop = threading.Event()
    if events is not None:
        threading.Thread(target=_beat, args=(Path(spec["heartbeat"]), stop), daemon=True).start()
        events.log(f"{world} process(es) started on {spec['place']['device']}")
    cfg: Any = parse(spec["kind"], spec["cfg"])  # RewardParams, PPOParams or a policy model
    place = Placement(**spec["place"])
    progress = events.progress if events is not None else None
    try:
        if spec["kind"] == "reward":
            from ml.reward import train_reward

            out = train_reward(
                Path(spec["base"]), spec["train"], spec["eval"], Path(spec["out"]), cfg,
                progress, None, place, save=rank == 0,
            )  # fmt: skip
        elif spec["kind"] == "policy":
            out = _policy(spec, cfg, place, progress, rank)
        else:
            from ml.ppo import train_ppo

            out = train_ppo(
                Path(spec["base"]), Path(spec["reward"]), spec["train"], spec["eval"],
                Path(spec["out"]), cfg, progress, None, place, save=rank == 0,
            )  # fmt: skip
    except BaseException:
        print(f"rank {rank} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        raise
    finally:
        stop.set()
    if rank == 0:
        result = Path(spec["result"])
        tmp = result.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, default=float))
        os.replace(tmp, result)
    return 0


def _policy(spec: dict[str, Any], cfg: Any, place: Any, progress: Any, rank: int) -> dict:
    """One rank of an rloo/grpo/dpo run: ml.policy's train; only rank 0 saves the model."""
    from dataclasses import asdict

    from ml.policy import Callbacks, PolicyData, train

    data = PolicyData(
        policy_path=Path(spec["base"]),
        out_dir=Path(spec["out"]),
        reward_path=Path(spec["reward"]) if spec.get("reward") else None,
        train_prompts=spec.get("train") or [],
        train_pairs=spec.get("pairs") or [],
        place=place,
        save=rank == 0,
    )
    return asdict(train(cfg, data, Callbacks(progress, None)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
