"""Watchdog for the local Ray cluster a sweep starts (run as a script, standard library only; Linux ``/proc``).

Usage: ``python -I _ray_reaper.py DRIVER_PID``. Every ``POLL_S`` it records the processes descending from the
driver (Ray's GCS, raylet, agents, workers -- the sweep driver has no other children), each with its start
time. When the driver is gone -- SIGKILLed, it could not call ``ray.shutdown()`` -- it sends SIGTERM to every
recorded process still alive (same pid *and* start time: never a recycled pid), then SIGKILL after
``GRACE_S`` (Ray's dashboard and runtime-env agents ignore SIGTERM), and exits. A normal exit of the driver
stops the reaper first (``rfabric.sweep``), so it never touches a cluster that shut down cleanly.
"""

from __future__ import annotations

import os
import signal
import sys
import time

POLL_S = 0.5
GRACE_S = 3.0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[1]), rest[19]


def descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> start time."""
    parent: dict[int, int] = {}
    start: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parent[int(name)], start[int(name)] = st
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, str] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in out and pid != os.getpid():
            out[pid] = start[pid]
            stack.extend(children.get(pid, []))
    return out


def _alive(pid: int, started: str) -> bool:
    st = _stat(pid)
    return st is not None and st[1] == started


def reap(procs: dict[int, str]) -> None:
    """SIGTERM, then SIGKILL after ``GRACE_S``, every process of ``procs`` still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in procs.items():
            if _alive(pid, started):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        end = time.monotonic() + GRACE_S
        while time.monotonic() < end and any(_alive(p, s) for p, s in procs.items()):
            time.sleep(0.1)


def main(driver: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal is the driver's to handle
    drv = _stat(driver)
    if drv is None:
        return 0
    known: dict[int, str] = {}
    while _alive(driver, drv[1]):
        known.update(descendants(driver))
        known = {p: s for p, s in known.items() if _alive(p, s)}
        time.sleep(POLL_S)
    for pid in list(known):  # and whatever they started since the last look
        known.update(descendants(pid))
    reap(known)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1])))
