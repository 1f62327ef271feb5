"""World-frame errors: W-MPJPE, WA-MPJPE (WHAM / GVHMR protocol) and root trajectory error.

Joints are ``(..., T, J, 3)``, root positions ``(..., T, 3)``, in metres, in a world frame
(e.g. ``odom``); the estimate and the ground truth need not share an origin or heading,
which is why each metric first aligns the prediction to the ground truth.

* **W-MPJPE** (WHAM, Shin et al., CVPR 2024; after SLAHMR): the sequence is cut into
  segments of ``window`` frames (the last may be shorter); each segment's prediction is
  moved by the rigid transform (rotation + translation, no scale) that best aligns its
  **first two frames** (all their joints) to the ground truth. It measures drift within the
  segment.
* **WA-MPJPE**: the prediction is aligned by one similarity transform (with scale)
  estimated over all frames. WHAM and GVHMR report "WA-MPJPE100", i.e. this alignment per
  100-frame segment: pass ``window=100``; ``window=None`` aligns the whole sequence at once.
"""
from __future__ import annotations

import torch

from hmr_node.core.metrics._array import (
    as_float_tensors,
    check_points,
    check_same_shape,
    restore_kind,
)
from hmr_node.core.metrics.alignment import _apply_similarity, _fit_similarity

M_TO_MM = 1000.0
_MOTION = "(..., T, J, 3)"
_ALIGN_MODES = ("none", "rigid", "similarity")


def _motion_pair(pred, gt):
    (p, g), is_torch = as_float_tensors(("pred", pred), ("gt", gt))
    check_points("pred", p, _MOTION, min_ndim=3)
    check_points("gt", g, _MOTION, min_ndim=3)
    check_same_shape("pred", p, "gt", g)
    return p, g, is_torch


def _check_window(window, name: str = "window") -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"{name} must be a positive int (frames), got {window!r}")
    return window


def _flatten_frames(x: torch.Tensor) -> torch.Tensor:
    """(..., T, J, 3) → (..., T·J, 3): every joint of every frame as one point set."""
    return x.reshape(*x.shape[:-3], -1, 3)


def _segment_errors_mm(p: torch.Tensor, g: torch.Tensor, window: int, fit_frames: int | None,
                       with_scale: bool) -> torch.Tensor:
    """Per-frame MPJPE (..., T) after aligning each ``window`` segment of p to g.

    The transform of a segment is fitted on its first ``fit_frames`` frames (all frames if
    None) and applied to the whole segment.
    """
    errors = []
    for start in range(0, p.shape[-3], window):
        seg_p = p[..., start:start + window, :, :]
        seg_g = g[..., start:start + window, :, :]
        fit = slice(None) if fit_frames is None else slice(0, fit_frames)
        transform = _fit_similarity(_flatten_frames(seg_p[..., fit, :, :]),
                                    _flatten_frames(seg_g[..., fit, :, :]), with_scale)
        aligned = _apply_similarity(_flatten_frames(seg_p), *transform).reshape(seg_p.shape)
        errors.append(torch.linalg.vector_norm(aligned - seg_g, dim=-1).mean(dim=-1))
    return torch.cat(errors, dim=-1) * M_TO_MM


def w_mpjpe(pred, gt, window: int = 100):
    """World MPJPE: per-segment rigid alignment on the first two frames, error in mm.

    Args:
        pred: (..., T, J, 3) predicted world joints, metres.
        gt: (..., T, J, 3) ground-truth world joints, metres.
        window: segment length in frames (WHAM/GVHMR: 100).

    Returns:
        (..., T) per-frame mean per-joint error after alignment, mm.
    """
    p, g, is_torch = _motion_pair(pred, gt)
    errors = _segment_errors_mm(p, g, _check_window(window), fit_frames=2, with_scale=False)
    return restore_kind(errors, is_torch)


def wa_mpjpe(pred, gt, window: int | None = None):
    """World-aligned MPJPE: one similarity alignment over all frames, error in mm.

    Args:
        pred: (..., T, J, 3) predicted world joints, metres.
        gt: (..., T, J, 3) ground-truth world joints, metres.
        window: None to align the whole sequence at once; an int aligns each segment of
            that many frames separately (WHAM/GVHMR's WA-MPJPE100: ``window=100``).

    Returns:
        (..., T) per-frame mean per-joint error after alignment, mm.
    """
    p, g, is_torch = _motion_pair(pred, gt)
    size = p.shape[-3] if window is None else _check_window(window)
    errors = _segment_errors_mm(p, g, size, fit_frames=None, with_scale=True)
    return restore_kind(errors, is_torch)


def root_trajectory_error(pred_root, gt_root, align: str = "none") -> dict:
    """Absolute trajectory error (ATE) of a root (pelvis) trajectory, in metres.

    Args:
        pred_root: (..., T, 3) estimated root positions, metres.
        gt_root: (..., T, 3) ground-truth root positions, metres.
        align: ``"none"`` (compare as given, same frame), ``"rigid"`` (best rotation +
            translation over the whole trajectory) or ``"similarity"`` (also scale, as for
            monocular estimates); fitted by least squares (Umeyama).

    Returns:
        dict of (...) values, numpy or torch like the inputs: ``rmse_m`` (the ATE RMSE:
        sqrt of the mean squared position error), ``mean_m``, ``median_m``, ``max_m``
        (statistics of the per-frame position error).
    """
    if align not in _ALIGN_MODES:
        raise ValueError(f"align must be one of {_ALIGN_MODES}, got {align!r}")
    (p, g), is_torch = as_float_tensors(("pred_root", pred_root), ("gt_root", gt_root))
    check_points("pred_root", p, "(..., T, 3)")
    check_points("gt_root", g, "(..., T, 3)")
    check_same_shape("pred_root", p, "gt_root", g)
    if align != "none":
        p = _apply_similarity(p, *_fit_similarity(p, g, align == "similarity"))
    error = torch.linalg.vector_norm(p - g, dim=-1)           # (..., T)
    stats = {
        "rmse_m": (error * error).mean(dim=-1).sqrt(),
        "mean_m": error.mean(dim=-1),
        "median_m": error.quantile(0.5, dim=-1),
        "max_m": error.max(dim=-1).values,
    }
    return {key: restore_kind(value, is_torch) for key, value in stats.items()}
