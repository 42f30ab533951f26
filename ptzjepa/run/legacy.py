"""PTZJEPA's main.py options, mapped onto a profile, a machine and settings.

Existing deployment scripts keep working: `python cli.py legacy -rm lifelong -cb 0 -it 20 ...`.
Options with no meaning here any more (mount points, SSH keys) are accepted and explained.
"""

from __future__ import annotations

import argparse
import os
import sys

import attrs

RUN_MODES = {
    "train": "train",
    "world_model_train": "world_model_train",
    "dream": "dream",
    "agent_train": "agent_train",
    "env_interaction": "env_interaction",
    "lifelong": "lifelong",
}
BRANDS = {0: "hanwha", 1: "axis"}


@attrs.frozen
class LegacyRun:
    profile: str
    machine: str
    overrides: list[str]
    env: dict[str, str]
    debug: bool
    notes: list[str]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cli.py legacy", description="PTZJEPA's main.py options")
    p.add_argument("-rm", "--run_mode", choices=sorted(RUN_MODES), default="train")
    p.add_argument("-cb", "--camerabrand", type=int, choices=sorted(BRANDS), default=0)
    p.add_argument("-it", "--iterations", type=int, default=10)
    p.add_argument("-mv", "--movements", type=int, default=10)
    p.add_argument("-un", "--username", default="")
    p.add_argument("-pw", "--password", default="")
    p.add_argument("-ip", "--cameraip", default="")
    p.add_argument("-ki", "--keepimages", action="store_true")
    p.add_argument("-tp", "--trackpositions", action="store_true")
    p.add_argument("--track_all", action="store_true")
    p.add_argument("-si", "--storedimages", action="store_true")
    p.add_argument("-fn", "--fname", default="", help="a profile YAML (in place of PTZJEPA's config file)")
    p.add_argument("--debug", action="store_true")
    p.add_argument("-pubmsg", "--publish_msgs", action="store_true")
    p.add_argument("-dist", "--distributed", action="store_true")
    p.add_argument("-dist_ip", "--distributed_ip", default="")
    p.add_argument("-dist_username", "--distributed_username", default="")
    p.add_argument("-dist_host_directory", "--distributed_host_directory", default="")
    return p


def translate(argv: list[str]) -> LegacyRun:
    a = parser().parse_args(argv)
    machine = RUN_MODES[a.run_mode]
    if a.storedimages and machine == "lifelong":
        machine = "lifelong_stored"
    overrides = [
        f"camera.kind={BRANDS[a.camerabrand]}",
        f"capture.iterations={a.iterations}", f"capture.movements={a.movements}",
        f"navigate.iterations={a.iterations}", f"navigate.movements={a.movements}",
        f"storage.keep_images={str(a.keepimages).lower()}",
        f"storage.track_positions={str(a.trackpositions or a.track_all).lower()}",
        f"storage.track_all={str(a.track_all).lower()}",
    ]
    # Zoom modulation stays 1 for every brand (pan/tilt stay the profile's 2): the Axis driver
    # converts the optical zoom factor to Axis's own 1..9999 zoom units itself, so a x100 for Axis
    # here would turn a 0.1x zoom step into a 10x one.
    if a.username:
        overrides.append(f"camera.username={a.username}")
    if a.cameraip:
        overrides.append(f"camera.url=http://{a.cameraip}")
    if a.publish_msgs:
        overrides.append("waggle.publish=true")
    env: dict[str, str] = {}
    notes: list[str] = []
    if a.password:
        env["PTZJEPA_CAMERA_PASSWORD"] = a.password
        notes.append("-pw puts the camera password in the process list; set PTZJEPA_CAMERA_PASSWORD instead")
    if a.distributed:
        overrides.append("locks.kind=redis")
        if a.distributed_ip:
            overrides.append(f"locks.redis_url=redis://{a.distributed_ip}:6379/0")
            overrides.append("storage.shared=" + shared_url(a.distributed_ip, a.distributed_username,
                                                            a.distributed_host_directory))
        notes.append(distributed_note(a.distributed_ip, a.distributed_username, a.distributed_host_directory))
    return LegacyRun(profile=a.fname or "waggle", machine=machine, overrides=overrides, env=env,
                     debug=a.debug, notes=notes)


DEFAULT_HOST_DIRECTORY = "/srv/ptzjepa"


def shared_url(host: str, user: str, folder: str) -> str:
    """<user>@<host>:<folder>, which PTZJEPA mounted with SSHFS, as the shared store's URL: the node
    reaches the same folder over SFTP itself, with no mount and no privilege (storage.shared)."""
    folder = "/" + (folder or DEFAULT_HOST_DIRECTORY).strip("/")
    return f"sftp://{user + '@' if user else ''}{host}{folder}"


def distributed_note(host: str, user: str, folder: str) -> str:
    """How -dist works here. Each node keeps its own data folder (one run per folder, and frame ids
    name no node), so --data must never be shared; only the world models are, in storage.shared."""
    where = (f"in {shared_url(host, user, folder)}/world_models (storage.shared, over SFTP: no mount; the "
             "server's host key must be in ~/.ssh/known_hosts, the password in $PTZJEPA_SFTP_PASSWORD or a "
             "key in storage.sftp_key_file)") if host else "in storage.shared (set it, e.g. sftp://user@host/path)"
    return ("-dist: world models are leased through Redis (locks.redis_url, password from "
            f"$PTZJEPA_REDIS_PASSWORD) and kept {where}; each node keeps its own --data (never a shared one)")


def run(argv: list[str]) -> int:
    from ptzjepa.config.loading import load_config
    from ptzjepa.run import app

    legacy = translate(argv)
    for note in legacy.notes:
        print(f"warning: {note}", file=sys.stderr)
    os.environ.update(legacy.env)
    config = load_config(legacy.profile, legacy.overrides)
    return app.run(config, legacy.machine, None, view=False, debug=legacy.debug)
