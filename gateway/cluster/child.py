"""A child process of a hub with front ends: ``python -m gateway.cluster.child ROLE INDEX``,
its settings and the run's secret as JSON on stdin (``gateway.cluster.supervisor``)."""

from __future__ import annotations

import json
import logging
import sys

from runtime.process import install_uvloop, run_until_signalled

from ..settings import HubSettings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[{role}]: %(message)s"


def main(argv: list[str]) -> int:
    role, index = argv[0], int(argv[1])
    given = json.loads(sys.stdin.read())
    settings = HubSettings(**given["settings"])
    name = "sequencer" if role == "sequencer" else f"front-{index}"
    logging.basicConfig(
        level=getattr(logging, str(given["log_level"]).upper(), logging.INFO),
        format=LOG_FORMAT.format(role=name),
    )
    if role == "sequencer":
        from .sequencer_process import serve_sequencer

        run_until_signalled(
            serve_sequencer(settings, given["secret"]), use_uvloop=settings.use_uvloop
        )
        return 0
    from ..serve import run_front

    if settings.use_uvloop:
        install_uvloop()
    run_front(settings, index, given["secret"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
