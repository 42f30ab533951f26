#!/usr/bin/env python3
"""Print the pip requirements of the node image: the project's dependencies plus the extras asked
for, less what the base image already brings.

    python docker/node_requirements.py remote,waggle > /tmp/requirements.txt

torch is left out when the base image has it. pyproject.toml pins torch exactly, for laptops and
CI; in the image, the base's torch is the one built for the machine's CUDA (or for a Jetson's
JetPack), and a PyPI wheel in its place could fail to see the GPU, or fail to load at all.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# distribution name -> the module that shows the base image has it
PROVIDED_BY_BASE = {"torch": "torch"}


def name_of(requirement: str) -> str:
    """The distribution name of a requirement line, normalised: `s3fs>=2024.3` -> `s3fs`."""
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def has_module(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def requirements(extras: Sequence[str], pyproject: Path = PYPROJECT,
                 present: Callable[[str], bool] = has_module) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise ValueError(f"unknown extra {unknown[0]!r} (known: {', '.join(sorted(optional))})")
    wanted = list(project["dependencies"]) + [r for extra in extras for r in optional[extra]]
    out: list[str] = []
    for requirement in wanted:
        module = PROVIDED_BY_BASE.get(name_of(requirement))
        if module is not None and present(module):
            continue
        if requirement not in out:
            out.append(requirement)
    return out


def main(argv: list[str]) -> int:
    extras = [e for arg in argv for e in arg.split(",") if e]
    try:
        lines = requirements(extras)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
