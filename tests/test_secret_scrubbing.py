"""A password travels raw, URL-encoded, and inside Authorization values (Basic: base64 of
`user:password`; Digest: no password, but the whole value is still a credential). None of these
may reach a log line, an event, the status file or the terminal, even when a camera echoes the
header back in an error body."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from ptzjepa.logs import RedactSecrets, Scrubber
from ptzjepa.storage.store import Store
from ptzjepa.view.events import Events
from ptzjepa.view.status import NodeStatus, StatusWriter, STATUS_FILE
from tests.fake_cameras import FAKES
from tests.test_camera_cli import PASSWORD, run_capture

BASIC = base64.b64encode(f"op:{PASSWORD}".encode()).decode()
DIGEST = ('Digest username="op", realm="fake camera", nonce="5f2c9a", uri="/stw-cgi/ptzcontrol.cgi", '
          'response="0d4b5c2e9f", qop=auth, nc=00000001, cnonce="a1b2c3"')


def _forms(password: str = PASSWORD) -> list[str]:
    return [password, quote(password, safe=""), quote_plus(password),
            base64.b64encode(f"op:{password}".encode()).decode()]


@pytest.mark.parametrize(
    "text, kept",
    [
        (f"login with {PASSWORD} failed", "login with *** failed"),
        (f"GET /x?pw={quote(PASSWORD, safe='')} 401", "GET /x?pw=*** 401"),
        (f"form pw={quote_plus('a b/c-Pw9')}", "form pw=***"),
        (f"camera answered 'Error: {BASIC} not allowed'", "camera answered 'Error: *** not allowed'"),
        (f"headers {{'Authorization': 'Basic {BASIC}', 'Accept': '*/*'}}",
         "headers {'Authorization': '***', 'Accept': '*/*'}"),
        (f"refused; Authorization: {DIGEST}", "refused; Authorization: ***"),
        (f"echo: {DIGEST}", "echo: Digest ***"),
        (f"echo: {DIGEST.partition(' ')[2]} refused",
         'echo: username="op", realm="fake camera", nonce=***, uri="/stw-cgi/ptzcontrol.cgi", response=***, '
         'qop=auth, nc=00000001, cnonce=*** refused'),
        (f"cut short: {BASIC[:20]}", "cut short: ***"),  # an echo cut by a message length limit
        ("Proxy-Authorization: Bearer abc.DEF-123", "Proxy-Authorization: ***"),
        ("http://op:x@10.0.0.5/cgi", "http://***@10.0.0.5/cgi"),
        ("state=train_world_model basic training, The Basic idea", "state=train_world_model basic training, The Basic idea"),
    ],
)
def test_every_form_of_the_password_is_blanked(text, kept):
    scrubber = Scrubber([PASSWORD, "a b/c-Pw9"])
    assert scrubber.text(text) == kept


def test_authorization_values_are_blanked_with_no_known_secret():
    scrubber = Scrubber()
    assert scrubber.text(f"Authorization: Basic {BASIC}") == "Authorization: ***"
    assert scrubber.text(f"sent Basic {BASIC}") == "sent Basic ***"
    assert BASIC not in scrubber.text(f"{{'authorization': 'Basic {BASIC}'}}")


def test_log_records_events_and_the_status_file_pass_through_the_scrubber(tmp_path, caplog):
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "camera said %s", (f"Basic {BASIC}",), None)
    assert RedactSecrets([PASSWORD]).filter(record) and BASIC not in record.getMessage()

    events, status, store = Events(), NodeStatus(), Store(str(tmp_path))
    seen = []
    for subscriber in (status, StatusWriter(status, store), seen.append):
        events.subscribe(subscriber)
    events.emit("warning", message=f"frame skipped: camera answered 'NG ({BASIC} refused; Authorization: {DIGEST})'")
    events.emit("lock", resource="world_models/wm-0", status=f"held by http://op:{quote(PASSWORD)}@cam")
    stored = store.read_bytes(STATUS_FILE).decode()
    assert json.loads(stored)["warnings"] == ["frame skipped: camera answered 'NG (*** refused; Authorization: ***"]
    for leak in _forms() + ["0d4b5c2e9f", "5f2c9a"]:
        assert leak not in stored and leak not in repr([e.data for e in seen])


@pytest.mark.parametrize("kind, auth", [("hanwha", "basic"), ("axis", "basic"), ("hanwha", "digest")])
def test_a_camera_echoing_the_authorization_header_leaks_nothing(tmp_path, kind, auth):
    """Moves refused with the Authorization header quoted in the body: the warnings they make reach
    stderr (with --debug, every line) and state/status.json, scrubbed."""
    data = tmp_path / "node"
    with FAKES[kind]("op", PASSWORD, auth=auth) as server:
        server.faults.echo_auth = True
        server.faults.error_count = 2
        server.faults.error_kinds = frozenset({"relative", "absolute"})
        done = run_capture(kind, server.url, data, "--debug")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the move failed" in done.stderr and "***" in done.stderr
    status = (data / "state" / "status.json").read_text()
    assert "the move failed" in status
    digest = re.compile(r'(response|nonce)="?[0-9a-f]{8}')  # the hashes of a Digest value
    printed = done.stdout + done.stderr
    assert not [f for f in _forms() if f in printed] and not digest.search(printed)
    files = {str(p.relative_to(data)): p.read_bytes().decode(errors="replace") for p in data.rglob("*")
             if p.is_file() and p.suffix != ".jpg"}
    leaked = [name for name, text in files.items() if digest.search(text) or any(f in text for f in _forms())]
    assert not leaked, leaked
