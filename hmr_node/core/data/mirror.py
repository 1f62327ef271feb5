"""Left/right mirroring of SMPL motion across the body's sagittal plane (x = 0 in SMPL's frame).

With ``M = diag(-1, 1, 1)`` (the reflection x -> -x), a rotation ``R`` becomes ``M R M``; for
an axis-angle vector ``(x, y, z)`` that is ``(x, -y, -z)`` (the axis is a pseudo-vector: it
reflects and flips sign). Joint ``j`` of the mirrored body takes the (reflected) rotation of
joint ``SMPL_FLIP_PERMUTATION[j]``. The root translation reflects as a point: SMPL rotates the
body about its rest pelvis ``J0`` and then adds ``transl``, so ``transl' = M (transl + J0) - J0``
(``transl' = M transl`` when the rest pelvis lies on the plane x = 0).

For a left/right symmetric body the mirrored parameters pose exactly the mirror image of the
original joints and mesh; mirroring twice is the identity.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hmr_node.core.body.skeleton import SMPL_FLIP_PERMUTATION
from hmr_node.core.data.motion import MotionClip

_AXIS_SIGN = np.array([1.0, -1.0, -1.0])
# body_pose holds joints 1..23: the permutation within body_pose
_BODY_FLIP = np.array(SMPL_FLIP_PERMUTATION[1:]) - 1


def mirror_smpl_params(
    global_orient: np.ndarray, body_pose: np.ndarray, transl: np.ndarray, pelvis_rest: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror SMPL parameters across x = 0.

    global_orient: (..., 3) axis-angle root rotation
    body_pose: (..., 23, 3) axis-angle parent-relative rotations
    transl: (..., 3) SMPL transl, metres
    pelvis_rest: (3,) rest pelvis J0(betas) of the body (None = on the plane x = 0)
    returns: mirrored (global_orient, body_pose, transl), same shapes
    """
    global_orient = np.asarray(global_orient, dtype=np.float64)
    body_pose = np.asarray(body_pose, dtype=np.float64)
    transl = np.asarray(transl, dtype=np.float64)
    if global_orient.shape[-1:] != (3,) or body_pose.shape[-2:] != (23, 3) or transl.shape[-1:] != (3,):
        raise ValueError(f"global_orient/body_pose/transl: expected (..., 3)/(..., 23, 3)/(..., 3), got "
                         f"{global_orient.shape}/{body_pose.shape}/{transl.shape}")
    go = global_orient * _AXIS_SIGN
    bp = body_pose[..., _BODY_FLIP, :] * _AXIS_SIGN
    j0 = np.zeros(3) if pelvis_rest is None else np.asarray(pelvis_rest, dtype=np.float64).reshape(3)
    point_sign = np.array([-1.0, 1.0, 1.0])
    tr = point_sign * (transl + j0) - j0
    return go, bp, tr


def mirror_clip(clip: MotionClip, pelvis_rest: np.ndarray | None = None) -> MotionClip:
    """The mirror image of a clip (name suffixed '/mirrored'; attribution and labels kept).

    clip: the motion
    pelvis_rest: (3,) rest pelvis of the clip's body (None = on the plane x = 0)
    """
    go, bp, tr = mirror_smpl_params(clip.global_orient, clip.body_pose, clip.transl, pelvis_rest)
    name = clip.name[: -len("/mirrored")] if clip.name.endswith("/mirrored") else clip.name + "/mirrored"
    return dataclasses.replace(clip, name=name, global_orient=go, body_pose=bp, transl=tr)
