"""Pure tensor functions of an SMPL-format body: shape blending, forward kinematics, skinning.

Everything is batched over a leading B and differentiable. Rotations are parent-relative
3x3 matrices; positions are metres in the body model's frame.
"""
from __future__ import annotations

import torch

from hmr_node.core.geometry.rotations import axis_angle_to_matrix


def kinematic_levels(parents: tuple[int, ...]) -> list[list[int]]:
    """Group joints by depth in the tree so FK runs one batched step per level.

    parents: parent index per joint, root = -1 -> list of joint-index lists, root level first
    """
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        if p >= j and p != -1:
            raise ValueError(f"parents: joint {j} has parent {p}; parents must precede children")
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


def pose_to_rotmats(global_orient: torch.Tensor, body_pose: torch.Tensor) -> torch.Tensor:
    """Normalise SMPL pose inputs to rotation matrices.

    global_orient: (B, 3) axis-angle, or (B, 3, 3) / (B, 1, 3, 3) matrix
    body_pose: (B, 69) or (B, 23, 3) axis-angle, or (B, 23, 3, 3) matrices
    returns: (B, 24, 3, 3) parent-relative rotations (joint 0 = global orientation)
    """
    if global_orient.dim() == 2 and global_orient.shape[-1] == 3:
        go = axis_angle_to_matrix(global_orient)[:, None]
    elif global_orient.dim() == 3 and global_orient.shape[-2:] == (3, 3):
        go = global_orient[:, None]
    elif global_orient.dim() == 4 and global_orient.shape[1:] == (1, 3, 3):
        go = global_orient
    else:
        raise ValueError(f"global_orient: expected (B, 3) axis-angle or (B, 3, 3) matrices, got {tuple(global_orient.shape)}")
    B = go.shape[0]
    if body_pose.dim() == 2 and body_pose.shape[-1] == 69:
        bp = axis_angle_to_matrix(body_pose.reshape(B, 23, 3))
    elif body_pose.dim() == 3 and body_pose.shape[1:] == (23, 3):
        bp = axis_angle_to_matrix(body_pose)
    elif body_pose.dim() == 4 and body_pose.shape[1:] == (23, 3, 3):
        bp = body_pose
    else:
        raise ValueError(f"body_pose: expected (B, 69), (B, 23, 3) axis-angle or (B, 23, 3, 3) matrices, got {tuple(body_pose.shape)}")
    if bp.shape[0] != B:
        raise ValueError(f"body_pose: batch {bp.shape[0]} differs from global_orient batch {B}")
    return torch.cat((go, bp), dim=1)


def blend_shapes(betas: torch.Tensor, template: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """template + dirs . betas.

    betas: (B, S) shape coefficients
    template: (N, 3) rest points (vertices or joints)
    dirs: (N, 3, S) shape directions
    returns: (B, N, 3)
    """
    # b: batch, n: point, c: xyz, s: shape coefficient
    return template + torch.einsum("bs,ncs->bnc", betas, dirs)


def forward_kinematics(
    rotmats: torch.Tensor, rest_joints: torch.Tensor, parents: tuple[int, ...], levels: list[list[int]] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain parent-relative rotations down the tree.

    rotmats: (B, J, 3, 3) parent-relative rotations
    rest_joints: (B, J, 3) joint positions in the rest pose
    parents: parent per joint (root -1); levels: from :func:`kinematic_levels` (computed if None)
    returns: (global rotations (B, J, 3, 3), posed joint positions (B, J, 3)); the root is
        rotated about its own rest position, which stays in place.
    """
    if levels is None:
        levels = kinematic_levels(parents)
    B, J = rotmats.shape[:2]
    par = torch.tensor([max(p, 0) for p in parents], device=rest_joints.device)
    rel = rest_joints - rest_joints[:, par]  # (B, J, 3) bone vectors in the rest pose
    G_rot = [None] * J
    G_pos = [None] * J
    root = levels[0]
    for j in root:
        G_rot[j] = rotmats[:, j]
        G_pos[j] = rest_joints[:, j]
    for level in levels[1:]:
        idx = torch.tensor(level, device=rotmats.device)
        pidx = [parents[j] for j in level]
        Rp = torch.stack([G_rot[p] for p in pidx], dim=1)  # (B, L, 3, 3)
        Pp = torch.stack([G_pos[p] for p in pidx], dim=1)  # (B, L, 3)
        Rj = Rp @ rotmats[:, idx]
        Pj = Pp + (Rp @ rel[:, idx, :, None])[..., 0]
        for k, j in enumerate(level):
            G_rot[j] = Rj[:, k]
            G_pos[j] = Pj[:, k]
    return torch.stack(G_rot, dim=1), torch.stack(G_pos, dim=1)


def pose_feature(rotmats: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective input: (R_j - I) of joints 1..23, flattened.

    rotmats: (B, 24, 3, 3) -> (B, 207)
    """
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    return (rotmats[:, 1:] - eye).reshape(rotmats.shape[0], -1)


def skin_points(
    points: torch.Tensor, weights: torch.Tensor, G_rot: torch.Tensor, G_pos: torch.Tensor, rest_joints: torch.Tensor
) -> torch.Tensor:
    """Linear blend skinning.

    points: (B, N, 3) rest-pose points (shaped and pose-corrected)
    weights: (N, J) skinning weights
    G_rot, G_pos: (B, J, 3, 3), (B, J, 3) global joint transforms from forward_kinematics
    rest_joints: (B, J, 3) rest joints the transforms were built on
    returns: (B, N, 3) posed points
    """
    # each joint's transform maps a rest point x to G_rot (x - J_rest) + G_pos
    offset = G_pos - (G_rot @ rest_joints[..., None])[..., 0]  # (B, J, 3)
    # b: batch, n: point, j: joint, r/c: rotation row/column
    R = torch.einsum("nj,bjrc->bnrc", weights, G_rot)
    t = torch.einsum("nj,bjr->bnr", weights, offset)
    return (R @ points[..., None])[..., 0] + t
