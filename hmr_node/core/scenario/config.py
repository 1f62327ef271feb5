"""``ScenarioConfig``: every option of ``hmr scenario make``, with its default, validated.

The CLI flags map 1:1 onto the top-level fields (``--kp-noise`` -> ``kp_noise``, ``--motion`` ->
``motion``, ``--render/--no-render`` -> ``render``, ``--body-model`` -> ``body_model``). The three
multipliers ``odom_drift``, ``kp_noise`` and ``occlusion`` scale the default noise models of the
nested configs (their own ``scale`` fields multiply in); 0 turns that effect off.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from hmr_node.core.scenario.camera_rig import CameraRigConfig
from hmr_node.core.scenario.keypoint_noise import KeypointNoiseConfig
from hmr_node.core.scenario.occlusion import OcclusionConfig
from hmr_node.core.scenario.odometry import OdometryConfig
from hmr_node.core.scenario.people import PeoplePlacementConfig
from hmr_node.core.scenario.render import RenderConfig

STORAGES = ("mcap", "sqlite3")
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class ScenarioConfig:
    """One synthetic recording.

    seed: master random seed; the same seed (and config) gives the same messages.
    people: number of people (each plays one motion clip); 0 = an empty scene.
    frames: number of camera frames.
    fps: camera (and odometry) rate, Hz.
    storage: rosbag2 storage plugin, 'mcap' or 'sqlite3'.
    motion: motion names for the people (person p plays motion[p % len]); empty = drawn from
        the ``split`` with the seed.
    split: motion split to draw from when ``motion`` is empty, 'train' or 'eval'.
    render: write /camera/image_raw with the rendered bodies.
    odom_drift: multiplier on the odometry drift and noise model (0 = perfect odometry).
    kp_noise: multiplier on the 2D keypoint noise model (0 = exact projections).
    occlusion: multiplier on the occluder capsule radii (0 = nobody occludes anybody).
    body_model: SMPL-format body file or directory (None = the shipped default body).
    id_switch_prob: per-person, per-frame probability that the simulated tracker gives the
        person a new keypoint track id.
    start_time: stamp of the first frame, seconds since the epoch (fixed, for reproducibility).
    odom_frame: world frame of odometry and world ground truth.
    base_frame: robot base frame.
    camera_frame: camera optical frame.
    camera: intrinsics and mount.
    odometry: robot path and odometry noise model.
    keypoint_noise: 2D detector noise model.
    occlusion_model: occlusion between people.
    placement: where people walk.
    render_style: lighting and background of the rendered images.
    """

    seed: int = 0
    people: int = 2
    frames: int = 150
    fps: float = 15.0
    storage: str = "mcap"
    motion: tuple[str, ...] = ()
    split: str = "train"
    render: bool = True
    odom_drift: float = 1.0
    kp_noise: float = 1.0
    occlusion: float = 1.0
    body_model: str | None = None
    id_switch_prob: float = 0.0
    start_time: float = 1_700_000_000.0
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    camera_frame: str = "camera_optical_frame"
    camera: CameraRigConfig = field(default_factory=CameraRigConfig)
    odometry: OdometryConfig = field(default_factory=OdometryConfig)
    keypoint_noise: KeypointNoiseConfig = field(default_factory=KeypointNoiseConfig)
    occlusion_model: OcclusionConfig = field(default_factory=OcclusionConfig)
    placement: PeoplePlacementConfig = field(default_factory=PeoplePlacementConfig)
    render_style: RenderConfig = field(default_factory=RenderConfig)

    def __post_init__(self) -> None:
        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not is_int(self.people) or self.people < 0:
            raise ValueError(f"people must be an integer >= 0, got {self.people!r}")
        if not is_int(self.frames) or self.frames <= 0:
            raise ValueError(f"frames must be an integer > 0, got {self.frames!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) \
                or not math.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a finite number > 0, got {self.fps!r}")
        if self.fps > 1000:
            raise ValueError(f"fps must be <= 1000, got {self.fps!r}")
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {self.storage!r}")
        if isinstance(self.motion, str) or not all(isinstance(m, str) and m for m in self.motion):
            raise ValueError(f"motion must be a tuple of non-empty names, got {self.motion!r}")
        object.__setattr__(self, "motion", tuple(self.motion))
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not isinstance(self.render, bool):
            raise ValueError(f"render must be a bool, got {self.render!r}")
        for name in ("odom_drift", "kp_noise", "occlusion"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0 (a multiplier; 0 = off), "
                                 f"got {value!r}")
        if not 0.0 <= self.id_switch_prob <= 1.0:
            raise ValueError(f"id_switch_prob must be in [0, 1], got {self.id_switch_prob!r}")
        if self.body_model is not None and (not isinstance(self.body_model, str)
                                            or not self.body_model):
            raise ValueError(f"body_model must be a path or None, got {self.body_model!r}")
        if not math.isfinite(self.start_time) or self.start_time < 0:
            raise ValueError(f"start_time must be >= 0 seconds, got {self.start_time!r}")
        names = (self.odom_frame, self.base_frame, self.camera_frame)
        for key, name in zip(("odom_frame", "base_frame", "camera_frame"), names):
            if not isinstance(name, str) or not name or name.startswith("/") or " " in name:
                raise ValueError(f"{key} must be a non-empty TF frame name without '/' prefix "
                                 f"or spaces, got {name!r}")
        if len(set(names)) != 3:
            raise ValueError(f"odom_frame, base_frame and camera_frame must differ, got {names}")
        for key, cls in (("camera", CameraRigConfig), ("odometry", OdometryConfig),
                         ("keypoint_noise", KeypointNoiseConfig),
                         ("occlusion_model", OcclusionConfig),
                         ("placement", PeoplePlacementConfig), ("render_style", RenderConfig)):
            if not isinstance(getattr(self, key), cls):
                raise TypeError(f"{key} must be a {cls.__name__}, got "
                                f"{type(getattr(self, key)).__name__}")

    @property
    def duration(self) -> float:
        """Length of the recording, seconds."""
        return self.frames / self.fps
