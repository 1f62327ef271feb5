"""Resampling motion to another frame rate: rotations by slerp, positions linearly.

Both take the source rate and the target rate; the output frames are at times
``k / fps_out`` for every ``k`` with ``k / fps_out <= (T - 1) / fps_in`` (up to a relative
1e-5, for rounded frame times; the clip is never extrapolated), so a clip keeps its start
time and loses at most one target frame period at the end.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def resample_times(num_frames: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Fractional source frame index of every output frame.

    num_frames: T source frames
    fps_in: source rate, Hz
    fps_out: target rate, Hz
    returns: (T',) float64 source indices in [0, T - 1]
    """
    if num_frames < 1:
        raise ValueError(f"num_frames: need at least one frame, got {num_frames}")
    if not fps_in > 0 or not fps_out > 0:
        raise ValueError(f"fps_in/fps_out: must be > 0, got {fps_in}/{fps_out}")
    duration = (num_frames - 1) / fps_in
    # relative slack: file frame times are rounded (BVH '0.0333333' is 30.00003 Hz)
    count = int(np.floor(duration * fps_out * (1.0 + 1e-5) + 1e-9)) + 1
    return np.minimum(np.arange(count) * (fps_in / fps_out), num_frames - 1)


def resample_positions(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear interpolation along time.

    x: (T, ...) positions (any trailing shape)
    returns: (T', ...) at ``fps_out``
    """
    x = np.asarray(x, dtype=np.float64)
    s = resample_times(x.shape[0], fps_in, fps_out)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[0] - 1)
    w = (s - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1.0 - w) * x[i0] + w * x[i1]


def _continuous_quats(q: np.ndarray) -> np.ndarray:
    """q: (T, N, 4) -> same with signs flipped so consecutive frames have q_t . q_{t-1} >= 0."""
    q = q.copy()
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t, flip] *= -1.0
    return q


def slerp_quats(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions along the shorter arc.

    q0, q1: (..., 4) unit quaternions (any component order, the same for both)
    w: (...) weights in [0, 1] (0 -> q0, 1 -> q1), broadcast against q0[..., 0]
    returns: (..., 4) unit quaternions
    """
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where((dot < 0)[..., None], -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin_t = np.sin(theta)
    small = sin_t < 1e-8
    safe = np.where(small, 1.0, sin_t)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / safe)
    b = np.where(small, w, np.sin(w * theta) / safe)
    q = a[..., None] * q0 + b[..., None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample_rotations(R: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Slerp between the two source frames around each output time.

    R: (T, ..., 3, 3) rotation matrices (any number of joints in the middle)
    returns: (T', ..., 3, 3)
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim < 3 or R.shape[-2:] != (3, 3):
        raise ValueError(f"R: expected (T, ..., 3, 3) rotation matrices, got shape {R.shape}")
    T, mid = R.shape[0], R.shape[1:-2]
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat().reshape(T, -1, 4)
    q = _continuous_quats(q)
    s = resample_times(T, fps_in, fps_out)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, T - 1)
    w = np.broadcast_to((s - i0)[:, None], (s.shape[0], q.shape[1]))
    out = slerp_quats(q[i0], q[i1], w)
    return Rotation.from_quat(out.reshape(-1, 4)).as_matrix().reshape((s.shape[0],) + mid + (3, 3))
