"""Putting SMPL motion on the floor (y = 0 in the y-up motion world).

The feet are the mesh vertices skinned mostly to the ankles and feet (SMPL joints 7, 8, 10,
11); only those are shaped, pose-corrected and skinned, so this is cheap for long clips.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model import BodyModel
from hmr_node.core.data.motion import MotionClip

FOOT_JOINTS = (7, 8, 10, 11)  # left/right ankle, left/right foot


def foot_vertex_ids(body: BodyModel) -> torch.Tensor:
    """(N,) ids of the vertices whose largest skinning weight is on an ankle or foot joint."""
    dominant = body.weights.argmax(dim=1)
    ids = torch.nonzero(torch.isin(dominant, torch.tensor(FOOT_JOINTS, device=dominant.device))).flatten()
    if ids.numel() == 0:
        raise ValueError(f"body: no vertex is skinned mainly to the ankles/feet {FOOT_JOINTS}")
    return ids


@torch.no_grad()
def foot_heights(body: BodyModel, betas: np.ndarray, global_orient: np.ndarray, body_pose: np.ndarray,
                 transl: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Height of the lowest foot vertex in every frame.

    body: the body model
    betas: (S,) shape coefficients
    global_orient: (T, 3) axis-angle root rotation
    body_pose: (T, 23, 3) axis-angle
    transl: (T, 3) metres
    chunk: frames per batch
    returns: (T,) lowest foot-vertex y per frame, metres
    """
    ids = foot_vertex_ids(body)
    dt = body.v_template.dtype
    dev = body.v_template.device
    T = np.asarray(global_orient).shape[0]
    V = body.num_vertices
    posedirs = body.posedirs.reshape(-1, V, 3)[:, ids].reshape(body.posedirs.shape[0], -1)
    weights = body.weights[ids]
    b1 = torch.as_tensor(np.asarray(betas, dtype=np.float64)[None, : body.num_betas], dtype=dt, device=dev)
    out = np.empty(T)
    for s in range(0, T, chunk):
        go = torch.as_tensor(np.asarray(global_orient[s:s + chunk]), dtype=dt, device=dev)
        bp = torch.as_tensor(np.asarray(body_pose[s:s + chunk]), dtype=dt, device=dev)
        B = go.shape[0]
        b = body._betas(b1.expand(B, -1), B)
        R = kin.pose_to_rotmats(go, bp)
        J = kin.blend_shapes(b, body.J_template, body.J_shapedirs)
        pts = kin.blend_shapes(b, body.v_template[ids], body.shapedirs[ids])
        pts = pts + (kin.pose_feature(R) @ posedirs).reshape(B, -1, 3)
        G_rot, G_pos = kin.forward_kinematics(R, J, body.parents, body.levels)
        y = kin.skin_points(pts, weights, G_rot, G_pos, J)[..., 1].min(dim=1).values
        out[s:s + B] = y.double().cpu().numpy() + np.asarray(transl[s:s + chunk])[:, 1]
    return out


def place_on_floor(clip: MotionClip, body: BodyModel, per_frame: bool = False) -> MotionClip:
    """Shift a clip vertically so its feet touch y = 0.

    clip: the motion (its betas are used)
    body: the body model the clip is for
    per_frame: False = one shift for the whole clip, so the lowest foot over the clip touches
        the floor (mocap: keeps jumps); True = every frame's lowest foot touches the floor
        (procedural motion that is always in ground contact)
    """
    h = foot_heights(body, clip.betas, clip.global_orient, clip.body_pose, clip.transl)
    transl = np.array(clip.transl, dtype=np.float64)
    transl[:, 1] -= h if per_frame else h.min()
    return dataclasses.replace(clip, transl=transl)
