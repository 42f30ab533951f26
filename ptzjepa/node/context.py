"""The Node: everything a stage needs (config, camera, store, events, stop flag), in one place.

Stages receive a Node and nothing else, so a stage never builds its own camera or store and tests
can hand a stage a node over a memory:// store and a simulated camera.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import attrs

from ptzjepa.camera.base import PTZCamera, PTZLimits
from ptzjepa.config.settings import Config
from ptzjepa.distributed.locks import LocalLocker, Locker, RedisLocker
from ptzjepa.storage.damage import Damaged, is_int, move_aside, read_json_checked, require
from ptzjepa.storage.frames import FrameStore
from ptzjepa.storage.store import Store
from ptzjepa.view.events import Events

PROGRESS_DIR = "state/progress"


def _check_progress(data: Any) -> None:
    require(isinstance(data, dict), "not an object")
    require(is_int(data.get("cycle")), "no cycle number")
    for key in ("done", "total"):
        require(key not in data or is_int(data[key]), f"{key!r} is not a number")


@attrs.define
class Node:
    config: Config
    store: Store
    events: Events = attrs.field(factory=Events)
    stop: threading.Event = attrs.field(factory=threading.Event)
    cycle: int = 0
    name: str = ""
    # The world-model population (storage.shared); the node's own store unless set apart.
    shared: Store | None = None
    _camera: PTZCamera | None = None
    _locker: Locker | None = None
    frames: FrameStore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.name = self.name or self.config.run.node or socket.gethostname()
        if self.shared is None:
            self.shared = self.store
        self.frames = FrameStore(self.store, jpeg_quality=self.config.storage.jpeg_quality)

    @property
    def limits(self) -> PTZLimits:
        return self._camera.limits if self._camera is not None else self.config.camera.limits.to_limits()

    def camera(self) -> PTZCamera:
        """The camera, opened on first use: stages that never move it never open it."""
        if self._camera is None:
            from ptzjepa.node.cameras import open_camera

            self._camera = open_camera(self.config)
        return self._camera

    def locker(self) -> Locker:
        """Leases on shared models: Redis in distributed mode, else local to this data folder."""
        if self._locker is None:
            locks = self.config.locks
            if locks.kind == "redis":
                self._locker = RedisLocker(locks.redis_url, self.name, locks.lease_s, locks.password())
            else:
                self._locker = LocalLocker(self.shared, self.name)
        return self._locker

    def use_camera(self, camera: PTZCamera) -> None:
        self._camera = camera

    def progress(self, stage: str) -> dict[str, Any]:
        """A stage's saved progress in the current cycle; {} when it has none for this cycle. A
        damaged progress file is moved aside (one warning) and rebuilt from the stage's frames."""
        rel = f"{PROGRESS_DIR}/{stage}.json"
        try:
            data = read_json_checked(self.store, rel, _check_progress)
        except Damaged as exc:
            data = self._rebuilt_progress(stage)
            done = f"resuming {stage} at step {data['done']}" if data else f"{stage} starts its plan over"
            move_aside(self.store, rel, str(exc), f"rebuilt from the stored frames: {done}", self.warn)
            if data:
                self.save_progress(stage, **{k: v for k, v in data.items() if k != "cycle"})
        if isinstance(data, dict) and data.get("cycle") == self.cycle:
            return data
        return {}

    def _rebuilt_progress(self, stage: str) -> dict[str, Any]:
        """A stage's progress from what it stored: one past its newest frame of this cycle (frame
        ids are (cycle, stage, step), so a step redone after this rewrites its own frame)."""
        prefix = f"c{self.cycle:05d}_{stage}_"
        steps = [int(fid[len(prefix):]) for fid in self.frames.record_ids() if fid.startswith(prefix)]
        return {"done": max(steps) + 1, "cycle": self.cycle} if steps else {}

    def check_progress_files(self) -> None:
        """At start-up: every stage's progress file, so that damage is found (and moved aside)
        even in a stage this run does not reach."""
        for name in self.store.list(PROGRESS_DIR, ".json"):
            self.progress(name[: -len(".json")])

    def warn(self, message: str) -> None:
        self.events.emit("warning", message=message)

    def save_progress(self, stage: str, **data: Any) -> None:
        self.store.write_json(f"{PROGRESS_DIR}/{stage}.json", {**data, "cycle": self.cycle})

    def device(self) -> Any:
        """The torch device from `run.device` ('auto' takes CUDA when present)."""
        import torch

        want = self.config.run.device
        if want == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(want)

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
