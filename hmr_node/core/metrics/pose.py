"""Per-frame body pose errors: MPJPE, PA-MPJPE, MPVPE (all in millimetres).

Inputs are joints or vertices in metres, ``(..., J, 3)`` / ``(..., V, 3)``, numpy arrays
(float64 math) or torch tensors (differentiable); results come back as the same kind.

Protocol notes (as in the HMR literature, e.g. HMR2 / ScoreHMR on 3DPW):

* MPJPE there is *root-relative*: pass ``root_joints=(0,)`` for SMPL-24 pelvis, or
  ``root_joints=LSP14_HIP_INDICES`` (mid-hip) after :func:`lsp14`; the default compares the
  joints as given (absolute, e.g. camera-frame error).
* PA-MPJPE aligns each sample with a similarity transform (Procrustes) over the evaluated
  joints, so the root choice does not matter.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from hmr_node.core.body.skeleton import LSP14_FROM_SMPL, NUM_SMPL_JOINTS, SMPL_JOINT_NAMES
from hmr_node.core.metrics._array import (
    as_float_tensors,
    check_indices,
    check_points,
    check_same_shape,
    restore_kind,
)
from hmr_node.core.metrics.alignment import _apply_similarity, _fit_similarity

M_TO_MM = 1000.0

# positions of the right and left hip in the LSP-14 order (their mean is the LSP pelvis)
LSP14_HIP_INDICES: tuple[int, int] = (
    LSP14_FROM_SMPL.index(SMPL_JOINT_NAMES.index("right_hip")),
    LSP14_FROM_SMPL.index(SMPL_JOINT_NAMES.index("left_hip")),
)

_JOINTS = "(..., J, 3)"


def lsp14(joints24):
    """The 14 LSP joints (see ``LSP14_FROM_SMPL``) taken from SMPL's 24.

    Args:
        joints24: (..., 24, 3) joints in SMPL order, numpy or torch.

    Returns:
        (..., 14, 3) joints in LSP-14 order, the same kind (a copy for numpy).
    """
    shape = tuple(getattr(joints24, "shape", ()))
    if len(shape) < 2 or shape[-2:] != (NUM_SMPL_JOINTS, 3):
        raise ValueError(f"joints24 must have shape (..., 24, 3), got {shape}")
    return joints24[..., list(LSP14_FROM_SMPL), :]


def _pair(pred, gt, pred_name: str, gt_name: str, layout: str = _JOINTS):
    (p, g), is_torch = as_float_tensors((pred_name, pred), (gt_name, gt))
    check_points(pred_name, p, layout)
    check_points(gt_name, g, layout)
    check_same_shape(pred_name, p, gt_name, g)
    return p, g, is_torch


def _select(p: torch.Tensor, g: torch.Tensor, joints: Sequence[int] | None):
    if joints is None:
        return p, g
    index = check_indices("joints", joints, p.shape[-2])
    return p[..., index, :], g[..., index, :]


def _root_relative(p: torch.Tensor, g: torch.Tensor, root_joints: Sequence[int] | None):
    if root_joints is None:
        return p, g
    index = check_indices("root_joints", root_joints, p.shape[-2])
    return (p - p[..., index, :].mean(dim=-2, keepdim=True),
            g - g[..., index, :].mean(dim=-2, keepdim=True))


def _distances_mm(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(p - g, dim=-1) * M_TO_MM


def per_joint_errors(pred, gt, *, root_joints: Sequence[int] | None = None):
    """Euclidean error of each joint, in mm.

    Args:
        pred: (..., J, 3) predicted joints, metres.
        gt: (..., J, 3) ground-truth joints, metres.
        root_joints: if given, indices of joints whose mean is subtracted from each of pred
            and gt first (root-relative errors).

    Returns:
        (..., J) errors in mm.
    """
    p, g, is_torch = _pair(pred, gt, "pred", "gt")
    p, g = _root_relative(p, g, root_joints)
    return restore_kind(_distances_mm(p, g), is_torch)


def mpjpe(pred, gt, *, joints: Sequence[int] | None = None,
          root_joints: Sequence[int] | None = None):
    """Mean per-joint position error, in mm.

    Args:
        pred: (..., J, 3) predicted joints, metres.
        gt: (..., J, 3) ground-truth joints, metres.
        joints: optional indices (into J) of the joints to evaluate; default all.
        root_joints: optional indices (into the input's J, applied before ``joints``) whose
            mean is subtracted from pred and gt, e.g. ``(0,)`` for the SMPL pelvis.

    Returns:
        (...) mean over the evaluated joints of ``||pred - gt||``, mm.
    """
    p, g, is_torch = _pair(pred, gt, "pred", "gt")
    p, g = _root_relative(p, g, root_joints)
    p, g = _select(p, g, joints)
    return restore_kind(_distances_mm(p, g).mean(dim=-1), is_torch)


def pa_mpjpe(pred, gt, *, joints: Sequence[int] | None = None):
    """Procrustes-aligned MPJPE, in mm.

    Each sample's prediction is moved onto the ground truth by the least-squares similarity
    transform (rotation, uniform scale, translation; :mod:`.alignment`) estimated over the
    evaluated joints, then the mean per-joint error is taken.

    Args:
        pred: (..., J, 3) predicted joints, metres.
        gt: (..., J, 3) ground-truth joints, metres.
        joints: optional indices (into J) of the joints to align and evaluate, e.g.
            ``LSP14_FROM_SMPL``; default all.

    Returns:
        (...) PA-MPJPE, mm.
    """
    p, g, is_torch = _pair(pred, gt, "pred", "gt")
    p, g = _select(p, g, joints)
    aligned = _apply_similarity(p, *_fit_similarity(p, g, True))
    return restore_kind(_distances_mm(aligned, g).mean(dim=-1), is_torch)


def mpvpe(pred_verts, gt_verts, *, pred_root=None, gt_root=None):
    """Mean per-vertex position error (a.k.a. PVE), in mm.

    Args:
        pred_verts: (..., V, 3) predicted mesh vertices, metres.
        gt_verts: (..., V, 3) ground-truth vertices, metres.
        pred_root: optional (..., 3) point subtracted from ``pred_verts`` (e.g. its pelvis
            joint) for a root-relative error; must be given together with ``gt_root``.
        gt_root: optional (..., 3) point subtracted from ``gt_verts``.

    Returns:
        (...) mean vertex error, mm.
    """
    if (pred_root is None) != (gt_root is None):
        raise ValueError("pred_root and gt_root must be given together, got only "
                         + ("pred_root" if gt_root is None else "gt_root"))
    if pred_root is None:
        p, g, is_torch = _pair(pred_verts, gt_verts, "pred_verts", "gt_verts", "(..., V, 3)")
    else:
        (p, g, pr, gr), is_torch = as_float_tensors(
            ("pred_verts", pred_verts), ("gt_verts", gt_verts), ("pred_root", pred_root),
            ("gt_root", gt_root))
        check_points("pred_verts", p, "(..., V, 3)")
        check_points("gt_verts", g, "(..., V, 3)")
        check_same_shape("pred_verts", p, "gt_verts", g)
        for name, root in (("pred_root", pr), ("gt_root", gr)):
            if tuple(root.shape) != tuple(p.shape[:-2]) + (3,):
                raise ValueError(f"{name} must have shape {tuple(p.shape[:-2]) + (3,)} "
                                 f"(..., 3) for vertices {tuple(p.shape)}, got {tuple(root.shape)}")
        p, g = p - pr[..., None, :], g - gr[..., None, :]
    return restore_kind(_distances_mm(p, g).mean(dim=-1), is_torch)
