"""Training runs as a child process group: ``torchrun`` (gloo on CPU, NCCL on GPUs) or
``accelerate launch --config_file`` (DDP, FSDP, DeepSpeed; single or multi node).

The worker keeps the database side: it prepares the data, writes a spec file, starts the group
in its own session, relays rank 0's progress and log events into the run, stops every rank
within seconds on cancel, and fails the run when a rank dies or rank 0's heartbeat stops. The
model directory is written by rank 0 only; the version stays ``training`` until the worker
registers the result, so a failed group never touches the active model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.callbacks import Cancelled
from workers.jobs.training import JobParamError

POLL_S = 0.3
KILL_GRACE_S = 5.0
LOG_TAIL_CHARS = 3000


@dataclass(frozen=True)
class Launch:
    """How a training run executes: in the worker process, or as N ranks under a launcher."""

    processes: int
    accelerate_config: Path | None

    @property
    def in_process(self) -> bool:
        return self.processes <= 1 and self.accelerate_config is None


def launch_for(cfg: Any, settings: Any, place: Any = None) -> Launch:
    """The run's process count and accelerate config (its override, else the settings).

    Without an accelerate config the ranks share this machine: at most one per CPU core on CPU,
    one per GPU on CUDA (JobParamError otherwise, before anything starts)."""
    processes = cfg.num_processes or settings.train_processes
    name = cfg.accelerate_config or settings.accelerate_config or ""
    if not name:
        device = getattr(place, "device", "cpu")
        if device.startswith("cuda"):
            import torch

            limit, what = torch.cuda.device_count(), "CUDA devices"
        elif device == "mps":
            limit, what = 1, "MPS devices"
        else:
            limit, what = os.cpu_count() or 1, "CPU cores"
        if processes > max(limit, 1):
            raise JobParamError(
                f"num_processes={processes}: this machine has {limit} {what}; "
                "use an accelerate config for more"
            )
        return Launch(processes, None)
    path = Path(name)
    if not path.is_absolute() or cfg.accelerate_config:
        if settings.accelerate_dir is None:
            raise JobParamError(
                f"accelerate_config {name!r}: set PREFLOOP_ACCELERATE_DIR to the folder of configs"
            )
        path = Path(settings.accelerate_dir) / name  # run params allow a bare file name only
    if not path.is_file():
        raise JobParamError(f"accelerate config {path} does not exist")
    return Launch(processes, path)


def command(launch: Launch, spec: Path) -> list[str]:
    """The launcher command line for ``spec``."""
    entry = ["workers.launch_rank", str(spec)]
    if launch.accelerate_config is not None:
        cmd = [str(Path(sys.executable).with_name("accelerate")), "launch"]
        cmd += ["--config_file", str(launch.accelerate_config)]
        if launch.processes > 1:
            cmd += ["--num_processes", str(launch.processes)]
        return [*cmd, "--module", *entry]
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(launch.processes), "--module", *entry,
    ]  # fmt: skip


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the whole group, SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            # the launcher is gone; make sure no orphaned rank of its group survives it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


def run_ranks(
    ctx: Any, kind: str, spec: dict[str, Any], launch: Launch, progress: Any, threads: int = 0
) -> dict[str, Any]:
    """Run ``kind`` training as a process group; returns rank 0's result metrics.

    Raises :class:`Cancelled` when the run is cancelled (every rank is stopped first) and
    RuntimeError with the launcher's log tail when a rank fails or rank 0 stops beating."""
    with tempfile.TemporaryDirectory(prefix=f"prefloop-{kind}-ranks-") as tmp:
        d = Path(tmp)
        names = {"events": "events.jsonl", "result": "result.json", "heartbeat": "beat"}
        files = {k: d / f for k, f in names.items()}
        per_rank = max(1, threads // max(launch.processes, 1)) if threads else 0
        full = {**spec, "kind": kind, **{k: str(v) for k, v in files.items()}, "threads": per_rank}
        spec_path = d / "spec.json"
        spec_path.write_text(json.dumps(full))
        files["events"].touch()
        env = dict(os.environ)
        if per_rank:
            env["OMP_NUM_THREADS"] = str(per_rank)
        log_path = d / "launch.log"
        cmd = command(launch, spec_path)
        ctx.log(f"launching {launch.processes} process(es): {' '.join(cmd[1:4])} ...")
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        stale_after = float(ctx.settings.stale_after_seconds)
        offset = 0
        try:
            while True:
                offset = _relay(ctx, files["events"], offset, progress)
                if proc.poll() is not None:
                    break
                if ctx.should_stop():
                    _kill_group(proc)
                    raise Cancelled("training cancelled; all ranks stopped")
                beat = files["heartbeat"]
                if beat.exists() and time.time() - beat.stat().st_mtime > stale_after:
                    _kill_group(proc)
                    raise RuntimeError(
                        f"rank 0 stopped heartbeating (> {stale_after:g}s); all ranks stopped\n"
                        + _tail(log_path)
                    )
                time.sleep(POLL_S)
        except BaseException:
            if proc.poll() is None:
                _kill_group(proc)
            raise
        _kill_group(proc)  # a rank left behind by a launcher that already exited
        _relay(ctx, files["events"], offset, progress)
        if proc.returncode != 0 or not files["result"].exists():
            raise RuntimeError(
                f"training process group failed (exit {proc.returncode}):\n{_tail(log_path)}"
            )
        result: dict[str, Any] = json.loads(files["result"].read_text())
        return result


def _relay(ctx: Any, path: Path, offset: int, progress: Any) -> int:
    """Forward complete new event lines to the run; returns the new offset."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    for raw in data[:end].splitlines():
        event = json.loads(raw)
        if event["t"] == "progress":
            progress(event["step"], event["total"], event.get("logs") or {})
        elif event["t"] == "log":
            ctx.log(event["line"])
    return offset + end
