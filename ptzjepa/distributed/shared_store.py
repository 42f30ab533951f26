"""Opening the shared store (`storage.shared`): the world-model population other nodes also use.

The shared store is a Store like the node's own, opened with what its protocol needs and never
with a secret in its URL: an S3-compatible endpoint for s3://, and for sftp:// the known_hosts
file that the server's host key must be in (sshfs would otherwise skip the check) and the password
or key. Frames, dreams, agents and state stay in the node's own store.
"""

from __future__ import annotations

import os
from typing import Any

from ptzjepa.config.settings import StorageConfig
from ptzjepa.storage.store import Store


def storage_options(url: str, storage: StorageConfig) -> dict[str, Any]:
    """fsspec options for a URL: endpoint for S3, host-key check and credentials for SFTP."""
    scheme = url.split("://")[0] if "://" in url else "file"
    options: dict[str, Any] = {}
    if scheme in ("s3", "s3a") and storage.s3_endpoint:
        options["client_kwargs"] = {"endpoint_url": storage.s3_endpoint}
    if scheme in ("sftp", "ssh"):
        options["known_hosts"] = os.path.expanduser(storage.sftp_known_hosts)
        password = storage.sftp_password()
        if password:
            options["password"] = password
        if storage.sftp_key_file:
            options["client_keys"] = [os.path.expanduser(storage.sftp_key_file)]
        options["timeout"] = 20
    return options


def open_shared(storage: StorageConfig, own: Store | None = None, create: bool = True) -> Store:
    """The store holding the shared world models; the node's own store when `shared` is unset."""
    if not storage.shared and own is not None:
        return own
    url = storage.shared_url()
    return Store(url, create=create, **storage_options(url, storage))


def models_shared(storage: StorageConfig) -> bool:
    """Whether the world models live in a store set apart for sharing (`storage.shared` differs
    from `storage.data`), where other nodes' writes may be in flight: a start-up sweep there
    removes only this host's dead writers' temporary files and stale ones."""
    return bool(storage.shared) and storage.shared.rstrip("/") != storage.data.rstrip("/")
