"""Small readers the report's gathering shares: many files in one call, numbers out of JSON."""

from __future__ import annotations

from collections.abc import Iterable

from ptzjepa.storage.store import Store


def read_many(store: Store, names: Iterable[str]) -> dict[str, bytes]:
    """Several files' bytes in one call (concurrent on object stores); missing files are left out."""
    names = list(names)
    if not names:
        return {}
    paths = {store.path(name): name for name in names}
    found = store.fs.cat(list(paths), on_error="omit")
    return {paths[path]: data for path, data in found.items() if isinstance(data, bytes) and path in paths}


def flatten_numbers(data: object, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested JSON as {"a.b": value}; lists, strings and None are left out."""
    if isinstance(data, bool):
        return {}
    if isinstance(data, (int, float)):
        return {prefix or "value": float(data)}
    if isinstance(data, dict):
        out: dict[str, float] = {}
        for key, value in data.items():
            out.update(flatten_numbers(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {}
