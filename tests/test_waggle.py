"""The Waggle publisher, with a recording stand-in for pywaggle's Plugin (no Waggle node here)."""

from ptzjepa.view.events import Events
from ptzjepa.view.waggle import WagglePublisher


class Recorder:
    def __init__(self):
        self.sent = []

    def publish(self, name, value, meta=None):
        self.sent.append((name, value, meta))


def test_publishes_states_losses_rewards_and_never_secrets(monkeypatch):
    monkeypatch.setenv("PTZJEPA_CAMERA_PASSWORD", "cam-secret-991")
    recorder = Recorder()
    events = Events()
    events.subscribe(WagglePublisher(recorder, every_nth_loss=2))
    events.emit("state_entered", state="dream", cycle=4)
    for step in range(4):
        events.emit("metric", stage="world_model", name="loss", value=1.0 / (step + 1), step=step)
    events.emit("metric", stage="world_model", name="images_per_s", value=99.0, step=1)
    events.emit("reward", value=0.25, action="jump_left")
    events.emit("camera_moved", pan=1.0, tilt=2.0, zoom=1.0)
    events.emit("warning", message="frame skipped")
    names = [n for n, _, _ in recorder.sent]
    assert names == ["ptzjepa.state", "ptzjepa.world_model.loss", "ptzjepa.world_model.loss",
                     "ptzjepa.reward", "ptzjepa.warning"]
    assert recorder.sent[0][1:] == ("dream", {"cycle": "4"})
    assert recorder.sent[3][1] == 0.25
    assert "cam-secret-991" not in repr(recorder.sent)
