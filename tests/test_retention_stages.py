"""The stages over a store whose limits removed images but kept the positions: a tracked position
is never handed to training, dreams or navigation as a frame."""

from ptzjepa.node import model_store
from ptzjepa.stages.agent import train_agent
from ptzjepa.stages.dream import dream
from ptzjepa.stages.navigate import navigate
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.frames import frame_id
from tests.stage_helpers import captured_node


def _warnings(node) -> list[str]:
    seen: list[str] = []
    node.events.subscribe(lambda e: e.kind == "warning" and seen.append(e.data["message"]))
    return seen


def test_training_and_dreams_use_only_frames_with_their_image():
    node = captured_node("world_model.epochs=1", "storage.track_positions=true")
    ids = node.frames.ids()
    for fid in ids[:-3]:
        node.frames.drop_image(fid, keep_embedding=True)
    warnings = _warnings(node)
    assert train_world_model(node) == "done"
    assert model_store.world_models(node).info("wm-0")["frames"] == 3
    assert dream(node) == "done"  # a tracked position as a start frame would warn and be skipped
    assert warnings == [] and len(node.frames.record_ids()) == len(ids)


def test_navigation_resumed_after_its_last_image_was_removed_starts_the_round_afresh():
    node = captured_node("world_model.epochs=1", "agent.epochs=1")
    assert train_world_model(node) == "done" and dream(node) == "done" and train_agent(node) == "done"
    stored: list[str] = []

    def stop_after_two(event) -> None:
        if event.kind == "frame_stored" and event.data["stage"] == "navigate":
            stored.append(event.data["id"])
            if len(stored) == 2:
                node.stop.set()

    node.events.subscribe(stop_after_two)
    assert navigate(node) == "stopped"
    node.events.unsubscribe(stop_after_two)
    node.stop.clear()
    node.frames.drop_image(frame_id(0, "navigate", 1), keep_embedding=True)
    assert navigate(node) == "done"
    assert node.frames.record(frame_id(0, "navigate", 2)).command.kind == "absolute"
    assert node.frames.record(frame_id(0, "navigate", 1)).image == ""
