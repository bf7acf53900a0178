"""``python -m edge --config edge.toml``: the agent alone, without the rest of the
``swiftchain`` CLI loaded (about 9 MB less RSS on a small gateway): of ``swiftchain`` only
its process layer, which is the standard library alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.process import run_until_signalled

from .agent import limit_malloc_arenas, run_agent
from .errors import EdgeError
from .logs import configure_logging
from .settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge", description="Run the edge agent.")
    parser.add_argument("--config", type=Path, default=Path("edge.toml"))
    args = parser.parse_args(argv)
    limit_malloc_arenas()
    try:
        settings = load_settings(args.config)
        configure_logging(settings.log.level, settings.log.format)
        run_until_signalled(run_agent(settings), use_uvloop=settings.use_uvloop)
    except EdgeError as exc:
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
