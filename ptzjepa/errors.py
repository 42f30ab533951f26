"""How bad input is reported: one line naming the key or file and what was expected.

Shared by the settings (ptzjepa.config.loading), the secrets (ptzjepa.secrets) and the machine
files (ptzjepa.run.machine), which all structure YAML with cattrs and must phrase its errors alike.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

import attrs
import cattrs


class ConfigError(ValueError):
    """Bad configuration: the message is one line naming the key or file and what was expected."""


def _note_key(exc: BaseException) -> str | int | None:
    for note in getattr(exc, "__notes__", []):
        name = getattr(note, "name", None)
        if name is not None:
            return name
        index = getattr(note, "index", None)
        if index is not None:
            return index
    return None


def unknown_key(exc: cattrs.ForbiddenExtraKeysError, where: str) -> str:
    """`unknown key 'a.b' (did you mean 'a.c'?)`: the closest of the keys that class takes."""
    name = sorted(exc.extra_fields)[0]
    key = f"{where}.{name}" if where else name
    known = [field.name for field in attrs.fields(exc.cl)] if attrs.has(exc.cl) else \
        [field.name for field in dataclasses.fields(exc.cl)] if dataclasses.is_dataclass(exc.cl) else []
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        return f"unknown key {key!r}"
    return f"unknown key {key!r} (did you mean {(f'{where}.{close[0]}' if where else close[0])!r}?)"


def describe_structure_error(exc: BaseException, source: str) -> str:
    """One line naming the first bad key of a cattrs structuring error, e.g. `capture.iterations: ...`."""
    path: list[str] = []
    while isinstance(exc, BaseExceptionGroup):
        sub = exc.exceptions[0]
        key = _note_key(sub)
        if key is not None:
            path.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        exc = sub
    where = "".join(path).lstrip(".")
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"{source}: {unknown_key(exc, where)}"
    if isinstance(exc, KeyError):
        return f"{source}: {where or 'config'}: missing required key {exc.args[0]!r}"
    message = str(exc)
    validator = re.match(r"^'(\w+)' must be (.*): (.*)$", message, re.S)
    if validator:  # attrs validators name the field themselves
        name, rule, got = validator.groups()
        where = f"{where}.{name}" if where else name
        message = f"expected {rule.replace('<', 'less than ').replace('>', 'greater than ').replace('=', 'or equal to ')}, got {got}"
        message = message.replace("  ", " ")
    literal = re.match(r"^(.*) not in literal typing\.Literal\[(.*)\]$", message)
    if literal:
        got, allowed = literal.groups()
        message = f"expected one of {allowed.replace(chr(39), '')}, got {got!r}"
    return f"{source}: {where or 'config'}: {message}"
