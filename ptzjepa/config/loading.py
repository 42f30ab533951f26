"""Profiles and overrides into a checked Config, and back: the loading half of the settings.

profiles/*.yaml are read (following `extends:`), `--set a.b=value` overrides are applied, and
cattrs structures the result into ptzjepa.config.settings's classes with strict hooks, so that a typo'd
key, a wrong type or an out-of-range value stops with one line naming the key (ConfigError, exit
code 2); so do settings that are wrong only together (a patch size that does not divide the
image), a panorama file that is not there, and a URL carrying a password. The error phrasing is
ptzjepa.errors' (the machine files share it); secrets are ptzjepa.secrets', never a setting.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import attrs
import cattrs
import yaml
from cattrs.cols import list_structure_factory

from ptzjepa.config.checks import data_folder_problem, device_problem, panorama_note, panorama_problem
from ptzjepa.config.settings import Config
from ptzjepa.errors import ConfigError, describe_structure_error, unknown_key
from ptzjepa.learning.sizes import TransformerSize
from ptzjepa.logs import redact_url

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"


_converter = cattrs.Converter(forbid_extra_keys=True)


def _structure_float(value: Any, _type: type) -> float:
    """Numbers are finite: `.inf` or `.nan` would pass the range checks (or fail them obscurely)
    and break training only after the camera has moved."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _structure_int(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _structure_bool(value: Any, _type: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _structure_str(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


_converter.register_structure_hook(float, _structure_float)
_converter.register_structure_hook(int, _structure_int)
_converter.register_structure_hook(bool, _structure_bool)
_converter.register_structure_hook(str, _structure_str)


def describe_type(kind: Any) -> str:
    """What a setting's type looks like in a profile, in words: `a list of numbers`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        inner = describe_type(args[0]) if args else "values"
        plural = {"a number": "numbers", "an integer": "integers", "a string": "strings",
                  "true or false": "true/false values", "a mapping of settings": "mappings of settings"}
        return f"a list of {plural.get(inner, inner)}"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if _is_section(kind):
        return "a mapping of settings"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(kind, str(kind))


def _checked_shape(structure: Any, kind: Any, shape: type | tuple[type, ...]) -> Any:
    """A structure function that first checks the value's shape (a mapping, a list), so that
    `--set capture.pan_steps=5` reads `expected a list of numbers, got 5`, not cattrs' `'int'
    object is not iterable`, and a string is never taken for a list of its characters."""

    def structure_checked(value: Any, _type: Any) -> Any:
        if not isinstance(value, shape):
            raise ValueError(f"expected {describe_type(kind)}, got {value!r}")
        return structure(value, _type)

    return structure_checked


def _is_section(kind: Any) -> bool:
    """A settings section: an attrs class, or a dataclass (ptzjepa.learning.sizes.TransformerSize)."""
    return attrs.has(kind) or (isinstance(kind, type) and dataclasses.is_dataclass(kind))


_converter.register_structure_hook_factory(
    _is_section, lambda cl: _checked_shape(_converter.gen_structure_attrs_fromdict(cl), cl, dict))
_converter.register_structure_hook_factory(
    lambda kind: typing.get_origin(kind) is list,
    lambda kind: _checked_shape(list_structure_factory(kind, _converter), kind, (list, tuple)))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Structure and validate a plain dict; raise ConfigError naming the first bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        config = _converter.structure(data, Config)
    except cattrs.ForbiddenExtraKeysError as exc:
        raise ConfigError(f"{source}: {unknown_key(exc, '')}") from None
    except BaseExceptionGroup as exc:
        raise ConfigError(describe_structure_error(exc, source)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    problem = first_problem(config)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
    return config


# Stores whose create-only write fences shared commits (ptzjepa.storage.store.Store.create_bytes)
SHARED_SCHEMES = ("file", "local", "s3", "s3a", "sftp", "ssh", "memory")


def first_problem(config: Config) -> str | None:
    """The first setting that is wrong only together with another one (or with the world), as
    `key: expected ..., got ...`; None when all is well. Checked at load so that the CLI stops
    before it captures or trains anything, rather than when a stage first builds the thing."""
    checks = (_url_problems(config), _model_problems(config), _limits_problems(config),
              [panorama_problem(config.sim.panorama), device_problem(config.run.device)])
    return next((problem for found in checks for problem in found if problem), None)


def host_problem(config: Config) -> str | None:
    """What this machine must allow before a run may start: a data folder it can write or make."""
    return data_folder_problem(config.storage.data)


def config_notes(config: Config) -> list[str]:
    """Warnings about settings that work but may not do what was meant, for the run to show."""
    note = panorama_note(config.sim.panorama, config.sim.panorama_hfov, config.sim.panorama_vfov)
    return [note] if note else []


def _url_problems(config: Config) -> list[str]:
    """Passwords come only from the environment or a secrets file: a URL with user info would be
    stored verbatim in state/config.json and the status file, and shown in logs."""
    cam, locks = config.camera, config.locks
    found = []
    if _has_user_info(cam.url):
        found.append(f"camera.url: expected no user or password in the URL (set camera.username, and the "
                     f"password in ${cam.password_env} or camera.password_file), got {redact_url(cam.url)}")
    if _has_user_info(locks.redis_url):
        found.append(f"locks.redis_url: expected no user or password in the URL (set the password in "
                     f"${locks.password_env} or locks.password_file), got {redact_url(locks.redis_url)}")
    # fsspec chains URLs with '::' (simplecache::s3://key:secret@bucket): check every link
    for key, url in (("storage.data", config.storage.data), ("storage.shared", config.storage.shared)):
        if any("://" in link and _split(link).password is not None for link in url.split("::")):
            found.append(f"{key}: expected no password in the URL (sftp:// takes storage.sftp_password_env, "
                         f"a key file or an agent, s3:// the AWS_* environment variables), got {redact_url(url)}")
    shared = config.storage.shared
    scheme = shared.split("::")[-1].split("://")[0] if "://" in shared else "file"
    if scheme not in SHARED_SCHEMES:
        found.append(f"storage.shared: expected a URL the shared models can be committed to with a create-only "
                     f"write ({', '.join(s + '://' for s in SHARED_SCHEMES)} or a folder), got {redact_url(shared)}")
    elif scheme not in ("file", "local", "memory") and config.locks.kind != "redis":
        found.append(f"locks.kind: expected redis with storage.shared on {scheme}:// (a local lock does not "
                     f"reach the other nodes sharing it), got {config.locks.kind}")
    return found


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # a malformed netloc (e.g. an unclosed IPv6 bracket): let the consumer say so
        return urlsplit("")


def _has_user_info(url: str) -> bool:
    return "@" in _split(url).netloc


def _model_problems(config: Config) -> list[str]:
    """What ptzjepa.learning's WorldModelSpec and QNetSpec would refuse when a stage builds them."""
    wm = config.world_model
    found = []
    if wm.image_size % wm.patch_size:
        found.append(f"world_model.image_size: expected a multiple of world_model.patch_size "
                     f"({wm.patch_size}), got {wm.image_size}")
    nets: list[tuple[str, TransformerSize, bool]] = [
        ("world_model.encoder", wm.encoder, True),
        ("world_model.predictor", wm.predictor, True),
        ("agent.net", config.agent.net, False),
    ]
    for key, net, sincos in nets:
        if net.width % net.heads:
            found.append(f"{key}.width: expected a multiple of {key}.heads ({net.heads}), got {net.width}")
        elif sincos and net.width % 4:
            found.append(f"{key}.width: expected a multiple of 4 (the 2-D sin-cos position table), "
                         f"got {net.width}")
    return found


def _limits_problems(config: Config) -> list[str]:
    """Each axis needs finite limits with low < high (ptzjepa.camera.base.AxisRange)."""
    limits = config.camera.limits
    found = []
    for axis in ("pan", "tilt", "zoom"):
        lo, hi = getattr(limits, f"{axis}_min"), getattr(limits, f"{axis}_max")
        for name, value in ((f"{axis}_min", lo), (f"{axis}_max", hi)):
            if not math.isfinite(value):
                found.append(f"camera.limits.{name}: expected a finite number, got {value}")
        if math.isfinite(lo) and math.isfinite(hi) and not lo < hi:
            found.append(f"camera.limits.{axis}_max: expected greater than camera.limits.{axis}_min "
                         f"({lo}), got {hi}")
    return found


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_profile_dict(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a profile (a name under profiles/ or a path) and the profiles it extends, merged."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ConfigError(f"profile {name_or_path!r}: no such profile (known: {known})")
    if str(path) in _seen:
        raise ConfigError(f"profile {path}: 'extends' loops back on itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"profile {path}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path}: expected a mapping of settings")
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"profile {path}: 'extends' must name one profile")
        data = _merge(load_profile_dict(parent, (*_seen, str(path))), data)
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; the value is read as a YAML scalar or list."""
    out = _merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. world_model.epochs=3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
        out = _set(out, key.strip(), value)
    return out


def load_config(profile: str = "sim", overrides: list[str] | None = None,
                flags: dict[str, tuple[str, str]] | None = None, check_host: bool = True) -> Config:
    """A profile, then the command line's own options (`flags`: key -> (option, value), taken as
    given, never as YAML), then `--set` overrides, checked; with `check_host`, also what this
    machine must allow (ptzjepa.config.checks). An error blames where the bad value came from:
    `--set`, the option (`--data`), or the profile."""
    overrides = overrides or []
    data = load_profile_dict(profile)
    for key, (_option, value) in (flags or {}).items():
        data = _set(data, key, value)
    data = apply_overrides(data, overrides)
    origins = {key: option for key, (option, _value) in (flags or {}).items()}
    origins.update({item.partition("=")[0].strip(): "--set" for item in overrides})
    source = f"profile {profile}"
    try:
        config = config_from_dict(data, source=source)
        problem = host_problem(config) if check_host else None
        if problem:
            raise ConfigError(f"{source}: {problem}")
    except ConfigError as exc:
        raise ConfigError(_blame(str(exc), source, origins)) from None
    return config


def _blame(message: str, source: str, origins: dict[str, str]) -> str:
    """Name the option a bad key came from instead of the profile, when it came from one."""
    rest = message.removeprefix(f"{source}: ")
    unknown = re.match(r"unknown key '([^']+)'", rest)
    key = unknown.group(1) if unknown else rest.partition(":")[0]
    for given, option in reversed(list(origins.items())):
        named = re.search(rf"(?<![\w.]){re.escape(given)}(?![\w.])", rest)  # a setting wrong together with it
        if key == given or key.startswith((f"{given}.", f"{given}[")) or given.startswith(f"{key}.") or named:
            return f"{option}: {rest}"
    return message


def _set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`data` with the dotted `key` set to `value`, the mappings on the way copied."""
    out = dict(data)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[parts[-1]] = value
    return out


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for storing next to a run; holds no secret (settings only name where they live)."""
    return _converter.unstructure(config)
