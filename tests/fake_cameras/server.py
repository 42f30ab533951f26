"""What every fake camera server shares: a real HTTP server in a thread, auth, fault switches.

Each protocol module supplies `classify` (what kind of call a request is, for fault targeting and
the call log) and `respond` (the answer in that brand's words and units). The base does the rest:
slow answers, injected error statuses, HTTP auth, bad snapshots, and a stuck head.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import attrs

from ptzjepa.camera.base import PTZLimits
from tests.fake_cameras.digest import BasicAuthority, DigestAuthority
from tests.fake_cameras.head import Head

KINDS = ("position", "absolute", "relative", "snapshot", "setup")
NOT_JPEG = b"<html><body><h1>503 Service busy</h1></body></html>\n"


@attrs.define
class Faults:
    """Switches a test flips to make the camera misbehave. All default to a healthy camera."""

    delay_s: float = 0.0  # every answer waits this long (past the client's timeout: a hang)
    delay_kinds: frozenset[str] | None = None  # only these kinds are slow (None: all)
    error_count: int = 0  # the next N matching requests fail with `error_status` (-1: all)
    error_status: int = 500
    error_kinds: frozenset[str] | None = None  # only these kinds fail (None: all)
    snapshot: Literal["ok", "truncated", "not_jpeg"] = "ok"
    never_arrive: bool = False  # moves are accepted but the head stays where it is
    echo_auth: bool = False  # injected failures are the brand's refusal, quoting the Authorization header


@attrs.define
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    target: str  # the request-target as sent (path and query), which digest auth signs


@attrs.define
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = attrs.Factory(dict)


class FakeCameraServer(ABC):
    """Start with `with FakeX(user, password) as srv:`; `srv.url` is where it listens."""

    realm = "fake camera"

    def __init__(
        self,
        username: str = "admin",
        password: str = "secret",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auth: Literal["digest", "basic"] = "digest",
        limits: PTZLimits | None = None,
        polls_to_arrive: int = 3,
        width: int = 64,
        height: int = 48,
        seed: int = 0,
        scene_width: int = 512,
        seconds_per_step: float = 0.0,
        nonce_lifetime_s: float = 300.0,
    ) -> None:
        self.username, self.password = username, password
        self.head = Head(limits or self.default_limits(), polls_to_arrive=polls_to_arrive,
                         width=width, height=height, seed=seed, scene_width=scene_width,
                         seconds_per_step=seconds_per_step)
        self.faults = Faults()
        self.received: list[str] = []  # kinds of all requests as they arrive, even unanswered
        self.calls: list[str] = []  # kinds of the requests that got past HTTP auth, in order
        self.last: dict[str, Request] = {}  # the latest such request of each kind
        self.auth_failures = 0  # requests with credentials that were refused
        self.verbose = False
        self.authority = (DigestAuthority(username, password, realm=self.realm,
                                          nonce_lifetime_s=nonce_lifetime_s)
                          if auth == "digest" else BasicAuthority(username, password,
                                                                  realm=self.realm))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    # --- what a protocol supplies --------------------------------------------------------------

    @classmethod
    def default_limits(cls) -> PTZLimits:
        return PTZLimits()

    @abstractmethod
    def classify(self, request: Request) -> str:
        """One of KINDS."""

    @abstractmethod
    def respond(self, request: Request, kind: str) -> Reply:
        """The brand's answer to an authenticated request."""

    def needs_http_auth(self, request: Request) -> bool:
        return True

    def refusal(self, authorization: str) -> Reply:
        """A refused command whose body quotes the request's Authorization header, as careless
        firmware does: the header raw, and its credentials alone."""
        scheme, _, credentials = authorization.partition(" ")
        return Reply(self.faults.error_status,
                     f"refused: Authorization: {authorization}; credentials {credentials}\n".encode())

    # --- life cycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCameraServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,),
                                        daemon=True, name=f"{type(self).__name__}-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeCameraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, kind: str) -> int:
        with self._lock:
            return self.calls.count(kind)

    # --- the pipeline every request goes through -----------------------------------------------

    def serve(self, request: Request) -> Reply:
        kind = self.classify(request)
        with self._lock:
            self.received.append(kind)
        f = self.faults
        if f.delay_s > 0 and (f.delay_kinds is None or kind in f.delay_kinds):
            if self._stopping.wait(f.delay_s):
                return Reply(503, b"shutting down\n")
        if self.needs_http_auth(request):
            header = request.headers.get("authorization", "")
            verdict = self.authority.check(request.method, request.target, header) if header \
                else "missing"
            if verdict != "ok":
                with self._lock:
                    self.auth_failures += verdict == "denied"
                challenge = self.authority.challenge(stale=verdict == "stale")
                return Reply(401, b"401 Unauthorized\n", headers={"WWW-Authenticate": challenge})
        with self._lock:
            self.calls.append(kind)
            self.last[kind] = request
            inject = f.error_count != 0 and (f.error_kinds is None or kind in f.error_kinds)
            if inject and f.error_count > 0:
                f.error_count -= 1
        if inject and f.echo_auth:
            return self.refusal(request.headers.get("authorization", ""))
        if inject:
            return Reply(f.error_status, f"{f.error_status} injected failure\n".encode())
        self.head.frozen = f.never_arrive
        return self.respond(request, kind)

    def snapshot_reply(self) -> Reply:
        """The picture the head sees now, spoiled as the snapshot fault says."""
        if self.faults.snapshot == "not_jpeg":
            return Reply(200, NOT_JPEG, "image/jpeg")  # lies about its type, as busy cameras do
        data = self.head.jpeg()
        if self.faults.snapshot == "truncated":
            data = data[: len(data) // 2]
        return Reply(200, data, "image/jpeg")


def parse_request(handler: BaseHTTPRequestHandler, body: bytes) -> Request:
    parts = urlsplit(handler.path)
    return Request(
        method=handler.command, path=parts.path, query=dict(parse_qsl(parts.query)),
        headers={k.lower(): v for k, v in handler.headers.items()}, body=body,
        target=handler.path,
    )


def _handler_for(server: FakeCameraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as cameras and requests' Session use it
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = server.serve(parse_request(self, body))
            if reply.status == 204:
                reply.body = b""
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD" and reply.status not in (204, 304):
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout test)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            if server.verbose:  # tests read `server.calls`; a person at the CLI reads this
                super().log_message(format, *args)

    return Handler
