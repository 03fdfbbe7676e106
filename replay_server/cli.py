"""`python -m replay_server --replay FILE [--port N] [--latency S]`: serve recorded
translations on an OpenAI-compatible endpoint in the foreground (the offline demo, checking a
set-up); prints the base URL, then serves until interrupted."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from mre.errors import RecordError
from replay_server.handlers import ReplayHandler
from replay_server.server import LocalOpenAIServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m replay_server",
        description="Serve recorded translations on an OpenAI-compatible endpoint (offline demo).",
    )
    parser.add_argument(
        "--replay", required=True, type=Path, help="JSONL of {source, target, text}"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        handler = ReplayHandler(args.replay)
    except (OSError, RecordError) as e:
        parser.error(str(e))
    server = LocalOpenAIServer(handler, latency=args.latency, host=args.host, port=args.port)
    server.start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
