"""How the demo stops: SIGTERM does what Ctrl-C does (every part stops on the way out), and
the demo's child processes die with it however it ends, even by SIGKILL."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from runtime.process import die_with_parent

__all__ = ["die_with_parent"]


#: After a stop signal, how often the main task is cancelled again while it still runs, and
#: how many times: a part that swallowed the first cancellation (the demo stayed idle after
#: Ctrl-C on a loaded machine) is cancelled anew; a stop that outlasts them all is cut short
#: at each try, since the demo must end.
RECANCEL_EVERY_S, RECANCELS = 5.0, 12


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block (in the demo's main task), SIGTERM and SIGINT cancel the task, so every
    ``async with`` on the way out stops its part (agents, hub, broker), then leave as
    KeyboardInterrupt, which the command reports as Ctrl-C. A cancellation lost on the way is
    made again (see ``RECANCEL_EVERY_S``), as transport's guard does for its tasks."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signalled = False
    again: asyncio.TimerHandle | None = None

    def cancel(left: int) -> None:
        nonlocal again
        if task.done():
            return
        task.cancel()
        if left > 0:
            again = loop.call_later(RECANCEL_EVERY_S, cancel, left - 1)

    def on_signal() -> None:
        nonlocal signalled
        if not signalled:
            signalled = True
            cancel(RECANCELS)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    except asyncio.CancelledError:
        if signalled:
            raise KeyboardInterrupt from None
        raise
    finally:
        if again is not None:
            again.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
