"""A local redis-server (Debian's package) on a free loopback port, for a swarm and for tests.

The server keeps an append-only file in its folder, fsynced on every write, so that the fencing
token counters it holds never go backwards when the same folder is served again: a swarm stopped
and started again, or a server that died and came back, grants only tokens newer than any it
granted before. Leases themselves are transient (they expire), so nothing else depends on it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_START_S = 10.0


class RedisServerError(RuntimeError):
    """redis-server is missing or did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RedisServerError("redis-server is not installed (Debian: apt-get install redis-server); "
                               "or pass --redis redis://HOST:PORT/DB of a running server")
    return found


class RedisServer:
    """One redis-server process serving `folder` on 127.0.0.1:`port` (a free one by default)."""

    def __init__(self, folder: Path, port: int = 0, password: str = "", persist: bool = True) -> None:
        self.folder = Path(folder)
        self.port = port or free_port()
        self.password = password
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.folder.resolve()), "--logfile", "redis.log"]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        # Its own session: a Ctrl-C at the terminal reaches the swarm, which stops the nodes first
        # (they release their leases through this server) and this server last.
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(f"redis-server exited with {self.proc.returncode} at start "
                                       f"(see {self.folder / 'redis.log'})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on 127.0.0.1:{self.port} within {_START_S:.0f} s")

    def stop(self) -> None:
        """SIGTERM (the server flushes its append-only file), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def redis_server(folder: Path, password: str = "", persist: bool = False) -> Iterator[str]:
    """Yields a redis:// URL (without the password); the server is stopped on exit."""
    with RedisServer(folder, password=password, persist=persist) as server:
        yield server.url

