"""Synchronised multi-view observations of one person (for multi-view refinement, Eq. 13).

N cameras stand around the person at head-ish height, each looking at the pelvis, at
azimuths spread over the circle with random jitter, at random distances. Each view gets its
own ground truth in its optical frame and its own simulated detections (the scenario's 2D
noise model, :func:`hmr_node.core.scenario.keypoint_noise.corrupt_keypoints`).

World frame here: odom-like, z up (the same convention as SimulatedPerson.world_*).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmr_node.core.body.model import BodyModel
from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.frames import transform_smpl_root
from hmr_node.core.scenario.keypoint_noise import KeypointNoiseConfig, corrupt_keypoints


@dataclass(frozen=True)
class MultiViewConfig:
    """num_views: cameras per person; distance_m: (min, max) camera-pelvis distance, metres;
    height_m: camera height above the floor, metres; azimuth_jitter_deg: random offset of
    each camera from an even spread, degrees; noise: the 2D detector model."""

    num_views: int = 3
    distance_m: tuple[float, float] = (2.5, 7.0)
    height_m: float = 1.35
    azimuth_jitter_deg: float = 20.0
    noise: KeypointNoiseConfig = field(default_factory=KeypointNoiseConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.num_views, int) or self.num_views < 1:
            raise ValueError(f"num_views: expected an int >= 1, got {self.num_views!r}")
        lo, hi = self.distance_m
        if not 0.5 <= lo <= hi:
            raise ValueError(f"distance_m: expected 0.5 <= min <= max, got {self.distance_m}")


@dataclass
class MultiViewSample:
    """N views of B people (view-major arrays).

    global_orient: (N, B, 3, 3) ground-truth root rotation in each view's optical frame
    transl: (N, B, 3) ground-truth SMPL transl in each view's optical frame, metres
    body_pose: (B, 23, 3, 3) ground-truth body pose (the same in every view)
    betas: (B, S)
    uv: (N, B, 17, 2) simulated detections, pixels; conf: (N, B, 17)
    K: (3, 3) intrinsics shared by the views; image_size: (width, height)
    """

    global_orient: np.ndarray
    transl: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    uv: np.ndarray
    conf: np.ndarray
    K: np.ndarray
    image_size: tuple[int, int]


def look_at_optical(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """R_world_from_optical of a camera at ``eye`` looking at ``target`` (z-up world, no roll).

    eye, target: (3,) world points, metres -> (3, 3) whose columns are the optical x (right),
    y (down) and z (forward) axes in the world.
    """
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.array([0.0, 0.0, 1.0]))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("eye/target: the viewing direction is vertical; no roll-free camera")
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack((x, y, z), axis=1)


def simulate_multiview(body: BodyModel, world_orient: np.ndarray, body_pose: np.ndarray, world_transl: np.ndarray,
                       betas: np.ndarray, camera: PinholeCamera, rng: np.random.Generator,
                       config: MultiViewConfig = MultiViewConfig()) -> MultiViewSample:
    """Place ``config.num_views`` cameras around each person and simulate what each sees.

    world_orient: (B, 3, 3) root rotation in the z-up world; body_pose: (B, 23, 3, 3)
    world_transl: (B, 3) SMPL transl in the world, metres; betas: (B, S)
    camera: intrinsics shared by every view; rng: the random stream
    """
    B, N = world_orient.shape[0], config.num_views
    dt = body.J_template.dtype
    tb = torch.as_tensor(betas, dtype=dt)
    pelvis_rest = body.rest_joints(tb)[:, 0].numpy()
    pelvis = world_transl + pelvis_rest  # zero-pose pelvis offset: J0 + transl, rotation about J0
    go = np.zeros((N, B, 3, 3))
    tr = np.zeros((N, B, 3))
    for b in range(B):
        base = rng.uniform(0, 2 * np.pi)
        for n in range(N):
            az = base + 2 * np.pi * n / N + np.radians(rng.uniform(-1, 1) * config.azimuth_jitter_deg)
            d = rng.uniform(*config.distance_m)
            eye = pelvis[b] + d * np.array([np.cos(az), np.sin(az), 0.0])
            eye[2] = config.height_m
            R_wo = look_at_optical(eye, pelvis[b])
            R_ow = R_wo.T
            g, t = transform_smpl_root(torch.as_tensor(R_ow), torch.as_tensor(-R_ow @ eye),
                                       torch.as_tensor(world_orient[b]), torch.as_tensor(world_transl[b]),
                                       torch.as_tensor(pelvis_rest[b]))
            go[n, b], tr[n, b] = g.numpy(), t.numpy()
    with torch.no_grad():
        kp = body.keypoints(tb.repeat(N, 1), torch.as_tensor(go.reshape(N * B, 3, 3), dtype=dt),
                            torch.as_tensor(np.tile(body_pose, (N, 1, 1, 1)), dtype=dt),
                            torch.as_tensor(tr.reshape(N * B, 3), dtype=dt)).numpy()
    uv_true = camera.project(kp)
    visible = (kp[..., 2] > 0.1) & camera.in_image(uv_true)
    uv, conf = corrupt_keypoints(uv_true, visible, (camera.width, camera.height), rng, config.noise)
    return MultiViewSample(go, tr, np.asarray(body_pose), np.asarray(betas), uv.reshape(N, B, 17, 2),
                           conf.reshape(N, B, 17), np.asarray(camera.K), (camera.width, camera.height))
