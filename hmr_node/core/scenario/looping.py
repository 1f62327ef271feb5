"""Extending a short motion clip by looping its most repeatable cycle.

Motion-capture clips are often a few seconds long (a walking clip of CMU is ~3 s), shorter than
a scenario. :func:`loop_clip` finds the frame pair ``(i, j)``, ``j - i >= min_cycle`` seconds,
whose poses match best, and repeats the segment ``[i, j)`` after frame ``j - 1``. Each repetition
is moved rigidly on the floor (a rotation about the vertical plus a horizontal offset, computed
once from the pelvis and heading at frames ``i`` and ``j``), so that the walker keeps going in
the direction and at the speed of the cycle instead of jumping back.

Match cost of a pair (frames a, b), all in SMPL's y-up frame::

    sum_joints ||R_a - R_b||_F^2                          (body pose, 23 joints)
    + ||T_a - T_b||_F^2                                    (root orientation with yaw removed)
    + 10 * (h_a - h_b)^2 / m^2                             (pelvis height)
    + (|v_a - v_b| / (m/s))^2                              (pelvis velocity in the heading frame)
"""
from __future__ import annotations

import math

import numpy as np
import torch

from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.frames import transform_smpl_root
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def _ry(angle: np.ndarray) -> np.ndarray:
    """Rotations about SMPL's vertical y axis: (...,) -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(np.shape(angle) + (3, 3))
    R[..., 0, 0], R[..., 0, 2], R[..., 1, 1], R[..., 2, 0], R[..., 2, 2] = c, s, 1.0, -s, c
    return R


def heading_angle(global_orient: np.ndarray) -> np.ndarray:
    """Yaw of the body's facing direction (+z of the root) about SMPL's y axis.

    global_orient: (T, 3, 3) root rotations in SMPL's y-up frame.
    Returns (T,) radians, 0 = facing +z, positive towards +x.
    """
    f = global_orient[:, :, 2]
    return np.arctan2(f[:, 0], f[:, 2])


def loop_clip(clip: MotionClip, num_frames: int, pelvis_rest: np.ndarray,
              min_cycle: float = 0.8) -> tuple[MotionClip, int, int]:
    """Lengthen ``clip`` to at least ``num_frames`` frames by repeating its best cycle.

    clip: the motion (y-up SMPL world).
    num_frames: wanted length (a clip already this long is returned unchanged).
    pelvis_rest: (3,) rest pelvis J0(betas) of the body the clip is played on, metres.
    min_cycle: shortest loop, seconds.
    Returns ``(looped clip, i, j)``: the loop segment is [i, j) (``(0, T)`` when unchanged or
    when the clip is too short to hold a cycle, in which case the whole clip is repeated).
    """
    T = clip.num_frames
    if T >= num_frames:
        return clip, 0, T
    go = axis_angle_to_matrix(torch.as_tensor(np.asarray(clip.global_orient, np.float64))).numpy()
    bp = axis_angle_to_matrix(torch.as_tensor(np.asarray(clip.body_pose, np.float64))).numpy()
    transl = np.asarray(clip.transl, np.float64)
    pelvis = transl + pelvis_rest
    yaw = heading_angle(go)
    Ryaw_inv = _ry(-yaw)
    tilt = Ryaw_inv @ go
    vel = np.gradient(pelvis, axis=0) * clip.fps if T > 1 else np.zeros_like(pelvis)
    vel_local = np.einsum("tij,tj->ti", Ryaw_inv, vel)
    feat = np.concatenate([bp.reshape(T, -1), tilt.reshape(T, -1),
                           math.sqrt(10.0) * pelvis[:, 1:2], vel_local], axis=1)
    c = max(1, int(round(min_cycle * clip.fps)))
    if T - 1 < c:
        i, j = 0, T
    else:
        sq = np.sum(feat * feat, axis=1)
        d = sq[:, None] + sq[None, :] - 2.0 * (feat @ feat.T)         # (T, T) squared distances
        ii, jj = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
        d = np.where(jj - ii >= c, d, np.inf)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        i, j = int(i), int(j)
    # rigid floor motion taking frame i onto frame j: rotation about y by dyaw, then offset
    dyaw = float(yaw[j] - yaw[i]) if j < T else float(yaw[-1] - yaw[0])
    end = min(j, T - 1)
    R = _ry(np.array(dyaw))
    offset = pelvis[end] - R @ pelvis[i]
    offset[1] = 0.0  # keep the height: the floor stays the floor
    seg = np.arange(i, j) if j < T else np.arange(0, T)
    go_out, tr_out, bp_out = [go[:j]], [transl[:j]], [bp[:j]]
    n = j
    R_acc, t_acc = np.eye(3), np.zeros(3)
    while n < num_frames:
        R_acc, t_acc = R @ R_acc, R @ t_acc + offset               # compose one more cycle
        g, t = transform_smpl_root(torch.as_tensor(R_acc), torch.as_tensor(t_acc),
                                   torch.as_tensor(go[seg]), torch.as_tensor(transl[seg]),
                                   torch.as_tensor(np.asarray(pelvis_rest, np.float64)))
        go_out.append(g.numpy())
        tr_out.append(t.numpy())
        bp_out.append(bp[seg])
        n += seg.size
    go_all = np.concatenate(go_out)[:max(num_frames, T)]
    bp_all = np.concatenate(bp_out)[:max(num_frames, T)]
    tr_all = np.concatenate(tr_out)[:max(num_frames, T)]
    looped = MotionClip(
        name=clip.name, fps=clip.fps,
        global_orient=matrix_to_axis_angle(torch.as_tensor(go_all)).numpy(),
        body_pose=matrix_to_axis_angle(torch.as_tensor(bp_all)).numpy(),
        transl=tr_all, betas=np.asarray(clip.betas), source=clip.source,
        synthetic=clip.synthetic, attribution=clip.attribution)
    return looped, i, j
