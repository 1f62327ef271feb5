"""Pinhole cameras from CameraInfo-style intrinsics, projection, undistortion and crops.

Image coordinates are pixels with the origin at the top-left pixel's centre convention of
OpenCV/ROS (``u = fx * x / z + cx``); 3D points are in the camera optical frame (x right,
y down, z forward), metres.

Distortion models follow ROS ``sensor_msgs/CameraInfo``: ``plumb_bob`` (k1, k2, t1, t2, k3)
and ``rational_polynomial`` (k1, k2, t1, t2, k3, k4, k5, k6), the same coefficient order as
OpenCV. Keypoints from a distorted camera are undistorted once (:meth:`PinholeCamera.undistort_points`)
and every later step (regression, guidance) uses the ideal pinhole :meth:`PinholeCamera.project`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "none": 0, "": 0}


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of one camera.

    K: (3, 3) intrinsic matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], pixels
    width, height: image size, pixels
    distortion_model: 'plumb_bob', 'rational_polynomial' or 'none'
    D: distortion coefficients in ROS/OpenCV order (zeros = no distortion)
    """

    K: np.ndarray
    width: int
    height: int
    distortion_model: str = "plumb_bob"
    D: tuple[float, ...] = field(default=(0.0, 0.0, 0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
        if not np.all(np.isfinite(K)):
            raise ValueError(f"K: must be finite, got {K.tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(np.linalg.det(K)) < 1e-9 or not np.allclose(K[2], [0, 0, 1]):
            raise ValueError(f"K: not a valid (non-singular, fx>0, fy>0, last row [0,0,1]) intrinsic matrix: {K.tolist()}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"width/height: must be positive, got {self.width}x{self.height}")
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f"distortion_model: unsupported {self.distortion_model!r}; use one of {sorted(DISTORTION_MODELS)}")
        D = tuple(float(d) for d in self.D)
        if self.distortion_model in ("none", ""):
            D = ()
        elif len(D) not in (0, DISTORTION_MODELS[self.distortion_model]):
            raise ValueError(f"D: {self.distortion_model} takes {DISTORTION_MODELS[self.distortion_model]} coefficients, got {len(D)}")
        K.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_camera_info(cls, msg) -> "PinholeCamera":
        """From a sensor_msgs/CameraInfo (rclpy or rosbags object): fields k, d, distortion_model, width, height."""
        return cls(
            K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
            width=int(msg.width),
            height=int(msg.height),
            distortion_model=str(msg.distortion_model) or "none",
            D=tuple(np.asarray(msg.d, dtype=np.float64).tolist()),
        )

    @classmethod
    def from_intrinsics(cls, fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> "PinholeCamera":
        """A distortion-free camera from focal lengths and principal point (pixels)."""
        return cls(K=np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), width=width, height=height,
                   distortion_model="none")

    @property
    def has_distortion(self) -> bool:
        return any(abs(d) > 0 for d in self.D)

    def K_tensor(self, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """(3, 3) K as a tensor."""
        return torch.tensor(self.K, dtype=dtype, device=device)

    # ------------------------------------------------------------------ projection
    def project(self, points: torch.Tensor | np.ndarray, min_depth: float = 1e-6):
        """Ideal pinhole projection (no distortion), differentiable for tensors.

        points: (..., 3) in the optical frame, metres
        returns: (..., 2) pixels; depths below ``min_depth`` are clamped (callers mask them)
        """
        return project_points(points, self.K if isinstance(points, np.ndarray) else self.K_tensor(points.dtype, points.device), min_depth)

    def project_distorted(self, points: np.ndarray) -> np.ndarray:
        """Projection with the lens distortion applied (as cv2.projectPoints), numpy.

        points: (..., 3) optical frame, metres -> (..., 2) pixels
        """
        points = np.asarray(points, dtype=np.float64)
        z = np.maximum(points[..., 2], 1e-9)
        x, y = points[..., 0] / z, points[..., 1] / z
        x, y = distort_normalized(x, y, self.D)
        fx, s, cx, fy, cy = self.K[0, 0], self.K[0, 1], self.K[0, 2], self.K[1, 1], self.K[1, 2]
        return np.stack((fx * x + s * y + cx, fy * y + cy), axis=-1)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Remove lens distortion from pixel coordinates (OpenCV's iterative inverse, run to convergence).

        uv: (..., 2) distorted pixels -> (..., 2) pixels of the ideal pinhole camera with the same K
        """
        uv = np.asarray(uv, dtype=np.float64)
        if not self.has_distortion or uv.size == 0:
            return uv.copy()
        flat = uv.reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
        if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4 names the criteria overload separately
            out = cv2.undistortPointsIter(flat, self.K, np.asarray(self.D), None, self.K, criteria)
        else:
            out = cv2.undistortPoints(flat, self.K, np.asarray(self.D), R=None, P=self.K, criteria=criteria)
        return out.reshape(uv.shape)

    def in_image(self, uv: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """uv: (..., 2) pixels -> (...,) bool, inside [margin, size - margin)."""
        uv = np.asarray(uv)
        return ((uv[..., 0] >= margin) & (uv[..., 0] < self.width - margin)
                & (uv[..., 1] >= margin) & (uv[..., 1] < self.height - margin))


def project_points(points, K, min_depth: float = 1e-6):
    """Pinhole projection ``u = K (X / Z)``.

    points: (..., 3) optical frame, metres (numpy or torch)
    K: (3, 3) or (..., 3, 3) intrinsics (same kind as points)
    returns: (..., 2) pixels
    """
    if isinstance(points, np.ndarray):
        z = np.maximum(points[..., 2:3], min_depth)
        xy = points[..., :2] / z
        return np.einsum("...ij,...j->...i", K[..., :2, :2], xy) + K[..., :2, 2]
    z = points[..., 2:3].clamp_min(min_depth)
    xy = points[..., :2] / z
    return torch.einsum("...ij,...j->...i", K[..., :2, :2], xy) + K[..., :2, 2]


def distort_normalized(x: np.ndarray, y: np.ndarray, D) -> tuple[np.ndarray, np.ndarray]:
    """Apply plumb_bob / rational_polynomial distortion to normalised coordinates (x/z, y/z)."""
    D = list(D) + [0.0] * (8 - len(D))
    k1, k2, p1, p2, k3, k4, k5, k6 = D
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


# ---------------------------------------------------------------------- crops and boxes
def keypoints_bbox(uv: np.ndarray, conf: np.ndarray, min_conf: float = 0.1) -> np.ndarray | None:
    """Tight box around the confident keypoints.

    uv: (K, 2) pixels; conf: (K,) in [0, 1]
    returns: (4,) (x_min, y_min, x_max, y_max) pixels, or None if no keypoint is confident
    """
    mask = np.asarray(conf) >= min_conf
    mask &= np.all(np.isfinite(uv), axis=-1)
    if not mask.any():
        return None
    pts = np.asarray(uv)[mask]
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


def square_box(bbox_xyxy: np.ndarray, scale: float = 1.2) -> tuple[np.ndarray, float]:
    """Square box around a box: (centre (2,), side length) in pixels, side = scale * max(w, h)."""
    b = np.asarray(bbox_xyxy, dtype=np.float64)
    centre = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    side = float(scale * max(b[2] - b[0], b[3] - b[1], 1.0))
    return centre, side


def crop_to_normalized(uv, centre, side):
    """Pixels -> crop-normalised coordinates in [-1, 1] of a square crop (centre (2,), side)."""
    return (uv - centre) * (2.0 / side)


def normalized_to_crop(uv_n, centre, side):
    """Inverse of :func:`crop_to_normalized`."""
    return uv_n * (side / 2.0) + centre


def weak_perspective_to_translation(scale, tx, ty, centre, side: float, K: np.ndarray) -> np.ndarray:
    """Weak-perspective crop camera (s, tx, ty) -> camera-frame translation of the full image.

    The crop model is ``u_n = s (X + t_wp)`` in crop-normalised coordinates
    (:func:`crop_to_normalized`); equating it with the pinhole ``u = fx (X + t) / t_z + cx``
    at depth t_z gives ``t_z = 2 fx / (side s)`` and ``t_xy = t_wp + (c_box - c) t_z / f``
    (exact for square pixels, fx = fy; otherwise the depth follows fx).
    scale, tx, ty: floats or (N,) arrays; centre: (2,) or (N, 2) box centre, pixels
    returns: (..., 3) translation, metres (optical frame)
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    centre = np.asarray(centre, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    tz = 2.0 * fx / (side * s)
    t_x = np.asarray(tx) + (centre[..., 0] - cx) * tz / fx
    t_y = np.asarray(ty) * (fx / fy) + (centre[..., 1] - cy) * tz / fy
    return np.stack(np.broadcast_arrays(t_x, t_y, tz), axis=-1)


def translation_to_weak_perspective(t: np.ndarray, centre, side: float, K: np.ndarray) -> np.ndarray:
    """Inverse of :func:`weak_perspective_to_translation`: (..., 3) -> (..., 3) (s, tx, ty)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    t = np.asarray(t, dtype=np.float64)
    centre = np.asarray(centre, dtype=np.float64)
    tz = t[..., 2]
    s = 2.0 * fx / (side * tz)
    tx = t[..., 0] - (centre[..., 0] - cx) * tz / fx
    ty = (t[..., 1] - (centre[..., 1] - cy) * tz / fy) * (fy / fx)
    return np.stack((s, tx, ty), axis=-1)
