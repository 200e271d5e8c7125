"""CPU seconds by process group from /proc (Linux), sampled so short-lived processes count too."""

from __future__ import annotations

import os
import threading
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def procs_now() -> dict[int, tuple[str, int, float]]:
    """pid -> (command line, ppid, cpu seconds)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        try:  # PostgreSQL backends show their database here ("postgres: ... dbname host")
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = ""
        out[int(name)] = (cmd, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return out


def _machine() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) of the whole machine."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq
    return busy / TICK, (busy + idle + iowait + steal) / TICK


class Sampler:
    """Samples every `interval` s; `result()` gives CPU seconds per group over the window."""

    def __init__(self, groups: dict[str, int | str], interval: float = 0.25) -> None:
        # a group is a root pid (that process and its descendants) or a command-line substring
        self.groups, self.interval = groups, interval
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        procs = procs_now()
        for pid, (_, _ppid, cpu) in procs.items():
            label = self._label(pid, procs)
            if label is None:
                continue
            self.last[pid] = (label, cpu)

    def _label(self, pid: int, procs: dict[int, tuple[str, int, float]]) -> str | None:
        for name, spec in self.groups.items():
            if isinstance(spec, str):
                if spec in procs[pid][0]:
                    return name
                continue
            p, hops = pid, 0
            while p in procs and hops < 10:
                if p == spec:
                    return name
                p, hops = procs[p][1], hops + 1
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Sampler:
        self._sample()
        self.first = {pid: cpu for pid, (_, cpu) in self.last.items()}
        self.machine0 = _machine()
        self._thread.start()
        return self

    def result(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy1, total1 = _machine()
        out = {name: 0.0 for name in self.groups}
        for pid, (label, cpu) in self.last.items():
            out[label] += cpu - self.first.get(pid, 0.0)
        out["machine_busy"] = busy1 - self.machine0[0]
        out["machine_capacity"] = total1 - self.machine0[1]
        return {k: round(v, 2) for k, v in out.items()}
