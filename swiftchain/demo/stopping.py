"""How the demo stops: SIGTERM does what Ctrl-C does (every part stops on the way out), and
the demo's child processes die with it however it ends, even by SIGKILL."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: prctl(2) option: the signal the kernel sends this process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child that must not outlive the demo (Linux; elsewhere None,
    and the demo's own stop takes its children down).

    The kernel sends the child SIGKILL when the thread that started it ends, which for the
    demo is the event loop's, so when the demo does. libc is looked up here, before the
    fork: the child runs only the prctl call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the demo died before the prctl took effect
            os._exit(1)

    return preexec


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block (in the demo's main task), SIGTERM cancels the task, so every
    ``async with`` on the way out stops its part (agents, hub, broker), then leaves as
    KeyboardInterrupt, which the command reports as it does Ctrl-C."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signalled = False

    def on_sigterm() -> None:
        nonlocal signalled
        signalled = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        yield
    except asyncio.CancelledError:
        if signalled:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
