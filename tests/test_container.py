"""What can be checked of the node image without Docker: the Dockerfile's entry point and default
command really run here, the files it copies are in the build context, the requirements it
installs leave the base's torch alone, and every sage.yaml input is a real option of
`cli.py legacy` that changes the setting it claims to."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ptzjepa.config.loading import config_to_dict, load_config
from ptzjepa.config.settings import Config
from ptzjepa.run.legacy import parser as legacy_parser
from ptzjepa.run.legacy import translate
from ptzjepa.storage.frames import FrameStore
from ptzjepa.storage.store import Store
from tests.conftest import REPO
from tests.fake_cameras import FakeHanwha

sys.path.insert(0, str(REPO / "docker"))
import node_requirements  # noqa: E402

DOCKERFILE = REPO / "Dockerfile"
PASSWORD = "Container-Pw-4k9z"


# --- the Dockerfile -----------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        word, _, rest = text.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def only(kind: str) -> list[str]:
    return [args for word, args in instructions() if word == kind]


def exec_form(kind: str) -> list[str]:
    (args,) = only(kind)[-1:]
    value = json.loads(args)  # exec form: signals reach python, not a shell
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_base_image_is_a_build_arg_with_a_default():
    steps = instructions()
    assert steps[0][0] == "ARG"
    name, _, default = steps[0][1].partition("=")
    assert name == "BASE_IMAGE" and re.fullmatch(r"[\w./-]+:[\w.-]+", default), steps[0]
    assert [args for word, args in steps if word == "FROM"] == ["${BASE_IMAGE}"]


def test_entrypoint_and_cmd_are_the_cli_and_the_waggle_profile():
    assert exec_form("ENTRYPOINT") == ["python", "cli.py"]
    assert exec_form("CMD") == ["run", "--profile", "waggle"]
    assert only("WORKDIR")[-1] == "/app"
    assert (REPO / "cli.py").is_file()


def test_data_volume_and_a_user_that_is_not_root():
    volumes = [v for args in only("VOLUME") for v in
               (json.loads(args) if args.startswith("[") else args.split())]
    assert "/persistence" in volumes
    users = only("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    # the user the image runs as owns the data folder before a volume is mounted on it
    assert any(f"chown {users[-1]} /persistence" in args for args in only("RUN"))


def test_pip_never_reinstalls_the_pinned_torch():
    """Every pip install either takes the filtered requirements or installs without deps, so
    pyproject.toml's exact torch pin never replaces the base image's CUDA build."""
    installs = [cmd.strip() for args in only("RUN") for cmd in args.split("&&")
                if "pip install" in cmd]
    assert installs
    for cmd in installs:
        assert "--no-deps" in cmd or "-r /tmp/requirements.txt" in cmd, cmd
        assert "torch" not in cmd, cmd
    generate = [args for args in only("RUN") if "node_requirements.py" in args]
    assert generate and "remote,waggle" in generate[0]
    assert "> /tmp/requirements.txt" in generate[0]


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, near enough: a pattern matches the path or one of its parent folders;
    `**/` matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    hit = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        candidates = prefixes + ([p.split("/", i)[-1] for p in prefixes for i in range(p.count("/") + 1)]
                                 if pattern.startswith("**/") else [])
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            hit = not negate
    return hit


def test_build_context_has_what_the_image_needs_and_nothing_local():
    patterns = dockerignore()
    for local in (".venv/bin/python", ".git/HEAD", "runs/sim/state/machine.json",
                  "ptzjepa/__pycache__/config.cpython-312.pyc", "ptzjepa.egg-info/PKG-INFO"):
        assert ignored(local, patterns), local
    copied = [src for args in only("COPY") for src in args.split()[:-1]]
    needed = [*copied, "cli.py", "ptzjepa/config/settings.py", "ptzjepa/camera/hanwha.py", "sim/camera.py",
              "profiles/waggle.yaml", "machines/lifelong.yaml", "pyproject.toml", "README.md"]
    for path in needed:
        if path == ".":
            continue
        assert (REPO / path).exists(), path
        assert not ignored(path, patterns), path


def test_requirements_leave_out_torch_only_when_the_base_has_it():
    with_torch = node_requirements.requirements(["remote", "waggle"], present=lambda m: True)
    without = node_requirements.requirements(["remote", "waggle"], present=lambda m: False)
    assert not [r for r in with_torch if node_requirements.name_of(r) == "torch"]
    assert [r for r in without if node_requirements.name_of(r) == "torch"] == ["torch==2.13.0"]
    assert set(without) - set(with_torch) == {"torch==2.13.0"}
    names = {node_requirements.name_of(r) for r in with_torch}
    assert {"numpy", "opencv-python-headless", "requests", "pywaggle", "sshfs", "s3fs"} <= names
    assert "pytest" not in names  # the test extra stays out of the image
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        node_requirements.requirements(["gpu"])
    # as the Dockerfile runs it (torch is installed here, as in the default base)
    done = subprocess.run([sys.executable, "docker/node_requirements.py", "remote,waggle"],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == with_torch


# --- the entry point, run here as the image would ---------------------------------------------


def test_default_command_parses_and_loads_the_waggle_profile():
    cmd = [sys.executable, *exec_form("ENTRYPOINT")[1:], *exec_form("CMD"), "--help"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--profile" in done.stdout, done.stderr
    config = load_config(exec_form("CMD")[2])
    assert isinstance(config, Config)
    assert config.storage.data == "/persistence"
    assert config.camera.kind == "hanwha" and config.camera.url == ""
    assert config.camera.password_env == "PTZJEPA_CAMERA_PASSWORD"
    assert config.run.device == "auto"  # the GPU when the container has one


def test_default_command_without_a_camera_address_is_one_clear_line(tmp_path):
    cmd = [sys.executable, *exec_form("ENTRYPOINT")[1:], *exec_form("CMD"),
           "--machine", "capture", "--data", str(tmp_path / "node"), "--no-view"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error: camera.url: required" in done.stderr and "Traceback" not in done.stderr


def test_default_command_captures_from_a_hanwha_camera(tmp_path):
    """The image's command with the settings the README's docker run line adds, against a fake
    Hanwha camera; /persistence is swapped for a temporary folder (--data)."""
    env = {**os.environ, "PTZJEPA_CAMERA_PASSWORD": PASSWORD}
    with FakeHanwha("admin", PASSWORD) as server:
        cmd = [sys.executable, *exec_form("ENTRYPOINT")[1:], *exec_form("CMD"),
               "--set", f"camera.url={server.url}", "--set", "camera.username=admin",
               "--set", "camera.poll_interval_s=0.01", "--set", "capture.iterations=1",
               "--set", "capture.movements=2", "--machine", "capture",
               "--data", str(tmp_path / "node"), "--no-view"]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    frames = FrameStore(Store(str(tmp_path / "node")))
    assert frames.count() == 3 and server.count("snapshot") == 3
    stored = (tmp_path / "node" / "state" / "config.json").read_text()
    assert PASSWORD not in stored and PASSWORD not in done.stdout + done.stderr


# --- sage.yaml ------------------------------------------------------------------------------------

SAGE = yaml.safe_load((REPO / "sage.yaml").read_text())
INPUTS = {item["id"]: item for item in SAGE["inputs"]}
TYPES = {"int": int, "string": None}  # argparse's type for a plain string option is None
# what each input sets, given a sample value: (sample, check of (config, env))
EFFECTS = {
    "iterations": ("7", lambda c, e: c.capture.iterations == c.navigate.iterations == 7),
    "movements": ("4", lambda c, e: c.capture.movements == c.navigate.movements == 4),
    "camerabrand": ("1", lambda c, e: c.camera.kind == "axis"),
    "cameraip": ("10.31.81.12", lambda c, e: c.camera.url == "http://10.31.81.12"),
    "username": ("operator", lambda c, e: c.camera.username == "operator"),
    "password": ("sample-only", lambda c, e: e == {"PTZJEPA_CAMERA_PASSWORD": "sample-only"}),
}


def test_sage_yaml_describes_a_multi_arch_plugin_built_from_the_dockerfile():
    assert SAGE["name"] and SAGE["version"] and SAGE["description"]
    assert {"linux/amd64", "linux/arm64"} <= set(SAGE["source"]["architectures"])
    assert (REPO / SAGE["source"].get("dockerfile", "Dockerfile")).is_file()
    assert set(INPUTS) == set(EFFECTS), "an input without a tested effect, or one missing"


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_each_sage_input_is_a_legacy_option_that_sets_its_setting(name):
    item = INPUTS[name]
    options = {a.dest: a for a in legacy_parser()._actions}
    assert name in options, f"sage input {name!r} is not an option of cli.py legacy"
    action = options[name]
    assert f"--{name}" in action.option_strings
    assert item["type"] in TYPES and action.type is TYPES[item["type"]], (item, action.type)
    if "default" in item:
        assert item["default"] == action.default
    sample, holds = EFFECTS[name]
    run = translate([f"--{name}", sample])
    config = load_config(run.profile, run.overrides)
    assert holds(config, run.env), (name, run.overrides, run.env)
    base = translate([])
    before = load_config(base.profile, base.overrides)
    assert (config_to_dict(config), run.env) != (config_to_dict(before), base.env)
    assert config.storage.data == "/persistence"  # a Sage job keeps its data where the image does


def test_no_password_is_written_down_anywhere():
    assert "default" not in INPUTS["password"]
    for text in ((REPO / "sage.yaml").read_text(), DOCKERFILE.read_text()):
        assert not re.search(r"(?i)password\s*[:=]\s*['\"]?\w", text.replace("password_", "")), text
    assert not [args for word, args in instructions() if word == "ENV" and "PASSWORD" in args]


def test_readme_node_section_names_real_settings():
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## On a node \(Docker, Waggle\)\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README has no 'On a node (Docker, Waggle)' section"
    section = match.group(1)
    assert "docker build" in section
    run_line = next(line for line in section.splitlines() if line.startswith("docker run"))
    assert "--gpus all" in run_line and ":/persistence" in run_line
    config = load_config("waggle")
    real_env = {config.camera.password_env, config.locks.password_env}
    named = set(re.findall(r"\bPTZJEPA_[A-Z_]+\b", section))
    assert "PTZJEPA_CAMERA_PASSWORD" in named and named <= real_env, named - real_env
    settings = re.findall(r"--set ([\w.]+)=([^\s`]+)", section)
    assert settings
    for key, value in settings:  # each is a real setting and the value it shows is valid
        load_config("waggle", [f"{key}={value}"])
