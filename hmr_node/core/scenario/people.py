"""Placing people's motion clips in the robot's world so that the robot sees them walk by.

Each person plays one :class:`~hmr_node.core.data.motion.MotionClip` (already at the scenario
frame rate), rigidly moved on the floor: a yaw about the vertical and a horizontal offset.
The clip is placed so that at a random *crossing time* (20-80 % into the recording) its pelvis
is at a *crossing point* 2.5-7 m in front of the camera (true pose) at a bearing inside 70 % of
the half field of view, walking across the view (70 % of people, +-90 deg to the optical axis)
or along it (towards or away from the camera), +-30 deg. A clip shorter than the recording
starts and/or ends inside it; a longer one is cut to the recording.

Placements are drawn until one satisfies every rule (up to ``max_tries``; otherwise the least
violating one is kept and reported):

* while the pelvis projects inside the image, its horizontal distance to the camera is in
  [min_distance, max_distance] = [1.5, 8] m;
* nobody comes closer than ``robot_clearance`` = 1 m to the camera at any time;
* a person whose clip starts (ends) inside the recording does so outside the image: people
  enter and leave the view, they do not pop in or out of existence in it;
* the person is in view at least once;
* two people's pelvises never come closer than ``min_separation`` = 0.7 m.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL
from hmr_node.core.geometry.rotations import axis_angle_to_matrix


@dataclass(frozen=True)
class PeoplePlacementConfig:
    """Placement rules (see the module docstring).

    min_distance: smallest camera-pelvis horizontal distance while in view, metres.
    max_distance: largest camera-pelvis horizontal distance while in view, metres.
    crossing_near: nearest crossing point, metres.
    crossing_far: farthest crossing point, metres.
    bearing_fraction: crossing-point bearing as a fraction of the half horizontal FOV.
    across_prob: probability of walking across the view (else along the optical axis).
    heading_jitter_deg: uniform jitter of the walking direction, degrees.
    robot_clearance: nobody comes closer to the camera than this, metres.
    min_separation: smallest distance between two people's pelvises, metres.
    max_tries: placements drawn per person before keeping the least violating one.
    loop_short_clips: clips shorter than the recording are lengthened by looping their best
        cycle (:mod:`hmr_node.core.scenario.looping`) so that people keep walking instead of
        appearing and vanishing; False plays them once.
    """

    min_distance: float = 1.5
    max_distance: float = 8.0
    crossing_near: float = 2.5
    crossing_far: float = 7.0
    bearing_fraction: float = 0.7
    across_prob: float = 0.7
    heading_jitter_deg: float = 30.0
    robot_clearance: float = 1.0
    min_separation: float = 0.7
    max_tries: int = 60
    loop_short_clips: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.loop_short_clips, bool):
            raise ValueError("PeoplePlacementConfig.loop_short_clips must be a bool, got "
                             f"{self.loop_short_clips!r}")
        for f in fields(self):
            if f.name == "loop_short_clips":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"PeoplePlacementConfig.{f.name} must be a finite number >= 0, "
                                 f"got {value!r}")
        if not self.min_distance < self.max_distance:
            raise ValueError(f"PeoplePlacementConfig.min_distance ({self.min_distance}) must be "
                             f"< max_distance ({self.max_distance})")
        if not self.crossing_near <= self.crossing_far:
            raise ValueError(f"PeoplePlacementConfig.crossing_near ({self.crossing_near}) must be "
                             f"<= crossing_far ({self.crossing_far})")
        if self.across_prob > 1 or self.bearing_fraction > 1:
            raise ValueError("PeoplePlacementConfig.across_prob and bearing_fraction must be "
                             f"in [0, 1], got {self.across_prob}, {self.bearing_fraction}")
        if int(self.max_tries) < 1:
            raise ValueError(f"PeoplePlacementConfig.max_tries must be >= 1, got {self.max_tries}")


@dataclass(frozen=True)
class Placement:
    """Where and when one clip plays.

    clip_offset: scenario frame k shows clip frame k + clip_offset (active where in range).
    yaw: rotation about the world z axis applied after R_ZUP_FROM_SMPL, radians.
    translation: (3,) world translation (z = 0: the clip's floor is the world floor), metres.
    violation: 0 when every placement rule holds, else a positive badness score.
    tries: placements drawn.
    """

    clip_offset: int
    yaw: float
    translation: np.ndarray
    violation: float
    tries: int

    def rotation(self) -> np.ndarray:
        """(3, 3) R_world_from_smpl = Rz(yaw) @ R_ZUP_FROM_SMPL."""
        return rot_z(self.yaw) @ R_ZUP_FROM_SMPL

    def active(self, num_frames: int, clip_frames: int) -> np.ndarray:
        """(T,) bool: frames in which the clip plays."""
        k = np.arange(num_frames) + self.clip_offset
        return (k >= 0) & (k < clip_frames)


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def clip_heading(pelvis_world: np.ndarray, global_orient: np.ndarray, k: int, fps: float) -> float:
    """Walking direction (yaw, radians) of a clip around frame k, after R_ZUP_FROM_SMPL.

    pelvis_world: (L, 3) pelvis positions already rotated into the z-up frame.
    global_orient: (L, 3) axis-angle root rotations in SMPL's y-up frame.
    k: frame index.
    fps: clip rate, Hz.
    Uses the pelvis displacement over +-0.5 s; a clip that moves less than 0.2 m there uses the
    body's facing direction instead.
    """
    L = pelvis_world.shape[0]
    h = max(1, int(round(0.5 * fps)))
    d = pelvis_world[min(L - 1, k + h), :2] - pelvis_world[max(0, k - h), :2]
    if np.linalg.norm(d) < 0.2:
        R = axis_angle_to_matrix(torch.as_tensor(global_orient[k], dtype=torch.float64))
        d = (R_ZUP_FROM_SMPL @ R.numpy() @ np.array([0.0, 0.0, 1.0]))[:2]
    return math.atan2(d[1], d[0])


def place_people(pelvis_smpl: list[np.ndarray], global_orients: list[np.ndarray], fps: float,
                 camera_R: np.ndarray, camera_t: np.ndarray, camera: PinholeCamera,
                 rng: np.random.Generator, config: PeoplePlacementConfig) -> list[Placement]:
    """Place every clip (see the module docstring for the rules).

    pelvis_smpl: per person, (L_p, 3) pelvis joint positions of the clip in SMPL's y-up
        world (``transl + J0(betas)``), metres.
    global_orients: per person, (L_p, 3) axis-angle root rotations of the clip.
    fps: frame rate of the clips and the recording, Hz.
    camera_R: (T, 3, 3) true R_world_from_optical of the camera per frame.
    camera_t: (T, 3) true camera position in the world per frame, metres.
    camera: intrinsics, to decide what is in view.
    rng: random generator.
    config: placement rules.
    Returns one :class:`Placement` per person, in order (later people avoid earlier ones).
    """
    T = camera_R.shape[0]
    fx = camera.K[0, 0]
    half_fov = math.atan2(0.5 * camera.width, fx)
    forward = camera_R[:, :, 2]
    view_yaw = np.arctan2(forward[:, 1], forward[:, 0])
    placed: list[tuple[np.ndarray, np.ndarray]] = []  # (active (T,), pelvis world (T, 3))
    out = []
    for p, (pel, go) in enumerate(zip(pelvis_smpl, global_orients)):
        L = pel.shape[0]
        pel_z = pel @ R_ZUP_FROM_SMPL.T
        best = None
        for attempt in range(1, int(config.max_tries) + 1):
            tc = int(rng.integers(int(0.2 * (T - 1)), int(0.8 * (T - 1)) + 1))
            if L >= T:
                offset = int(rng.integers(0, L - T + 1))
            else:
                offset = -int(rng.integers(max(0, tc - L + 1), tc + 1))
            kc = tc + offset
            heading = clip_heading(pel_z, go, kc, fps)
            dist = rng.uniform(config.crossing_near, config.crossing_far)
            bearing = rng.uniform(-1.0, 1.0) * config.bearing_fraction * half_fov
            across = rng.random() < config.across_prob
            side = math.pi * float(rng.integers(0, 2))
            jitter = math.radians(config.heading_jitter_deg) * rng.uniform(-1.0, 1.0)
            direction = view_yaw[tc] + (0.5 * math.pi if across else 0.0) + side + jitter
            q = camera_t[tc, :2] + dist * np.array([math.cos(view_yaw[tc] + bearing),
                                                   math.sin(view_yaw[tc] + bearing)])
            yaw = direction - heading
            Rz = rot_z(yaw)
            t = np.zeros(3)
            t[:2] = q - (Rz @ pel_z[kc])[:2]
            cand = Placement(offset, float(yaw), t, 0.0, attempt)
            active = cand.active(T, L)
            pelvis = np.full((T, 3), np.nan)
            k = np.flatnonzero(active)
            pelvis[k] = pel_z[k + offset] @ Rz.T + t
            bad = _violation(pelvis, active, placed, camera_R, camera_t, camera, config)
            if best is None or bad < best.violation:
                best = Placement(offset, float(yaw), t, bad, attempt)
                best_track = (active, pelvis)
            if bad == 0.0:
                break
        out.append(Placement(best.clip_offset, best.yaw, best.translation, best.violation,
                             attempt))
        placed.append(best_track)
    return out


def _violation(pelvis: np.ndarray, active: np.ndarray, placed, camera_R: np.ndarray,
               camera_t: np.ndarray, camera: PinholeCamera,
               config: PeoplePlacementConfig) -> float:
    k = np.flatnonzero(active)
    if k.size == 0:
        return 1e6
    rel = pelvis[k] - camera_t[k]
    p_cam = np.einsum("kji,kj->ki", camera_R[k], rel)  # R^T (p - t)
    in_front = p_cam[:, 2] > 0.3
    uv = camera.project(np.where(in_front[:, None], p_cam, 1.0))
    in_view = in_front & camera.in_image(uv)
    d = np.linalg.norm(rel[:, :2], axis=1)
    bad = 0.0
    dv = d[in_view]
    bad += float(np.sum(np.maximum(0.0, config.min_distance - dv))
                 + np.sum(np.maximum(0.0, dv - config.max_distance)))
    bad += 10.0 * max(0.0, config.robot_clearance - float(d.min()))
    T = active.shape[0]
    if k[0] > 0 and in_view[0]:
        bad += 5.0
    if k[-1] < T - 1 and in_view[-1]:
        bad += 5.0
    if not in_view.any():
        bad += 20.0
    for other_active, other_pelvis in placed:
        both = active & other_active
        if both.any():
            sep = np.linalg.norm(pelvis[both, :2] - other_pelvis[both, :2], axis=1)
            bad += 10.0 * max(0.0, config.min_separation - float(sep.min()))
    return bad
