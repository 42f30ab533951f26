"""Everything a node keeps, through fsspec: one URL (a local path, file://, memory://, sftp://, s3://).

Every write is atomic. On file systems with a rename (local, SFTP) bytes go to a hidden temporary
name in the same folder and are renamed into place; on object stores (S3, GCS, memory) a single
put is already all-or-nothing. A process killed mid-write therefore never leaves a partial file
under a real name; the hidden leftovers are swept when the store is next opened.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

# Object stores whose single put is atomic: no temp-and-rename needed (nor possible cheaply).
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "memory"}
_TMP_MARK = ".tmp-"
_STALE_TMP_S = 3600.0
_HOST = socket.gethostname().replace("/", "_") or "host"


def _temp_tag() -> str:
    """Whose a temporary file is: `<pid>-<host>-<random>`, so a sweep on a shared folder can tell
    a dead writer of this host (its pid is gone) from a live one or another host's."""
    return f"{os.getpid()}-{_HOST}-{uuid.uuid4().hex}"


def _temp_owner(name: str) -> tuple[int, str] | None:
    """(pid, host) from a temporary file's name; None for a name this module did not make."""
    tag = name.rpartition(_TMP_MARK)[2]
    pid, _, rest = tag.partition("-")
    host, _, _random = rest.rpartition("-")
    return (int(pid), host) if pid.isdigit() and host else None


def _stamp(info: dict[str, Any]) -> float:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    return mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime or 0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


_MEMORY_CREATE = threading.Lock()


def _s3_create(fs: Any, path: str, data: bytes) -> bool:
    """PUT with `If-None-Match: *`: the server answers 412 when the key exists."""
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:  # s3fs's name for the 412 Precondition Failed
        return False
    return True


def _sftp_rename_no_replace(fs: Any, src: str, dst: str) -> bool:
    """SFTP v3 `rename` refuses an existing target (OpenSSH's server and asyncssh's both do);
    sshfs's own `mv` asks for posix-rename, which would replace it, so the plain request is sent
    on one of its channels."""
    from asyncssh import SFTPFailure
    from fsspec.asyn import sync

    async def rename() -> None:
        async with fs._pool.get() as channel:
            await channel.rename(src, dst)

    try:
        sync(fs.loop, rename)
    except SFTPFailure:  # SFTPFileAlreadyExists is a subclass; OpenSSH answers a plain failure
        if fs.exists(dst):
            return False
        raise
    fs.invalidate_cache(posixpath.dirname(dst))
    return True


class StoreError(RuntimeError):
    """A stored file is missing or unreadable; the message names the file."""


class Store:
    """A folder of named files under one URL, written atomically."""

    def __init__(self, url: str, create: bool = True, **storage_options: Any) -> None:
        """Open the store at `url`, making its folder unless `create` is False (a reader such as
        `cli.py status` must leave a mistyped path as it found it)."""
        self.url = url
        if url.split("://")[0] in ("s3", "s3a"):
            # s3fs keeps every listing for the life of the process by default: a node would never
            # see the versions and fence records other nodes write (exists() is answered from it too).
            storage_options.setdefault("use_listings_cache", False)
        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/") or "/"
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        self.protocol = protocols[0]
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self._atomic_put = any(p in _ATOMIC_PUT for p in protocols)
        if create:
            self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # --- paths -----------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        """The full path of a store-relative name (always '/'-separated)."""
        rel = rel.strip("/")
        if rel.startswith("..") or "/../" in f"/{rel}/":
            raise StoreError(f"store {self.url}: name {rel!r} leaves the store")
        return posixpath.join(self.root, rel) if rel else self.root

    def local_path(self, rel: str) -> str | None:
        """The OS path of a name when the store is on local disk (for OS-level locks), else None."""
        return self.path(rel) if self.is_local else None

    # --- writing ---------------------------------------------------------------------------

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically: readers see the old content or the new, never a part."""
        final = self.path(rel)
        parent = posixpath.dirname(final)
        self.fs.makedirs(parent, exist_ok=True)
        if self._atomic_put:
            self.fs.pipe_file(final, data)
            return
        tmp = posixpath.join(parent, f".{posixpath.basename(final)}{_TMP_MARK}{_temp_tag()}")
        if self.is_local:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            return
        try:
            with self.fs.open(tmp, "wb") as handle:
                handle.write(data)
            if self.fs.exists(final):
                # SFTP's rename refuses to overwrite; remove then move keeps a window where the
                # name is missing but never one where it holds a partial file.
                self.fs.rm_file(final)
            self.fs.mv(tmp, final)
        except BaseException:
            self._quiet_rm(tmp)
            raise

    def create_bytes(self, rel: str, data: bytes) -> bool:
        """Write a whole file only if no file has that name yet: False, and nothing written, if one
        has. On local disk, SFTP, S3 and memory the store itself decides (an exclusive link, SFTP's
        non-overwriting rename, S3's `If-None-Match: *`), so two writers racing for one name never
        both win: the commit step of fenced checkpoints (docs/distributed.md)."""
        final = self.path(rel)
        parent = posixpath.dirname(final)
        self.fs.makedirs(parent, exist_ok=True)
        if self.protocol == "memory":
            with _MEMORY_CREATE:
                if self.fs.exists(final):
                    return False
                self.fs.pipe_file(final, data)
                return True
        if self.protocol in ("s3", "s3a"):
            return _s3_create(self.fs, final, data)
        if not (self.is_local or self.protocol in ("ssh", "sftp")):
            # No create-only write known for this store: check, then write. Not exclusive, which is
            # why storage.shared (where several writers meet) is refused on such stores at load.
            if self.fs.exists(final):
                return False
            self.write_bytes(rel, data)
            return True
        tmp = posixpath.join(parent, f".{posixpath.basename(final)}{_TMP_MARK}{_temp_tag()}")
        try:
            if self.is_local:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, final)  # refuses an existing name, atomically; the content is whole
                except FileExistsError:
                    return False
                return True
            with self.fs.open(tmp, "wb") as handle:
                handle.write(data)
            return _sftp_rename_no_replace(self.fs, tmp, final)
        finally:
            self._quiet_rm(tmp)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=1, sort_keys=True).encode())

    # --- reading ---------------------------------------------------------------------------

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            raise StoreError(f"{self.url}/{rel}: no such file") from None

    def read_json(self, rel: str, default: Any = ...) -> Any:
        try:
            raw = self.read_bytes(rel)
        except StoreError:
            if default is ...:
                raise
            return default
        try:
            return json.loads(raw)
        except ValueError:
            raise StoreError(f"{self.url}/{rel}: not valid JSON") from None

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def is_folder(self) -> bool:
        """Whether the store's own folder is there (a store opened with create=False may lack it)."""
        return bool(self.fs.isdir(self.root))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def modified(self, rel: str) -> float:
        """When a file was last written (seconds since the epoch; 0 where the store cannot say)."""
        return _stamp(self.fs.info(self.path(rel)))

    def list(self, folder: str, suffix: str = "") -> list[str]:
        """Names (not paths) of the visible files in a folder, sorted; [] if it does not exist."""
        try:
            entries = self.fs.ls(self.path(folder), detail=False)
        except FileNotFoundError:
            return []
        names = (posixpath.basename(e.rstrip("/")) for e in entries)
        return sorted(n for n in names if not n.startswith(".") and n.endswith(suffix))

    def list_dirs(self, folder: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(folder), detail=True)
        except FileNotFoundError:
            return []
        names = (posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == "directory")
        return sorted(n for n in names if not n.startswith("."))

    def walk_sizes(self, folder: str = "") -> Iterator[tuple[str, int]]:
        """(store-relative name, bytes) of every visible file under a folder."""
        base = self.path(folder)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        root_len = len(self.root.rstrip("/")) + 1
        for path, info in found.items():
            name = path[root_len:] if path.startswith(self.root) else path
            if any(part.startswith(".") for part in name.split("/")):
                continue
            yield name, int(info.get("size") or 0)

    def disk_usage(self, folder: str = "") -> int:
        return sum(size for _, size in self.walk_sizes(folder))

    # --- removing --------------------------------------------------------------------------

    def delete(self, rel: str) -> None:
        self._quiet_rm(self.path(rel))

    def move(self, rel: str, dest: str) -> None:
        """Rename a file or a folder inside the store (on object stores: copy, then delete)."""
        src, dst = self.path(rel), self.path(dest)
        if self.is_local:
            os.makedirs(posixpath.dirname(dst), exist_ok=True)
            os.replace(src, dst)
            return
        self.fs.mv(src, dst, recursive=self.fs.isdir(src))

    def delete_tree(self, rel: str) -> None:
        path = self.path(rel)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def sweep_temp_files(self, folder: str = "", older_than_s: float = _STALE_TMP_S, shared: tuple[str, ...] = ()) -> int:
        """Remove temporary files left by writers that died; returns how many were removed.

        In the `shared` sub-folders of `folder` (storage other nodes write to) a temporary file goes
        at once when its name says it is this host's and its process is gone; another host's (or
        one whose owner cannot be told) only once older than an hour: it may be a live write."""
        try:
            found = self.fs.find(self.path(folder), detail=True, withdirs=False)
        except FileNotFoundError:
            return 0
        shared_paths = tuple(self.path(posixpath.join(folder, name)).rstrip("/") + "/" for name in shared)
        now = time.time()
        removed = 0
        for path, info in found.items():
            name = posixpath.basename(path)
            if _TMP_MARK not in name:
                continue
            stamp = _stamp(info)
            age = older_than_s
            if path.startswith(shared_paths):
                owner = _temp_owner(name)
                dead_here = owner is not None and owner[1] == _HOST and not _pid_alive(owner[0])
                age = 0.0 if dead_here else _STALE_TMP_S
            if age <= 0 or now - stamp > age:
                self._quiet_rm(path)
                removed += 1
        return removed

    def _quiet_rm(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
