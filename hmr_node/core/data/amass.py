"""AMASS-format motion files (``.npz``) -> :class:`MotionClip` in hmr_node's y-up world.

Keys read
    ``poses`` (T, P) axis-angle, P = 72 (SMPL: root + 23 joints) or more (SMPL-H 156 /
    SMPL-X 165: root + 21 body joints first, then hands/face, which are dropped and SMPL's
    two hand joints 22, 23 set to zero); ``trans`` (T, 3) metres; ``betas`` (>= 0 values, the
    first 10 kept); ``mocap_framerate`` (Hz; ``mocap_frame_rate`` also accepted).

Frames
    AMASS worlds are z up (floor z = 0). hmr_node's motion world is SMPL's canonical y-up
    frame, and :data:`R_ZUP_FROM_SMPL` maps SMPL coordinates to the z-up world (x forward,
    y left, z up). AMASS is converted with its inverse ``R = R_ZUP_FROM_SMPL.T``: every point
    ``X`` becomes ``R X``, so ``global_orient' = R global_orient`` and, because SMPL rotates
    about its rest pelvis ``J0``, ``transl' = R (transl + J0) - J0`` (see
    :func:`hmr_node.core.geometry.frames.transform_smpl_root`). The AMASS floor z = 0 becomes
    y = 0; a z-up AMASS body whose ``global_orient`` stands it upright stands upright in y-up.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.resample import resample_positions, resample_rotations
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL

R_SMPL_FROM_ZUP = R_ZUP_FROM_SMPL.T
AMASS_ATTRIBUTION = (
    "AMASS-format motion supplied by the user; AMASS (amass.is.tue.mpg.de) and its source datasets carry "
    "their own licences, which travel with this clip."
)


def amass_to_yup(global_orient: np.ndarray, transl: np.ndarray, pelvis_rest: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Re-express z-up root parameters in the y-up world.

    global_orient: (T, 3) axis-angle in the z-up world
    transl: (T, 3) metres in the z-up world
    pelvis_rest: (3,) rest pelvis J0(betas) of the body (None = origin)
    returns: (global_orient (T, 3), transl (T, 3)) in the y-up world
    """
    j0 = np.zeros(3) if pelvis_rest is None else np.asarray(pelvis_rest, dtype=np.float64).reshape(3)
    go = Rotation.from_matrix(R_SMPL_FROM_ZUP @ Rotation.from_rotvec(global_orient).as_matrix()).as_rotvec()
    tr = (transl + j0) @ R_SMPL_FROM_ZUP.T - j0
    return go, tr


def yup_to_amass(global_orient: np.ndarray, transl: np.ndarray, pelvis_rest: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`amass_to_yup` (for writing AMASS-format files)."""
    j0 = np.zeros(3) if pelvis_rest is None else np.asarray(pelvis_rest, dtype=np.float64).reshape(3)
    go = Rotation.from_matrix(R_ZUP_FROM_SMPL @ Rotation.from_rotvec(global_orient).as_matrix()).as_rotvec()
    tr = (transl + j0) @ R_ZUP_FROM_SMPL.T - j0
    return go, tr


def load_amass(path: str | os.PathLike, fps: float = 30.0, pelvis_rest: np.ndarray | None = None,
               name: str | None = None) -> MotionClip:
    """Read an AMASS-format ``.npz`` into a y-up :class:`MotionClip` at ``fps``.

    path: the ``.npz`` file
    fps: output rate, Hz (slerp for rotations, linear for translation)
    pelvis_rest: (3,) rest pelvis J0(betas) of the body the file was made for (None = origin;
        for real SMPL pass ``body.rest_joints(betas)[0]``, about 0.22 m below the origin)
    name: clip name (None = 'amass/<file stem>')
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: AMASS file not found: {p}")
    with np.load(p, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    for key in ("poses", "trans"):
        if key not in data:
            raise ValueError(f"path: {p} has no {key!r} array (keys: {sorted(data)})")
    rate_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in data), None)
    if rate_key is None:
        raise ValueError(f"path: {p} has no 'mocap_framerate' (keys: {sorted(data)})")
    src_fps = float(data[rate_key])
    poses = np.asarray(data["poses"], dtype=np.float64)
    trans = np.asarray(data["trans"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] < 66:
        raise ValueError(f"poses: expected (T, 72) or (T, >= 66) in {p}, got {poses.shape}")
    T = poses.shape[0]
    if trans.shape != (T, 3):
        raise ValueError(f"trans: expected ({T}, 3) in {p}, got {trans.shape}")
    if not src_fps > 0:
        raise ValueError(f"mocap_framerate: must be > 0 in {p}, got {src_fps}")
    if poses.shape[1] == 72:
        body = poses[:, 3:72].reshape(T, 23, 3)
    else:  # SMPL-H / SMPL-X: 21 body joints, SMPL's hand joints 22, 23 left at rest
        body = np.concatenate((poses[:, 3:66].reshape(T, 21, 3), np.zeros((T, 2, 3))), axis=1)
    betas = np.zeros(10)
    if "betas" in data:
        b = np.asarray(data["betas"], dtype=np.float64).reshape(-1)[:10]
        betas[: b.shape[0]] = b
    go, tr = amass_to_yup(poses[:, :3], trans, pelvis_rest)
    if abs(fps - src_fps) > 1e-9:
        R = Rotation.from_rotvec(np.concatenate((go[:, None], body), axis=1).reshape(-1, 3)).as_matrix()
        R = resample_rotations(R.reshape(T, 24, 3, 3), src_fps, fps)
        aa = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(-1, 24, 3)
        go, body, tr = aa[:, 0], aa[:, 1:], resample_positions(tr, src_fps, fps)
    return MotionClip(
        name=name or f"amass/{p.stem}", fps=float(fps), global_orient=go, body_pose=body, transl=tr,
        betas=betas, source="amass", synthetic=False, attribution=AMASS_ATTRIBUTION,
    )
