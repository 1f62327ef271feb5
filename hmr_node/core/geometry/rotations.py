"""Rotation conversions with hmr_node's conventions (roma does the numerics underneath).

Representations
---------------
* matrix: ``(..., 3, 3)`` proper rotation, acting on column vectors (``x' = R @ x``);
* axis-angle: ``(..., 3)`` rotation vector, angle = norm in radians (SMPL I/O);
* 6D: ``(..., 6)`` the first two **columns** of R, ``R[..., :, :2].reshape(..., 6)``, i.e.
  ``(R00, R01, R10, R11, R20, R21)``, the layout of ScoreHMR/HMR2 checkpoints (pytorch3d
  uses rows: do not mix);
* quaternion: ``(..., 4)`` unit quaternion in ROS order ``(x, y, z, w)``.

All functions take torch tensors, keep dtype and device, and are differentiable (also at
zero angle for axis-angle).
"""
from __future__ import annotations

import roma
import torch

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "axis_angle_to_rot6d",
    "rot6d_to_axis_angle",
    "quat_xyzw_to_matrix",
    "matrix_to_quat_xyzw",
]


def _check_last(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[len(x.shape) - len(shape):]) != shape or x.dim() < len(shape):
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """axis_angle: (..., 3) rotation vectors (rad) -> (..., 3, 3) rotation matrices."""
    _check_last(axis_angle, (3,), "axis_angle")
    return roma.rotvec_to_rotmat(axis_angle)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """matrix: (..., 3, 3) rotation matrices -> (..., 3) rotation vectors, angle in [0, pi]."""
    _check_last(matrix, (3, 3), "matrix")
    return roma.rotmat_to_rotvec(matrix)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """matrix: (..., 3, 3) -> (..., 6) first two columns, row-major: (R00, R01, R10, R11, R20, R21)."""
    _check_last(matrix, (3, 3), "matrix")
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


def rot6d_to_matrix(rot6d: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """rot6d: (..., 6) in the column layout above -> (..., 3, 3) by Gram-Schmidt.

    The first column is the normalised first 3-vector; the second is the second 3-vector made
    orthogonal to it and normalised; the third is their cross product (Zhou et al. 2019).
    """
    _check_last(rot6d, (6,), "rot6d")
    cols = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = cols[..., 0], cols[..., 1]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(eps)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(eps)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def axis_angle_to_rot6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """axis_angle: (..., 3) -> (..., 6)."""
    return matrix_to_rot6d(axis_angle_to_matrix(axis_angle))


def rot6d_to_axis_angle(rot6d: torch.Tensor) -> torch.Tensor:
    """rot6d: (..., 6) -> (..., 3)."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def quat_xyzw_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """quat: (..., 4) quaternion (x, y, z, w), normalised here -> (..., 3, 3)."""
    _check_last(quat, (4,), "quat")
    return roma.unitquat_to_rotmat(quat / quat.norm(dim=-1, keepdim=True))


def matrix_to_quat_xyzw(matrix: torch.Tensor) -> torch.Tensor:
    """matrix: (..., 3, 3) -> (..., 4) unit quaternion (x, y, z, w) with w >= 0."""
    _check_last(matrix, (3, 3), "matrix")
    q = roma.rotmat_to_unitquat(matrix)
    return torch.where(q[..., 3:4] < 0, -q, q)
