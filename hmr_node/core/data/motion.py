"""The motion clip: SMPL parameters over time, the currency between data sources and consumers.

Readers (CMU, BVH, AMASS), the procedural generator and mirroring produce ``MotionClip``s;
the scenario writer and the training datasets consume them.

Frame: SMPL's canonical y-up world (y up, floor at y = 0), metres; the horizontal heading of
a clip is whatever the source recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MotionClip:
    """One person's motion at a fixed rate.

    name: unique clip name, e.g. 'cmu/walking_1' or 'synthetic/walk_seed3'
    fps: frames per second
    global_orient: (T, 3) axis-angle root rotation in the y-up world
    body_pose: (T, 23, 3) axis-angle parent-relative rotations
    transl: (T, 3) SMPL transl in the y-up world, metres
    betas: (10,) shape coefficients of the body model the clip was made for
    source: 'cmu', 'bvh', 'amass' or 'synthetic'
    synthetic: True for procedurally generated motion (labelled as such wherever it goes)
    attribution: licence/attribution text that must travel with the data
    """

    name: str
    fps: float
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10))
    source: str = "synthetic"
    synthetic: bool = True
    attribution: str = ""

    def __post_init__(self) -> None:
        T = np.asarray(self.global_orient).shape[0]
        checks = {"global_orient": (T, 3), "body_pose": (T, 23, 3), "transl": (T, 3)}
        for key, shape in checks.items():
            if np.asarray(getattr(self, key)).shape != shape:
                raise ValueError(f"{key}: expected shape {shape}, got {np.asarray(getattr(self, key)).shape} (clip {self.name!r})")
        if not self.fps > 0:
            raise ValueError(f"fps: must be > 0, got {self.fps} (clip {self.name!r})")

    @property
    def num_frames(self) -> int:
        return int(np.asarray(self.global_orient).shape[0])

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps
