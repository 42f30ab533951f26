"""Settings that are right only if this machine agrees: the device, the panorama file, the data
folder. ptzjepa.config.loading asks these at load, so a run stops with one line naming the setting
before it opens the store or moves a camera, instead of failing after capture (a device that is
not there) or halfway through setting up a folder (a data path it cannot write).

Each check returns `key: expected ..., got ...` or None; none of them leaves anything behind.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

import fsspec

_DEVICE = re.compile(r"cuda(?::(\d+))?")
# How far a panorama may be from 2:1 before it is taken to cover less than the whole sphere.
PANORAMA_RATIO_TOLERANCE = 0.01


def device_problem(device: str) -> str | None:
    """`auto`, `cpu`, `cuda` or `cuda:N`, and a CUDA device only where torch sees that GPU."""
    if device in ("auto", "cpu"):
        return None
    match = _DEVICE.fullmatch(device)
    if match is None:
        return f"run.device: expected auto, cpu, cuda or cuda:N, got {device!r}"
    import torch  # only for a CUDA device: `auto` and `cpu` load without it

    if not torch.cuda.is_available():
        why = "torch here is built without CUDA" if not torch.backends.cuda.is_built() \
            else "no CUDA GPU is visible"
        return f"run.device: expected a device this machine has (auto or cpu: {why}), got {device!r}"
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        return (f"run.device: expected a device this machine has (cuda:0 to cuda:{count - 1}), "
                f"got {device!r}")
    return None


def panorama_size(path: str) -> tuple[int, int] | str:
    """(width, height) of an image file that decodes, or why it does not. Decoded in full, as the
    simulator will: a file that only looks like an image fails here, not at the first grab."""
    file = Path(path)
    if not file.is_file():
        return "no such file"
    stat = file.stat()
    if stat.st_size == 0:
        return "an empty file"
    return _decoded_size(str(file), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _decoded_size(path: str, _mtime_ns: int, _size: int) -> tuple[int, int] | str:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return "not an image that decodes: expected PNG, JPEG or another common format"
    return int(image.shape[1]), int(image.shape[0])


def panorama_problem(path: str) -> str | None:
    if not path:
        return None
    size = panorama_size(path)
    if isinstance(size, str):
        return f"sim.panorama: expected an image file, got {path!r} ({size})"
    width, height = size
    if width < 4 or height < 2:
        return f"sim.panorama: expected an image of at least 4x2 pixels, got {path!r} ({width}x{height})"
    return None


def panorama_note(path: str, hfov: float, vfov: float) -> str | None:
    """A warning for a panorama that is not 2:1 and says nothing of the field it covers: it is
    then stretched over the whole sphere, which the user should know and can correct."""
    if not path or hfov or vfov:
        return None
    size = panorama_size(path)
    if isinstance(size, str):
        return None
    width, height = size
    if abs(width / height - 2.0) <= 2.0 * PANORAMA_RATIO_TOLERANCE:
        return None
    return (f"sim.panorama {path} is {width}x{height}, not 2:1: it is stretched over the whole sphere "
            f"(360° x 180°); set sim.panorama_hfov (and sim.panorama_vfov) to the degrees it covers "
            f"to map it without stretching")


def data_folder_problem(url: str) -> str | None:
    """A local data folder must be one this user can write, or one that can be made: checked by
    making (and at once removing) a temporary folder in it or in its nearest existing parent.
    Remote stores (sftp://, s3://, memory://) are checked when they are opened."""
    if not url.strip():
        return "storage.data: expected a folder path or URL, got an empty value"
    if "::" in url:
        return None
    protocol, path = fsspec.core.split_protocol(url)
    if protocol not in (None, "file", "local"):
        return None
    target = Path(os.path.abspath(Path(path).expanduser()))
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "a file" if existing == target else f"under a file ({existing})"
        return f"storage.data: expected a folder, got {url!r} ({what})"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ptzjepa-probe-", dir=existing))
    except OSError as exc:
        where = "cannot write in it" if existing == target else f"cannot make it in {existing}"
        return f"storage.data: expected a folder this user can write, got {url!r} ({where}: {exc.strerror})"
    return None
