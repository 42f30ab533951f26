"""Shared services in trouble, with the real redis-server: a node whose Redis stops mid-run waits and
goes on when it is back; a wrong password, no Redis at all, or a shared store's S3 endpoint where
nothing answers, at start, is one line and exit 2 before any camera move."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ptzjepa.distributed.redis_server import RedisServer, free_port
from tests.conftest import REPO

ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PASSWORD = "outage-test-pw-5521"


def run_cmd(data: Path, redis_url: str, cycles: int = 1, *extra: str) -> list[str]:
    return [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--cycles", str(cycles),
            "--data", str(data), "--no-view", "--set", "locks.kind=redis", "--set", f"locks.redis_url={redis_url}",
            "--set", "locks.lease_s=3", "--set", "world_model.epochs=2", "--set", "agent.epochs=1", *extra]


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def node_state(data: Path) -> str:
    try:
        return json.loads((data / "state" / "status.json").read_text()).get("state", "")
    except (OSError, ValueError):
        return ""


def test_redis_stopped_mid_run_the_node_waits_and_completes_when_it_is_back(tmp_path: Path):
    data, log = tmp_path / "node", tmp_path / "node.log"
    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    env = {**ONE_THREAD, "PTZJEPA_REDIS_PASSWORD": PASSWORD}
    with open(log, "w") as out:
        node = subprocess.Popen(run_cmd(data, server.url, 2), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "event=lease" in log.read_text(), 90, "the node's first lease")
        server.stop()  # Redis goes away while the node holds a lease or is about to need one
        wait_for(lambda: node_state(data) == "waiting_for_lock" and "unreachable" in log.read_text(), 90,
                 "the node to wait for Redis")
        time.sleep(2)  # it keeps waiting rather than giving up or crashing
        assert node.poll() is None and node_state(data) == "waiting_for_lock"
        text = log.read_text()
        assert f"redis at 127.0.0.1:{server.port} unreachable" in text and "retrying" in text
        server = RedisServer(tmp_path / "redis", port=server.port, password=PASSWORD).start()  # back, same port
        assert node.wait(timeout=150) == 0, log.read_text()[-3000:]
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        server.stop()
    text = log.read_text()
    assert "Traceback" not in text
    assert json.loads((data / "state" / "machine.json").read_text())["cycle"] >= 2
    assert text.count("event=lease ") >= 2  # a lease after Redis came back too


def test_wrong_redis_password_at_start_is_one_line_and_exit_2_before_any_move(tmp_path: Path):
    with RedisServer(tmp_path / "redis", password=PASSWORD) as server:
        env = {**ONE_THREAD, "PTZJEPA_REDIS_PASSWORD": "not-the-password"}
        result = subprocess.run(run_cmd(tmp_path / "node", server.url), cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: locks.redis_url:") and "password" in lines[0], lines
    assert "not-the-password" not in result.stderr
    assert not (tmp_path / "node" / "frames").exists()  # nothing captured: checked before any move


def test_no_redis_at_start_is_one_line_and_exit_2(tmp_path: Path):
    port = free_port()
    result = subprocess.run(run_cmd(tmp_path / "node", f"redis://127.0.0.1:{port}/0"), cwd=REPO, env=ONE_THREAD,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"locks.redis_url: redis at 127.0.0.1:{port} unreachable" in lines[0], lines


def test_swarm_with_a_wrong_redis_password_is_one_line_and_exit_2(tmp_path: Path):
    with RedisServer(tmp_path / "redis", password=PASSWORD) as server:
        env = {**ONE_THREAD, "PTZJEPA_REDIS_PASSWORD": "not-the-password"}
        result = subprocess.run(
            [sys.executable, "cli.py", "swarm", "--sim", "--nodes", "2", "--profile", "tiny", "--cycles", "1",
             "--data", str(tmp_path / "swarm"), "--redis", server.url, "--no-view"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "locks.redis_url" in result.stderr and "password" in result.stderr
    assert not (tmp_path / "swarm" / "logs").exists()


def test_unreachable_s3_endpoint_for_the_shared_store_is_one_line_and_exit_2(tmp_path: Path):
    port = free_port()  # nothing listens there
    env = {**ONE_THREAD, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "s3-secret-9931"}
    result = subprocess.run(
        [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--cycles", "1", "--data", str(tmp_path / "n"),
         "--no-view", "--set", "storage.shared=s3://population/wm", "--set", f"storage.s3_endpoint=http://127.0.0.1:{port}",
         "--set", "locks.kind=redis", "--set", f"locks.redis_url=redis://127.0.0.1:{port}/0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: storage.s3_endpoint: the shared store at http://127.0.0.1:{port}"), lines
    assert "s3-secret-9931" not in result.stderr
    assert not (tmp_path / "n" / "frames").exists()
