"""Least-squares alignment of point sets: similarity (Procrustes/Umeyama) and rigid.

``fit_similarity`` solves, per batch element,

    min_{s, R, t}  sum_n || target_n - (s R source_n + t) ||^2,   R in SO(D), s > 0

in closed form (Umeyama 1991, "Least-squares estimation of transformation parameters between
two point patterns"): with centred points, ``Σ = (1/N) Σ_n y_n x_nᵀ = U S Vᵀ``,
``R = U diag(1, …, 1, d) Vᵀ`` where ``d = sign(det U · det V)`` keeps R a proper rotation
(no reflection), ``s = tr(diag(S) diag(1, …, d)) / σ_x²`` and ``t = μ_y − s R μ_x``.
``with_scale=False`` fixes ``s = 1`` (rigid alignment).

All functions accept numpy arrays (computed in float64) or torch tensors (computed in their
dtype, differentiable through ``torch.linalg.svd``; its gradient is undefined when two
singular values of Σ coincide, e.g. for perfectly symmetric point sets).
"""
from __future__ import annotations

import torch

from hmr_node.core.metrics._array import (
    as_float_tensors,
    check_points,
    check_same_shape,
    restore_kind,
)

_LAYOUT = "(..., N, D)"


def _fit_similarity(source: torch.Tensor, target: torch.Tensor, with_scale: bool
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Umeyama on tensors; see :func:`fit_similarity`. source, target: (..., N, D)."""
    mu_source = source.mean(dim=-2, keepdim=True)            # (..., 1, D)
    mu_target = target.mean(dim=-2, keepdim=True)
    x = source - mu_source
    y = target - mu_target
    n = source.shape[-2]
    # cov[..., i, j] = mean over points n of y[n, i] * x[n, j]
    cov = torch.einsum("...ni,...nj->...ij", y, x) / n      # (..., D, D)
    u, sing, vh = torch.linalg.svd(cov)
    # +1, or -1 where U Vᵀ would be a reflection; flips the smallest singular direction
    d = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh)).detach()
    signs = torch.ones_like(sing)
    signs[..., -1] = d
    rotation = (u * signs[..., None, :]) @ vh                 # U diag(signs) Vᵀ
    if with_scale:
        var_source = (x * x).sum(dim=-1).mean(dim=-1)         # (...) mean squared norm
        tiny = torch.finfo(source.dtype).tiny
        scale = (sing * signs).sum(dim=-1) / var_source.clamp_min(tiny)
    else:
        scale = torch.ones(source.shape[:-2], dtype=source.dtype, device=source.device)
    # t = μ_y − s R μ_x
    translation = mu_target[..., 0, :] - scale[..., None] * torch.einsum(
        "...ij,...j->...i", rotation, mu_source[..., 0, :])
    return scale, rotation, translation


def _apply_similarity(points: torch.Tensor, scale: torch.Tensor, rotation: torch.Tensor,
                      translation: torch.Tensor) -> torch.Tensor:
    """``s R p + t`` for points (..., N, D), scale (...), rotation (..., D, D), translation (..., D)."""
    rotated = torch.einsum("...ij,...nj->...ni", rotation, points)
    return scale[..., None, None] * rotated + translation[..., None, :]


def _checked(source, target, source_name: str, target_name: str):
    (src, tgt), is_torch = as_float_tensors((source_name, source), (target_name, target))
    check_points(source_name, src, _LAYOUT, dim=None)
    check_points(target_name, tgt, _LAYOUT, dim=None)
    check_same_shape(source_name, src, target_name, tgt)
    return src, tgt, is_torch


def fit_similarity(source, target, *, with_scale: bool = True):
    """Similarity (or rigid) transform taking ``source`` onto ``target`` in least squares.

    Args:
        source: (..., N, D) points to move (numpy or torch).
        target: (..., N, D) corresponding points, same shape.
        with_scale: estimate the scale; False gives the rigid transform (scale 1).

    Returns:
        ``(scale, rotation, translation)``: (...), (..., D, D) proper rotations,
        (..., D), such that ``target ≈ scale * rotation @ source + translation``; numpy in →
        numpy out, torch in → torch out.
    """
    src, tgt, is_torch = _checked(source, target, "source", "target")
    scale, rotation, translation = _fit_similarity(src, tgt, with_scale)
    return tuple(restore_kind(value, is_torch) for value in (scale, rotation, translation))


def apply_similarity(points, scale, rotation, translation):
    """``scale * rotation @ p + translation`` for every point p.

    Args:
        points: (..., N, D) points.
        scale: (...) scale factors.
        rotation: (..., D, D) rotation matrices.
        translation: (..., D) translations.

    Returns:
        (..., N, D) transformed points, numpy or torch like the inputs.
    """
    (pts, s, rot, t), is_torch = as_float_tensors(
        ("points", points), ("scale", scale), ("rotation", rotation), ("translation", translation))
    check_points("points", pts, _LAYOUT, dim=None)
    batch, d = tuple(pts.shape[:-2]), pts.shape[-1]
    expected = {"scale": (s, batch), "rotation": (rot, batch + (d, d)),
                "translation": (t, batch + (d,))}
    for name, (value, shape) in expected.items():
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} for points of shape "
                             f"{tuple(pts.shape)}, got {tuple(value.shape)}")
    return restore_kind(_apply_similarity(pts, s, rot, t), is_torch)


def procrustes_align(pred, gt):
    """``pred`` moved onto ``gt`` by the best similarity transform (rotation, scale, translation).

    Args:
        pred: (..., N, D) points, e.g. (B, J, 3) joints; aligned per batch element over N.
        gt: (..., N, D) reference points, same shape.

    Returns:
        (..., N, D) aligned ``pred``, numpy or torch like the inputs.
    """
    p, g, is_torch = _checked(pred, gt, "pred", "gt")
    return restore_kind(_apply_similarity(p, *_fit_similarity(p, g, True)), is_torch)


def rigid_align(pred, gt):
    """``pred`` moved onto ``gt`` by the best rigid transform (rotation and translation, no scale).

    Args:
        pred: (..., N, D) points; aligned per batch element over N.
        gt: (..., N, D) reference points, same shape.

    Returns:
        (..., N, D) aligned ``pred``, numpy or torch like the inputs.
    """
    p, g, is_torch = _checked(pred, gt, "pred", "gt")
    return restore_kind(_apply_similarity(p, *_fit_similarity(p, g, False)), is_torch)
