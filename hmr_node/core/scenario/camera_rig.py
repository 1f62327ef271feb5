"""The simulated robot camera: pinhole intrinsics and its mount on ``base_link``.

Defaults describe a typical mobile-robot RGB camera: 640 x 480 pixels, 65 degrees horizontal
field of view (fx = fy = 320 / tan(32.5 deg) = 502.3 px, vertical FOV 51 deg), no lens
distortion, mounted 1.35 m above the floor and 0.20 m ahead of ``base_link``, pitched 8 degrees
down. ``base_link`` follows REP-103 (x forward, y left, z up, on the floor); the camera is
published as an *optical* frame (x right, y down, z forward).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.frames import R_CAMBODY_FROM_OPTICAL


@dataclass(frozen=True)
class CameraRigConfig:
    """Camera intrinsics and mount.

    width: image width, pixels.
    height: image height, pixels.
    hfov_deg: horizontal field of view, degrees (square pixels, principal point at the centre).
    mount_x: camera position ahead of base_link, metres.
    mount_y: camera position left of base_link, metres.
    mount_z: camera height above the floor (base_link is on the floor), metres.
    pitch_deg: downward tilt of the optical axis, degrees (positive = looking down).
    """

    width: int = 640
    height: int = 480
    hfov_deg: float = 65.0
    mount_x: float = 0.20
    mount_y: float = 0.0
    mount_z: float = 1.35
    pitch_deg: float = 8.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 16:
                raise ValueError(f"CameraRigConfig.{name} must be an int >= 16, got {value!r}")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"CameraRigConfig.hfov_deg must be in [10, 150], got {self.hfov_deg!r}")
        if not 0.2 <= self.mount_z <= 3.0:
            raise ValueError(f"CameraRigConfig.mount_z must be in [0.2, 3] m, got {self.mount_z!r}")
        if not -45.0 <= self.pitch_deg <= 45.0:
            raise ValueError(f"CameraRigConfig.pitch_deg must be in [-45, 45], got {self.pitch_deg!r}")


def make_camera(config: CameraRigConfig) -> PinholeCamera:
    """The ideal (distortion-free) pinhole camera of the rig."""
    f = 0.5 * config.width / math.tan(math.radians(config.hfov_deg) / 2)
    return PinholeCamera(K=np.array([[f, 0.0, config.width / 2], [0.0, f, config.height / 2],
                                     [0.0, 0.0, 1.0]]),
                         width=config.width, height=config.height, distortion_model="plumb_bob",
                         D=(0.0, 0.0, 0.0, 0.0, 0.0))


def base_from_optical(config: CameraRigConfig) -> tuple[np.ndarray, np.ndarray]:
    """Static pose of the camera optical frame in base_link.

    Returns ``R`` (3, 3) = R_base_from_optical and ``t`` (3,) optical origin in base_link,
    metres, so that ``X_base = R @ X_optical + t``.
    """
    p = math.radians(config.pitch_deg)
    # rotation about base y by +pitch tilts the forward axis x down towards -z
    R_pitch = np.array([[math.cos(p), 0.0, math.sin(p)], [0.0, 1.0, 0.0],
                        [-math.sin(p), 0.0, math.cos(p)]])
    return R_pitch @ R_CAMBODY_FROM_OPTICAL, np.array([config.mount_x, config.mount_y,
                                                        config.mount_z])
