"""CPU time of other processes, read from ``/proc``: one process, or a process and all its
descendants (the hub runs a sequencer process and front-end workers, each may run verify
helpers; its CPU per record is the sum over all of them)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it, found by walking the ppid of every process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def tree_cpu_seconds(pid: int) -> tuple[float, int]:
    """CPU seconds of ``pid`` and all its descendants, and how many processes that was.

    Each live process counts its own utime + stime plus cutime + cstime, the time of the
    children it has already reaped; a child that exits between two readings is then still
    counted once, in its parent's cutime, so the difference of two readings is the tree's
    CPU in between.
    """
    total = 0
    pids = descendants(pid)
    counted = 0
    for p in pids:
        try:
            f = _stat(p)
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        counted += 1
    return total / TICKS, counted
