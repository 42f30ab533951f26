"""Every setting of a node, as attrs classes: the defaults, the types and the allowed ranges.

Validators raise ValueError naming the field ("'iterations' must be >= 1: 0"); ptzjepa.config.loading
reads profiles/*.yaml and `--set` overrides into these classes and turns such errors into one line
naming the full key; it also checks the settings that are wrong only together (first_problem).
Secrets are never settings: a setting only names the environment variable or file that holds one.
Sections that one part takes as it is are defined next to it and composed here: `camera:`
(ptzjepa.camera.settings), `sim:` (sim.settings) and a network's size (ptzjepa.learning.sizes).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from attrs.validators import and_, ge, gt, le

from ptzjepa.camera.base import PTZ
from ptzjepa.camera.settings import CameraConfig
from ptzjepa.learning.sizes import TransformerSize
from ptzjepa.secrets import read_secret
from sim.settings import SimConfig


def _pair(lo_ok: float | None = None):
    """Validator for a [low, high] list of two numbers with low <= high."""

    def check(instance: Any, attribute: attrs.Attribute, value: list[float]) -> None:
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError(f"'{attribute.name}' must be [low, high] with low <= high: {value}")
        if lo_ok is not None and value[0] < lo_ok:
            raise ValueError(f"'{attribute.name}' must be values >= {lo_ok}: {value}")

    return check


def _nonempty(instance: Any, attribute: attrs.Attribute, value: list) -> None:
    if len(value) == 0:
        raise ValueError(f"'{attribute.name}' must be a list of at least one value: {value}")


# torch.compile modes that run the networks as CUDA graphs
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def _one_pass_under_cuda_graphs(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value and instance.compile in CUDA_GRAPH_MODES:
        raise ValueError(f"'{attribute.name}' must be 0 with compile {instance.compile} (CUDA graphs): {value}")


# --- data collection ------------------------------------------------------------------------


@attrs.frozen
class CaptureConfig:
    """The random protocol: `iterations` random starts, `movements` random moves each."""

    iterations: int = attrs.field(default=10, validator=ge(1))
    movements: int = attrs.field(default=10, validator=ge(0))
    # Steps of {-5,-1,-0.1,0,0.1,1,5} with pan/tilt doubled, the doubling folded into the values.
    pan_steps: list[float] = attrs.field(
        factory=lambda: [-10.0, -2.0, -0.2, 0.0, 0.2, 2.0, 10.0], validator=_nonempty
    )
    tilt_steps: list[float] = attrs.field(
        factory=lambda: [-10.0, -2.0, -0.2, 0.0, 0.2, 2.0, 10.0], validator=_nonempty
    )
    zoom_steps: list[float] = attrs.field(
        factory=lambda: [-0.2, -0.1, 0.0, 0.1, 0.2], validator=_nonempty
    )
    start_zoom: list[float] = attrs.field(factory=lambda: [1.0, 1.0], validator=_pair(0))
    grab_retries: int = attrs.field(default=3, validator=ge(1))
    seed: int = 0


@attrs.frozen
class Action:
    """One discrete move of the agent, in degrees and zoom factor before modulation."""

    name: str
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0

    def delta(self) -> PTZ:
        return PTZ(self.pan, self.tilt, self.zoom)


def default_actions() -> list[Action]:
    """The 21 actions: noop, short, long and jump moves, zoom in and out."""
    a = Action
    return [
        a("noop"),
        a("short_left", pan=-0.1), a("short_right", pan=0.1),
        a("short_up", tilt=0.1), a("short_down", tilt=-0.1),
        a("short_up_left", -0.1, 0.1), a("short_up_right", 0.1, 0.1),
        a("short_down_left", -0.1, -0.1), a("short_down_right", 0.1, -0.1),
        a("short_zoom_in", zoom=0.1), a("short_zoom_out", zoom=-0.1),
        a("long_left", pan=-1.0), a("long_right", pan=1.0),
        a("long_up", tilt=1.0), a("long_down", tilt=-1.0),
        a("long_zoom_in", zoom=0.2), a("long_zoom_out", zoom=-0.2),
        a("jump_left", pan=-5.0), a("jump_right", pan=5.0),
        a("jump_up", tilt=3.0), a("jump_down", tilt=-3.0),
    ]  # fmt: skip


@attrs.frozen
class Modulation:
    """Scale applied to an action's deltas when the camera executes it."""

    pan: float = 2.0
    tilt: float = 2.0
    zoom: float = 1.0


@attrs.frozen
class NavigateConfig:
    iterations: int = attrs.field(default=10, validator=ge(1))
    movements: int = attrs.field(default=10, validator=ge(1))
    # Probability of sampling from softmax(Q) instead of taking the argmax.
    exploration: float = attrs.field(default=0.2, validator=and_(ge(0), le(1)))
    modulation: Modulation = Modulation()
    # Who picks the moves after each round's random start: the agent (curiosity), a uniform draw
    # (random) or a boustrophedon raster of the largest moves (sweep); docs/experiments.md.
    policy: Literal["curiosity", "random", "sweep"] = "curiosity"
    sweep_row: int = attrs.field(default=4, validator=ge(1))  # pan moves per raster row
    seed: int = 0


@attrs.frozen
class MetricsConfig:
    """What a run measures about itself (docs/experiments.md): coverage cells, the held-out set
    rendered by the simulator after every cycle, and how often navigation grades its choice."""

    cell_pan_deg: float = attrs.field(default=30.0, validator=gt(0))
    cell_tilt_deg: float = attrs.field(default=15.0, validator=gt(0))
    cell_zoom_octaves: float = attrs.field(default=1.0, validator=gt(0))  # 1: zoom cells 1-2x, 2-4x, ...
    heldout_cases: int = attrs.field(default=32, validator=ge(0))  # 0: no held-out error
    heldout_rollout: int = attrs.field(default=3, validator=ge(1))  # moves of the k-step cases
    heldout_seed: int = 0
    choice_every: int = attrs.field(default=5, validator=ge(0))  # grade every k-th agent move; 0: never


@attrs.frozen
class StorageConfig:
    """Where everything is kept (any fsspec URL) and how much of it."""

    data: str = "./runs/sim"
    keep_images: bool = True
    track_positions: bool = True
    track_all: bool = True
    max_frames: int = attrs.field(default=0, validator=ge(0))  # 0: keep all
    max_bytes: int = attrs.field(default=0, validator=ge(0))  # 0: no byte budget
    keep_checkpoints: int = attrs.field(default=2, validator=ge(1))
    jpeg_quality: int = attrs.field(default=90, validator=and_(ge(10), le(100)))
    # The population of world models, shared with other nodes (any fsspec URL: a local or NFS
    # folder, s3://bucket/prefix, sftp://user@host/path); '' keeps it in `data` (docs/distributed.md).
    shared: str = ""
    # An S3-compatible server (MinIO, Ceph, ...) for s3:// URLs; '' is AWS. Keys come from
    # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the file named by AWS_SHARED_CREDENTIALS_FILE.
    s3_endpoint: str = ""
    # sftp://: the server's host key must be in this known_hosts file; the password is read from
    # `sftp_password_env` or `sftp_password_file`, or a private key file is used.
    sftp_known_hosts: str = "~/.ssh/known_hosts"
    sftp_key_file: str = ""
    sftp_password_env: str = "PTZJEPA_SFTP_PASSWORD"
    sftp_password_file: str = ""

    def shared_url(self) -> str:
        """Where the shared world models live: `shared`, or the node's own folder."""
        return self.shared or self.data

    def sftp_password(self) -> str:
        """The SFTP password, from the environment or the secrets file; '' if neither is set."""
        return read_secret(self.sftp_password_env, self.sftp_password_file)


# --- learning -------------------------------------------------------------------------------


@attrs.frozen
class MaskConfig:
    """I-JEPA multi-block masks, used only in the `train` (pretraining) mode."""

    enc_mask_scale: list[float] = attrs.field(factory=lambda: [0.85, 1.0], validator=_pair(0))
    pred_mask_scale: list[float] = attrs.field(factory=lambda: [0.15, 0.2], validator=_pair(0))
    aspect_ratio: list[float] = attrs.field(factory=lambda: [0.75, 1.5], validator=_pair(0))
    num_enc_masks: int = attrs.field(default=1, validator=ge(1))
    num_pred_masks: int = attrs.field(default=4, validator=ge(1))
    min_keep: int = attrs.field(default=10, validator=ge(1))
    allow_overlap: bool = False


@attrs.frozen
class WorldModelConfig:
    image_size: int = attrs.field(default=224, validator=ge(8))
    patch_size: int = attrs.field(default=14, validator=ge(1))
    encoder: TransformerSize = TransformerSize()
    predictor: TransformerSize = TransformerSize(width=384, depth=12, heads=6)
    batch_size: int = attrs.field(default=4, validator=ge(1))
    global_batch_size: int = attrs.field(default=32, validator=ge(1))
    epochs: int = attrs.field(default=100, validator=ge(1))
    lr: float = attrs.field(default=1e-4, validator=gt(0))
    start_lr: float = attrs.field(default=2e-6, validator=ge(0))
    final_lr: float = attrs.field(default=1e-6, validator=ge(0))
    warmup_epochs: float = attrs.field(default=5.0, validator=ge(0))
    weight_decay: float = attrs.field(default=0.04, validator=ge(0))
    final_weight_decay: float = attrs.field(default=0.4, validator=ge(0))
    ema: list[float] = attrs.field(factory=lambda: [0.8, 1.0], validator=_pair(0))
    ipe_scale: float = attrs.field(default=1.0, validator=gt(0))
    crop_scale: list[float] = attrs.field(factory=lambda: [0.98, 1.0], validator=_pair(0))
    reward_weight: float = attrs.field(default=1.0, validator=ge(0))
    patience: int = attrs.field(default=10, validator=ge(1))
    plateau_threshold: float = attrs.field(default=0.01, validator=ge(0))
    population: int = attrs.field(default=1, validator=ge(1))
    # Which model of the population a node trains next: `rotate` (a per-cycle rotation offset by
    # the node), `least_contributed` (the one this node has trained least), `random`.
    choose: Literal["rotate", "least_contributed", "random"] = "rotate"
    # Balancing: a node whose optimiser updates to a model exceed the mean of the other nodes'
    # by more than `balance_margin` (a fraction) trains that model only up to that bound.
    balance: bool = False
    balance_margin: float = attrs.field(default=0.25, validator=ge(0))
    init_from: Literal["scratch", "best"] = "best"
    max_train_frames: int = attrs.field(default=0, validator=ge(0))  # 0: all stored frames
    num_workers: int = attrs.field(default=2, validator=ge(0))  # threads decoding new frames
    # How much training a cycle does, in updates of global_batch_size frames (rounded up to whole
    # epochs); 0: `epochs` passes over every stored frame, which grows with the
    # store. Frames are drawn per update, the newest `recent_frames` together getting
    # `recent_share` of the chances (docs/training-budget.md says why these defaults).
    updates_per_cycle: int = attrs.field(default=200, validator=ge(0))
    recent_frames: int = attrs.field(default=256, validator=ge(0))
    recent_share: float = attrs.field(default=0.5, validator=and_(ge(0), le(1)))
    # A checkpoint at the stage's end, at a stop, and in between when this much time has passed
    # since the last one; 0: after every epoch.
    checkpoint_every_s: float = attrs.field(default=600.0, validator=ge(0))
    # auto: all micro-batches of an update in one batched pass on CUDA (as a CUDA graph when
    # cuda_graph), the micro-batch loop on a CPU (where a stop waits for one micro-batch only).
    update_path: Literal["auto", "batched", "micro_batches"] = "auto"
    cuda_graph: bool = True
    bfloat16: bool = True
    # torch.compile the three networks on CUDA for the pairs mode (a mode of torch.compile, or "off").
    # At a batch of 4 the eager step is bound by Python and kernel launches, and
    # "reduce-overhead" (CUDA graphs) is about 4x faster on an H100 (benchmarks/world_model.py);
    # compiling costs up to about 100 s per stage, and a new batch shape (the last batch of an
    # epoch) compiles once more: worth it for long stages only (docs/design-notes.md).
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    # Most pairs per predictor pass (0: all). Several passes per step cannot run under CUDA graphs:
    # a replay overwrites the outputs the earlier passes still hold for their backward.
    pair_chunk: int = attrs.field(default=0, validator=[ge(0), _one_pass_under_cuda_graphs])
    mask: MaskConfig = MaskConfig()
    seed: int = 0


@attrs.frozen
class DreamConfig:
    number_of_dreams: int = attrs.field(default=500, validator=ge(1))
    dream_length: int = attrs.field(default=10, validator=ge(1))
    chunk_size: int = attrs.field(default=500, validator=ge(1))
    # Dream states are stored average-pooled by this factor over the token grid, in float16:
    # at the sim config that is 64 tokens of 192 per state instead of 256 (135 MB per 500 dreams).
    state_pool: int = attrs.field(default=2, validator=ge(1))
    keep_sets: int = attrs.field(default=1, validator=ge(1))
    seed: int = 0


@attrs.frozen
class AgentConfig:
    net: TransformerSize = TransformerSize(width=192, depth=4, heads=3)
    reward: Literal["prediction_error", "reward_head", "delta_reward"] = "prediction_error"
    reward_norm: Literal["none", "standard"] = "standard"  # z-scores per dream set (docs/experiments.md)
    epochs: int = attrs.field(default=100, validator=ge(1))
    batch_size: int = attrs.field(default=64, validator=ge(1))
    lr: float = attrs.field(default=1e-4, validator=gt(0))
    start_lr: float = attrs.field(default=2e-6, validator=ge(0))
    final_lr: float = attrs.field(default=1e-6, validator=ge(0))
    warmup_epochs: float = attrs.field(default=5.0, validator=ge(0))
    weight_decay: float = attrs.field(default=0.04, validator=ge(0))
    gamma: float = attrs.field(default=0.99, validator=and_(ge(0), le(1)))
    tau: float = attrs.field(default=0.0005, validator=and_(gt(0), le(1)))
    replay_size: int = attrs.field(default=100_000, validator=ge(1))
    patience: int = attrs.field(default=10, validator=ge(1))
    plateau_threshold: float = attrs.field(default=0.001, validator=ge(0))
    population: int = attrs.field(default=1, validator=ge(1))
    seed: int = 0


# --- distributed mode, run and publishing ---------------------------------------------------


@attrs.frozen
class LocksConfig:
    kind: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    password_env: str = "PTZJEPA_REDIS_PASSWORD"
    password_file: str = ""
    lease_s: float = attrs.field(default=60.0, validator=gt(0))
    wait_s: float = attrs.field(default=600.0, validator=ge(0))

    def password(self) -> str:
        """The Redis password, from the environment or the secrets file; '' if neither is set."""
        return read_secret(self.password_env, self.password_file)


@attrs.frozen
class RunConfig:
    node: str = ""  # '' -> the host name
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    view_refresh_hz: float = attrs.field(default=4.0, validator=gt(0))
    # torch's CPU threads for the run; 0 leaves torch's default (OMP_NUM_THREADS, else the cores).
    threads: int = attrs.field(default=0, validator=ge(0))
    # Without the live view: a progress line (loss, images/s, eta) at the end of an epoch, and at
    # least this often during a long one.
    progress_every_s: float = attrs.field(default=30.0, validator=gt(0))


@attrs.frozen
class WaggleConfig:
    publish: bool = False


@attrs.frozen
class Config:
    camera: CameraConfig = CameraConfig()
    sim: SimConfig = SimConfig()
    capture: CaptureConfig = CaptureConfig()
    navigate: NavigateConfig = NavigateConfig()
    actions: list[Action] = attrs.field(factory=default_actions, validator=_nonempty)
    storage: StorageConfig = StorageConfig()
    world_model: WorldModelConfig = WorldModelConfig()
    dream: DreamConfig = DreamConfig()
    agent: AgentConfig = AgentConfig()
    locks: LocksConfig = LocksConfig()
    run: RunConfig = RunConfig()
    waggle: WaggleConfig = WaggleConfig()
    metrics: MetricsConfig = MetricsConfig()
