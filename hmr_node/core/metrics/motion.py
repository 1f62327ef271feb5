"""Temporal quality of a motion: acceleration error, jitter, foot sliding.

Joints are ``(..., T, J, 3)`` in metres, T frames at a constant rate ``fps`` (Hz). Finite
differences are taken along T:

* second difference ``a_t = x_{t+1} − 2 x_t + x_{t−1}`` (m/frame², × fps² → m/s²),
* third difference ``j_t = x_{t+3} − 3 x_{t+2} + 3 x_{t+1} − x_t`` (× fps³ → m/s³).

Per-frame metrics return one value per valid frame, ``(..., T−2)`` or ``(..., T−3)``, so that
means over several sequences weigh every frame equally; take ``.mean()`` for one number.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hmr_node.core.metrics._array import (
    as_float_tensors,
    check_indices,
    check_points,
    check_positive,
    check_same_shape,
    restore_kind,
)

M_TO_MM = 1000.0
_MOTION = "(..., T, J, 3)"

# SMPL-24 left_ankle, right_ankle, left_foot, right_foot
DEFAULT_FOOT_JOINTS: tuple[int, ...] = (7, 8, 10, 11)


def _check_motion(name: str, value: torch.Tensor, min_frames: int) -> None:
    check_points(name, value, _MOTION, min_ndim=3)
    if value.shape[-3] < min_frames:
        raise ValueError(f"{name} must have at least {min_frames} frames (axis -3 of "
                         f"{_MOTION}), got shape {tuple(value.shape)}")


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    """(..., T, J, 3) → (..., T−2, J, 3): x[t+1] − 2 x[t] + x[t−1]."""
    return x[..., 2:, :, :] - 2.0 * x[..., 1:-1, :, :] + x[..., :-2, :, :]


def _third_difference(x: torch.Tensor) -> torch.Tensor:
    """(..., T, J, 3) → (..., T−3, J, 3): x[t+3] − 3 x[t+2] + 3 x[t+1] − x[t]."""
    return (x[..., 3:, :, :] - 3.0 * x[..., 2:-1, :, :] + 3.0 * x[..., 1:-2, :, :]
            - x[..., :-3, :, :])


def accel_error(pred, gt, fps: float | None = None):
    """Acceleration error: mean over joints of ``|| a_pred − a_gt ||`` per frame.

    The convention of the HMR literature (HMMR/VIBE; 3DPW and EMDB tables): with ``fps``
    None the result is in **mm/frame²**; with ``fps`` given it is in **m/s²**
    (``× fps² / 1000``).

    Args:
        pred: (T, J, 3) or (B, T, J, 3) predicted joints, metres; T ≥ 3.
        gt: ground-truth joints, same shape.
        fps: frame rate in Hz, or None for per-frame units.

    Returns:
        (..., T−2) per-frame error for frames 1..T−2, mm/frame² (fps None) or m/s².
    """
    (p, g), is_torch = as_float_tensors(("pred", pred), ("gt", gt))
    _check_motion("pred", p, 3)
    _check_motion("gt", g, 3)
    check_same_shape("pred", p, "gt", g)
    error = torch.linalg.vector_norm(_second_difference(p - g), dim=-1).mean(dim=-1)
    if fps is None:
        error = error * M_TO_MM
    else:
        error = error * check_positive("fps", fps) ** 2
    return restore_kind(error, is_torch)


def jitter(joints, fps: float):
    """Jitter: mean over joints of the jerk magnitude ``|| d³x/dt³ ||``, in **m/s³**.

    The definition of GLAMR (Yuan et al., CVPR 2022) as used by WHAM and GVHMR: third
    finite difference × fps³, norm per joint, mean over joints. Their tables print it in
    units of 10 m/s³, i.e. this value / 10.

    Args:
        joints: (..., T, J, 3) joints, metres; T ≥ 4.
        fps: frame rate in Hz.

    Returns:
        (..., T−3) per-frame jerk magnitude, m/s³.
    """
    (x,), is_torch = as_float_tensors(("joints", joints))
    _check_motion("joints", x, 4)
    rate = check_positive("fps", fps)
    jerk = torch.linalg.vector_norm(_third_difference(x), dim=-1).mean(dim=-1) * rate ** 3
    return restore_kind(jerk, is_torch)


def _up_vector(up_axis, dtype: torch.dtype, device) -> torch.Tensor:
    if isinstance(up_axis, (int, np.integer)) and not isinstance(up_axis, bool):
        if int(up_axis) not in (0, 1, 2):
            raise ValueError(f"up_axis must be 0, 1, 2 or a 3-vector, got {up_axis!r}")
        up = torch.zeros(3, dtype=dtype, device=device)
        up[int(up_axis)] = 1.0
        return up
    try:
        up = torch.as_tensor(np.asarray(up_axis, dtype=np.float64), dtype=dtype, device=device)
    except (TypeError, ValueError) as error:
        raise ValueError(f"up_axis must be 0, 1, 2 or a 3-vector, got {up_axis!r}") from error
    norm = float(torch.linalg.vector_norm(up)) if up.shape == (3,) else 0.0
    if up.shape != (3,) or not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"up_axis must be 0, 1, 2 or a non-zero 3-vector, got {up_axis!r}")
    return up / norm


def _foot_kinematics(x: torch.Tensor, fps: float, foot_idx: Sequence[int], up_axis,
                     contact_height: float, contact_vertical_speed: float):
    """Contact mask and horizontal speed of each foot joint between consecutive frames.

    Returns:
        contact: (..., T−1, F) bool, horizontal_speed: (..., T−1, F) m/s.
    """
    index = check_indices("foot_idx", foot_idx, x.shape[-2])
    feet = x[..., index, :]                                   # (..., T, F, 3)
    up = _up_vector(up_axis, x.dtype, x.device)
    height = feet @ up                                        # (..., T, F)
    floor = height.min(dim=-2, keepdim=True).values           # lowest height of each joint
    low = (height - floor) <= contact_height                  # (..., T, F)
    step = feet[..., 1:, :, :] - feet[..., :-1, :, :]         # (..., T−1, F, 3)
    vertical = step @ up                                      # (..., T−1, F)
    horizontal = step - vertical[..., None] * up
    contact = (low[..., 1:, :] & low[..., :-1, :]
               & (vertical.abs() * fps <= contact_vertical_speed))
    speed = torch.linalg.vector_norm(horizontal, dim=-1) * fps
    return contact, speed


def _check_foot_args(joints, fps, contact_height, contact_vertical_speed):
    (x,), is_torch = as_float_tensors(("joints", joints))
    _check_motion("joints", x, 2)
    rate = check_positive("fps", fps)
    height = check_positive("contact_height", contact_height)
    speed = check_positive("contact_vertical_speed", contact_vertical_speed)
    return x, is_torch, rate, height, speed


def foot_contacts(joints, fps: float, foot_idx: Sequence[int] = DEFAULT_FOOT_JOINTS,
                  up_axis: int | Sequence[float] = 2, contact_height: float = 0.05,
                  contact_vertical_speed: float = 0.1):
    """Which foot joints are planted between consecutive frames (see :func:`foot_sliding`).

    Args:
        joints: (..., T, J, 3) joints, metres; T ≥ 2.
        fps: frame rate in Hz.
        foot_idx: indices (into J) of the foot joints; default SMPL-24 ankles and feet.
        up_axis: 0, 1 or 2 for +x/+y/+z up, or an up 3-vector; 2 for ``odom`` (z-up), 1 for
            SMPL's canonical frame (y-up), ``(0, -1, 0)`` for the camera optical frame.
        contact_height: a joint may be in contact while within this many metres of its
            own lowest height over the sequence.
        contact_vertical_speed: ... and while moving up/down slower than this, m/s.

    Returns:
        (..., T−1, F) bool, True where foot joint f is in contact from frame t to t+1.
    """
    x, is_torch, rate, height, speed = _check_foot_args(
        joints, fps, contact_height, contact_vertical_speed)
    contact, _ = _foot_kinematics(x, rate, foot_idx, up_axis, height, speed)
    return restore_kind(contact, is_torch)


def foot_sliding(joints, fps: float, foot_idx: Sequence[int] = DEFAULT_FOOT_JOINTS,
                 up_axis: int | Sequence[float] = 2, contact_height: float = 0.05,
                 contact_vertical_speed: float = 0.1):
    """Foot sliding: mean horizontal speed of the foot joints while in contact, in **m/s**.

    Contact is detected from the motion itself (no ground-truth labels): a foot joint is in
    contact from frame t to t+1 when its height above its own lowest height in the sequence
    is ≤ ``contact_height`` at both frames and its vertical speed is ≤
    ``contact_vertical_speed``. The per-joint floor handles ankles and toes, which rest at
    different heights, but assumes each foot joint touches the ground at some time in the
    sequence. Speeds are horizontal (perpendicular to ``up_axis``). Multiply by
    ``1000 / fps`` for mm/frame.

    Args:
        joints: (..., T, J, 3) joints, metres; T ≥ 2.
        fps: frame rate in Hz.
        foot_idx: indices (into J) of the foot joints; default SMPL-24 ankles and feet.
        up_axis: 0, 1 or 2 for +x/+y/+z up, or an up 3-vector (see :func:`foot_contacts`).
        contact_height: contact height threshold, metres above the joint's lowest height.
        contact_vertical_speed: contact vertical speed threshold, m/s.

    Returns:
        (...) mean horizontal speed over all (frame, foot joint) pairs in contact, m/s;
        NaN where no foot is ever in contact.
    """
    x, is_torch, rate, height, speed_limit = _check_foot_args(
        joints, fps, contact_height, contact_vertical_speed)
    contact, speed = _foot_kinematics(x, rate, foot_idx, up_axis, height, speed_limit)
    weights = contact.to(speed.dtype)
    # 0/0 → NaN where there is no contact
    mean = (speed * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1))
    return restore_kind(mean, is_torch)
