"""Serve one fake camera until Ctrl-C, so that the CLI (or a person with curl) can talk to it.

    PTZJEPA_CAMERA_PASSWORD=secret python -m tests.fake_cameras hanwha --port 8081 --user admin
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from tests.fake_cameras import FAKES

PASSWORD_ENV = "PTZJEPA_CAMERA_PASSWORD"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_cameras",
                                     description="Serve a fake PTZ camera backed by the simulator.")
    parser.add_argument("brand", choices=sorted(FAKES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--polls-to-arrive", type=int, default=3)
    parser.add_argument("--auth", choices=("digest", "basic"), default="digest")
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        print(f"error: set {PASSWORD_ENV} to the password the fake camera should accept",
              file=sys.stderr)
        return 2
    try:
        server = FAKES[args.brand](
            args.user, password, host=args.host, port=args.port, auth=args.auth,
            width=args.width, height=args.height, seed=args.seed,
            polls_to_arrive=args.polls_to_arrive)
    except (OSError, ValueError) as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    server.verbose = True
    with server:
        print(f"fake {args.brand} camera at {server.url} (user {args.user!r}); Ctrl-C stops",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
