"""`python cli.py run --machine capture` against each fake camera, as a person would run it.

The fake camera is a real HTTP server on 127.0.0.1 in this process; the CLI is a separate process
that knows only its URL, user name and (through the environment) its password. What the CLI
stores is checked against what the fake camera itself knew when each picture was taken: where
its head pointed and which JPEG it sent.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from urllib.parse import quote

import cv2
import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, pan_distance
from ptzjepa.config.loading import load_config
from ptzjepa.storage.frames import FrameStore
from ptzjepa.storage.store import Store
from tests.conftest import REPO
from tests.fake_cameras import FAKES
from tests.fake_cameras.witness import Witness

PASSWORD = "Cli-Fake-7q2x-Pw"
# Wire rounding: Hanwha reports hundredths of a degree; Axis zoom is one of 9999 steps over 31x.
TOLERANCE = 0.02


def run_capture(kind: str, url: str, data, *extra: str, timeout: float = 120):
    env = {**os.environ, "PTZJEPA_CAMERA_PASSWORD": PASSWORD}
    cmd = [sys.executable, "cli.py", "run", "--profile", "tiny",
           "--set", f"camera.kind={kind}", "--set", f"camera.url={url}",
           "--set", "camera.username=op", "--set", "camera.poll_interval_s=0.01",
           "--machine", "capture", "--data", str(data), "--no-view", *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def same_place(a: PTZ, b: PTZ) -> bool:
    # The Axis head speaks pan in -180..180 where the node's limits say 0..360: the same direction.
    return (pan_distance(a.pan, b.pan) <= TOLERANCE and abs(a.tilt - b.tilt) <= TOLERANCE
            and abs(a.zoom - b.zoom) <= TOLERANCE)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_cli_captures_from_a_real_camera_at_the_positions_it_reports(kind, tmp_path):
    data = tmp_path / "node"
    with FAKES[kind]("op", PASSWORD) as server:
        witness = Witness(server)
        done = run_capture(kind, server.url, data)
    assert done.returncode == 0, done.stderr
    cfg = load_config("tiny")
    expected = cfg.capture.iterations * (cfg.capture.movements + 1)

    store = Store(str(data))
    frames = FrameStore(store)
    records = sorted(frames.records(), key=lambda r: r.id)
    assert len(records) == expected
    # one picture per frame: nothing failed, so nothing was asked twice
    assert len(witness.shots) == expected == server.count("snapshot")
    moves = server.count("absolute") + server.count("relative")
    assert moves >= expected  # every frame followed a move the camera was really sent
    limits = cfg.camera.limits.to_limits()
    for record, shot in zip(records, witness.shots):
        head_at, sent = shot.at, shot.body
        assert same_place(record.ptz, head_at), (record.id, record.ptz, head_at)
        assert limits.contains(record.ptz, tol=1e-6)
        assert record.stage == "capture" and record.time.tzinfo is not None
        stored = frames.image(record)
        served = cv2.cvtColor(cv2.imdecode(np.frombuffer(sent, np.uint8), cv2.IMREAD_COLOR),
                              cv2.COLOR_BGR2RGB)
        assert stored.shape == served.shape == (48, 64, 3)  # the camera's size, not the sim's
        # the stored JPEG is the camera's picture, re-encoded: close, not bit-identical
        assert np.abs(stored.astype(int) - served.astype(int)).mean() < 4.0
    # the round starts differ: the head really was sent somewhere new each round
    starts = [r.ptz for r in records if r.command.kind == "absolute"]
    assert len(starts) == cfg.capture.iterations and len(set(starts)) == len(starts)

    # the password never leaves the environment: not in the output, not in the stored config
    assert PASSWORD not in done.stdout + done.stderr
    assert PASSWORD not in store.read_bytes("state/config.json").decode()
    assert server.auth_failures == 0


def test_cli_with_the_wrong_password_fails_cleanly(tmp_path):
    """A camera that refuses the login ends the run with a logged failure, not a traceback."""
    with FAKES["hanwha"]("op", "another-password") as server:
        done = run_capture("hanwha", server.url, tmp_path / "node",
                           "--set", "camera.retries=0", "--set", "camera.move_timeout_s=0.5")
    assert done.returncode == 1, done.stderr
    assert "authentication failed" in done.stderr and "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert FrameStore(Store(str(tmp_path / "node"))).count() == 0


def test_debug_run_never_shows_or_stores_the_password(tmp_path):
    """--debug logs every request the driver makes; with basic auth the password travels in every
    request (base64), so a logged header would leak it. Nothing printed and nothing stored may
    hold it, in any form the wire carries."""
    data = tmp_path / "node"
    with FAKES["hanwha"]("op", PASSWORD, auth="basic") as server:
        done = run_capture("hanwha", server.url, data, "--debug")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DEBUG" in done.stderr  # it really ran verbose
    forms = [PASSWORD, base64.b64encode(f"op:{PASSWORD}".encode()).decode(), quote(PASSWORD, safe="")]
    printed = done.stdout + done.stderr
    assert not [f for f in forms if f in printed]
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files) and len(files) > 10
    leaked = [str(p.relative_to(data)) for p in files for f in forms if f.encode() in p.read_bytes()]
    assert not leaked, leaked
