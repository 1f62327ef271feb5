"""Noise schedules of the diffusion models (ScoreHMR pose prior, DiffOpt motion prior).

Notation follows the ScoreHMR paper (Sec. 3): ``alpha_bar[t] = prod_{s<=t} (1 - zeta_s)`` is
the signal fraction of ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``.
Timesteps are integers ``t = 0..T``; ``t = 0`` is clean data (``alpha_bar[0] = 1``) and
training draws ``t`` uniformly from ``{1, ..., T}``.
"""
from __future__ import annotations

import math

import torch

__all__ = ["cosine_alpha_bar"]


def cosine_alpha_bar(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021, Eq. 17), as a cumulative product.

    ``f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)``; per-step betas
    ``zeta_t = 1 - f(t) / f(t - 1)`` are clipped at ``max_beta`` (their Sec. 3.2) so the last
    steps stay finite, and ``alpha_bar`` is rebuilt as the cumulative product.

    num_timesteps: T, number of diffusion steps
    s: small offset that keeps zeta_1 from being tiny
    max_beta: upper clip of the per-step noise variance zeta_t
    returns: (T + 1,) float64, ``alpha_bar[0] = 1`` and strictly decreasing, all in (0, 1]
    """
    if not isinstance(num_timesteps, int) or num_timesteps < 1:
        raise ValueError(f"num_timesteps: expected a positive int, got {num_timesteps!r}")
    if not (s > 0):
        raise ValueError(f"s: expected > 0, got {s}")
    if not (0 < max_beta < 1):
        raise ValueError(f"max_beta: expected in (0, 1), got {max_beta}")
    t = torch.arange(num_timesteps + 1, dtype=torch.float64)
    f = torch.cos((t / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2
    zeta = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cat((torch.ones(1, dtype=torch.float64), torch.cumprod(1 - zeta, dim=0)))
