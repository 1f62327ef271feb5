"""The fixed rotations between SMPL's canonical frame and the ROS frames, written once.

* SMPL canonical: y up, the body facing +z, its left hand towards +x.
* Camera optical (REP-103 ``*_optical_frame``): x right, y down, z forward (into the scene).
* Camera body / ``base_link`` / ``odom`` (REP-103): x forward, y left, z up.

``R_A_FROM_B`` maps coordinates of a vector in frame B to frame A: ``v_A = R_A_FROM_B @ v_B``.

A body estimated in the camera optical frame with ``global_orient = R_OPTICAL_FROM_SMPL``
stands upright facing the camera (180 degrees about x, the usual HMR convention).
"""
from __future__ import annotations

import numpy as np
import torch

# SMPL (y up, facing +z) -> optical (y down, z forward): 180 degrees about x.
R_OPTICAL_FROM_SMPL = np.diag([1.0, -1.0, -1.0])
# optical (x right, y down, z forward) -> camera body frame (x forward, y left, z up).
R_CAMBODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
# SMPL (y up, facing +z, left +x) -> z-up world (x forward, y left, z up): a body with zero
# global_orient faces +x and its left hand points to +y.
R_ZUP_FROM_SMPL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def transform_smpl_root(
    rotation: torch.Tensor,
    translation: torch.Tensor,
    global_orient: torch.Tensor,
    transl: torch.Tensor,
    pelvis_rest: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Express an SMPL body in another frame: ``X_new = rotation @ X + translation`` for every point.

    SMPL rotates the body about its rest pelvis ``J0(betas)`` and then adds ``transl``, so
    ``transl`` does not simply rotate: ``transl' = R (transl + J0) + t - J0``.

    rotation: (..., 3, 3) R_new_from_old
    translation: (..., 3) origin of the old frame in the new frame, metres
    global_orient: (..., 3, 3) root rotation in the old frame
    transl: (..., 3) SMPL ``transl`` in the old frame, metres
    pelvis_rest: (..., 3) rest pelvis joint J0(betas) of the body model, metres
    returns: (global_orient', transl') in the new frame
    """
    new_orient = rotation @ global_orient
    new_transl = (rotation @ (transl + pelvis_rest).unsqueeze(-1)).squeeze(-1) + translation - pelvis_rest
    return new_orient, new_transl
