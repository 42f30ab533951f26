"""Progress lines for runs without the live view (a container on a node, a log file).

The training stages emit a `progress` event per update; without the view nobody would see
them. This subscriber turns them into a log line at the end of an epoch (at most one per
`min_gap_s`, so that short epochs do not flood the log) and at least every `every_s` during a
long one: loss, images/s and the time left. Nothing else: the logs stay quiet otherwise.
"""

from __future__ import annotations

import logging
import time

from ptzjepa.view.events import Event, format_fields

log = logging.getLogger("ptzjepa.progress")


def _eta(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLines:
    def __init__(self, every_s: float = 30.0, min_gap_s: float = 5.0, clock=time.monotonic) -> None:
        self.every_s = every_s
        self.min_gap_s = min(min_gap_s, every_s)
        self.clock = clock
        self.last = clock()
        self.latest: dict = {}

    def __call__(self, event: Event) -> None:
        if event.kind != "progress":
            return
        data = event.data
        if "loss" in data:  # a training update: remember it, print on a heartbeat
            self.latest = dict(data)
            if self.clock() - self.last >= self.every_s:
                self._print(self.latest)
        elif self.latest.get("stage") == data.get("stage") and "batch" not in data:  # an epoch ended
            if self.clock() - self.last >= self.min_gap_s or data.get("done") == data.get("total"):
                self._print({**self.latest, "done": data.get("done"), "batch": self.latest.get("batches")})

    def _print(self, data: dict) -> None:
        self.last = self.clock()
        fields = {
            "stage": data.get("stage"), "epoch": f"{data.get('done')}/{data.get('total')}",
            "update": f"{data.get('batch')}/{data.get('batches')}", "loss": float(data.get("loss", 0.0)),
            "images_per_s": float(data.get("images_per_s", 0.0)), "eta": _eta(float(data.get("eta_s", 0.0))),
        }
        log.info("event=progress %s", format_fields(fields))
