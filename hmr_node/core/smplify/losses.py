"""Energy terms of SMPLify-style fitting (Bogo et al. 2016; weights as in SPIN's re-implementation).

All terms return per-sample values (B,) so batched independent problems can be summed.
"""
from __future__ import annotations

import torch

# SMPL body_pose (69-D, joints 1..23) components of SMPLify's angle prior: the elbows' bend
# axis (y) and the knees' (x). Full-pose indices 55, 58, 12, 15 minus the 3 root entries.
ANGLE_PRIOR_INDICES: tuple[int, ...] = (52, 55, 9, 12)
# Natural bends are left elbow -y, right elbow +y, knees +x (see the docstring of angle_prior);
# the prior penalises exp(sign * theta) so bending the wrong way grows exponentially.
ANGLE_PRIOR_SIGNS: tuple[float, ...] = (1.0, -1.0, -1.0, -1.0)


def gmof(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure robust penalty ``sigma^2 r^2 / (sigma^2 + r^2)`` elementwise.

    residual: any shape; sigma: scale (same units as residual)
    returns: same shape; ~r^2 for |r| << sigma, saturating at sigma^2
    """
    r2 = residual ** 2
    return (sigma ** 2) * r2 / (sigma ** 2 + r2)


def reprojection_energy(uv_pred: torch.Tensor, uv: torch.Tensor, conf: torch.Tensor, sigma: float,
                        scale: torch.Tensor | None = None) -> torch.Tensor:
    """Confidence-weighted GMoF reprojection energy ``sum_k conf_k sum_xy rho(s (u_pred - u))``.

    uv_pred: (B, K, 2) projected model keypoints, pixels
    uv: (B, K, 2) detections, pixels (ignored where conf == 0)
    conf: (B, K) weights in [0, 1]
    sigma: GMoF scale in the units of ``s * pixels``
    scale: (B,) per-sample factor s applied to the residuals (None = 1)
    returns: (B,)
    """
    r = uv_pred - torch.where(conf[..., None] > 0, uv, uv_pred.detach())
    if scale is not None:
        r = r * scale[:, None, None]
    return (conf[..., None] * gmof(r, sigma)).sum(dim=(1, 2))


def angle_prior(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify's elbow/knee prior ``sum exp(sign * theta)^2`` on the bend-axis components.

    In SMPL's rest T-pose (y up, facing +z) the left forearm bends forward by a rotation about
    -y, the right about +y, and the shins backward about +x; rotations the other way (the
    joint bending backwards) make ``sign * theta`` positive and are penalised exponentially.
    body_pose: (B, 69) axis-angle
    returns: (B,)
    """
    idx = list(ANGLE_PRIOR_INDICES)
    signs = body_pose.new_tensor(ANGLE_PRIOR_SIGNS)
    return torch.exp(body_pose[:, idx] * signs).pow(2).sum(dim=1)


def shape_prior(betas: torch.Tensor) -> torch.Tensor:
    """betas: (B, S) -> (B,) ``|betas|^2`` (betas are unit-variance by construction)."""
    return (betas ** 2).sum(dim=1)


def second_difference_energy(x: torch.Tensor, frame_index: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal smoothness ``sum_t |x_{t+1} - 2 x_t + x_{t-1}|^2`` over a window.

    x: (T, ...) per-frame values in time order (e.g. joints (T, 24, 3))
    frame_index: (T,) increasing frame numbers of the rows; a difference counts only over
        three consecutive frame numbers, so rows around a dropped frame are not treated as
        neighbours (None = rows are consecutive frames)
    returns: scalar
    """
    if x.shape[0] < 3:
        return x.new_zeros(())
    acc = x[2:] - 2 * x[1:-1] + x[:-2]
    e = acc.reshape(acc.shape[0], -1).pow(2).sum(dim=1)
    if frame_index is not None:
        e = e * ((frame_index[2:] - frame_index[:-2]) == 2).to(e.dtype)
    return e.sum()


__all__ = ["gmof", "reprojection_energy", "angle_prior", "shape_prior", "second_difference_energy",
           "ANGLE_PRIOR_INDICES", "ANGLE_PRIOR_SIGNS"]
