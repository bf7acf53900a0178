"""Running a part of Swiftchain as a process: the event loop (uvloop when asked for and
installed) and SIGINT/SIGTERM turned into cancelling the part's main task, which is how
every part stops cleanly (draining what is in flight on its way out).

The standard library only: ``python -m edge`` imports this and not the CLI; a package of
its own beside ``ledger/`` because the agent, the hub's command and the bench all use it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

#: prctl(2) option: the signal the kernel sends this process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child that must not outlive its parent (Linux; elsewhere None,
    and the parent's own stop takes its children down): the demo's parts, the hub's
    sequencer and front ends.

    The kernel sends the child SIGKILL when the thread that started it ends (the parent's
    event loop's, so when the parent does). libc is looked up here, before the fork: the
    child runs only the prctl call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return preexec


def install_uvloop() -> bool:
    """Make asyncio use uvloop, if installed; return whether it does."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main``; SIGINT or SIGTERM cancel it, and its cancellation is a normal end."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_until_signalled(main: Coroutine[Any, Any, None], *, use_uvloop: bool) -> None:
    """The whole life of a process whose work is ``main``: until it ends or is signalled."""
    if use_uvloop:
        install_uvloop()
    asyncio.run(until_signalled(main))
