"""Deterministic DDIM (Song et al. 2021) as a small scheduler object; the caller owns the loop.

Equation numbers are the ScoreHMR paper's (Sec. 3 and 4.1):

* Eq. 4/9  ``x0_hat(x_t) = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``             (:meth:`pred_x0`)
* Eq. 3/9  ``x_{t'} = sqrt(a_{t'}) x0_hat + sqrt(1 - a_{t'}) eps``, ``t' < t``  (:meth:`step`)
* Eq. 7    the same map with ``t' > t``: DDIM inversion                        (:meth:`inversion_step`)

where ``a_t`` is ``alpha_bar[t]`` of :mod:`hmr_node.core.diffusion.schedule` (``a_0 = 1``).
With sigma_t = 0 both directions are deterministic, so inverting an estimate to noise level
tau and sampling back returns it up to the discretisation error of the ODE.

Typical use (the ScoreHMR loop in :mod:`hmr_node.core.scorehmr.refiner`)::

    sched = DdimScheduler(DdimConfig())
    ts = sched.set_timesteps(num_steps=10, t_max=50)    # tensor([50, 45, ..., 5, 0])
    for t, t_next in zip(ts.flip(0)[:-1], ts.flip(0)[1:]):  # invert 0 -> 50
        x = sched.inversion_step(eps_fn(x, t), t, t_next, x)
    for t, t_prev in zip(ts[:-1], ts[1:]):                   # sample 50 -> 0
        x = sched.step(eps_fn(x, t), t, t_prev, x).prev_sample
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from hmr_node.core.diffusion.schedule import cosine_alpha_bar

__all__ = ["DdimConfig", "DdimScheduler", "DdimStepOutput"]


def _sqrt(a):
    return math.sqrt(a) if isinstance(a, float) else a.sqrt()


@dataclass(frozen=True)
class DdimConfig:
    """num_train_timesteps: T of the trained model; cosine_s, max_beta: cosine schedule
    parameters (see :func:`~hmr_node.core.diffusion.schedule.cosine_alpha_bar`)."""

    num_train_timesteps: int = 1000
    cosine_s: float = 0.008
    max_beta: float = 0.999


class DdimStepOutput(NamedTuple):
    """prev_sample: (B, D) x_{t_prev}; pred_x0: (B, D) the x0_hat used for the step."""

    prev_sample: torch.Tensor
    pred_x0: torch.Tensor


class DdimScheduler:
    """Deterministic DDIM on a cosine alpha-bar schedule (eta = 0).

    Timesteps ``t`` may be Python ints, 0-d tensors, or (B,) tensors (one per sample); they
    index ``alpha_bar`` (0 = clean data, T = pure noise).
    """

    def __init__(self, config: DdimConfig = DdimConfig()):
        if not isinstance(config, DdimConfig):
            raise TypeError(f"config: expected DdimConfig, got {type(config).__name__}")
        self.config = config
        self.num_train_timesteps = config.num_train_timesteps
        self.alpha_bar = cosine_alpha_bar(config.num_train_timesteps, config.cosine_s, config.max_beta)  # (T+1,) f64
        self._alpha_bar_list = self.alpha_bar.tolist()
        self.timesteps: torch.Tensor | None = None

    # ------------------------------------------------------------------ timesteps
    def set_timesteps(self, num_steps: int, t_max: int | None = None) -> torch.Tensor:
        """Choose the sub-sequence of timesteps of the sub-range [0, t_max].

        num_steps: number of DDIM steps between t_max and 0 (each way)
        t_max: top timestep (the inversion depth tau); None = T
        returns: (num_steps + 1,) int64, descending from t_max to 0, evenly spaced (rounded);
            also stored as ``self.timesteps``. Sampling uses consecutive pairs
            ``(ts[i], ts[i + 1])``; inversion the same pairs reversed.
        """
        T = self.num_train_timesteps
        t_max = T if t_max is None else int(t_max)
        if not 1 <= t_max <= T:
            raise ValueError(f"t_max: expected in [1, {T}], got {t_max}")
        if not isinstance(num_steps, int) or not 1 <= num_steps <= t_max:
            raise ValueError(f"num_steps: expected an int in [1, t_max={t_max}], got {num_steps!r}")
        ts = torch.round(torch.linspace(float(t_max), 0.0, num_steps + 1, dtype=torch.float64)).long()
        self.timesteps = ts
        return ts

    # ------------------------------------------------------------------ coefficients
    def alpha_bar_at(self, t, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar[t] shaped to broadcast against ``like`` (B, ...), in its dtype/device.

        t: int, 0-d tensor or (B,) tensor of timesteps in [0, T]
        like: (B, ...) tensor whose dtype, device and rank the result follows
        """
        t = torch.as_tensor(t)
        if t.is_floating_point():
            if not torch.equal(t, t.round()):
                raise ValueError(f"t: DDIM timesteps must be integers, got {t}")
            t = t.long()
        if (t < 0).any() or (t > self.num_train_timesteps).any():
            raise ValueError(f"t: expected in [0, {self.num_train_timesteps}], got {t}")
        a = self.alpha_bar[t.cpu()].to(dtype=like.dtype, device=like.device)
        if a.dim() == 1:  # per-sample timesteps
            a = a.reshape(-1, *([1] * (like.dim() - 1)))
        return a

    def alpha_bar_of(self, t, like: torch.Tensor):
        """alpha_bar[t]: a Python float for a Python int t (the loop's cheap path), else as
        :meth:`alpha_bar_at`."""
        if isinstance(t, int) and 0 <= t <= self.num_train_timesteps:
            return self._alpha_bar_list[t]
        return self.alpha_bar_at(t, like)

    # ------------------------------------------------------------------ the DDIM maps
    def pred_x0(self, eps: torch.Tensor, t, x_t: torch.Tensor) -> torch.Tensor:
        """Eq. 4 / 9: x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t).

        eps: (B, D) noise prediction at (x_t, t)
        t: timestep(s), see class doc
        x_t: (B, D) latent at t
        returns: (B, D)
        """
        a = self.alpha_bar_of(t, x_t)
        return (x_t - _sqrt(1 - a) * eps) / _sqrt(a)

    def step(self, eps: torch.Tensor, t, t_prev, x_t: torch.Tensor) -> DdimStepOutput:
        """One deterministic sampling step t -> t_prev < t (Eq. 3 with sigma_t = 0; Eq. 9).

        eps: (B, D) noise prediction at (x_t, t) (the guided eps' of Eq. 10 when guiding)
        t, t_prev: timesteps, t_prev < t (t_prev = 0 returns x0_hat itself)
        x_t: (B, D)
        returns: DdimStepOutput(prev_sample (B, D), pred_x0 (B, D))
        """
        x0 = self.pred_x0(eps, t, x_t)
        a_prev = self.alpha_bar_of(t_prev, x_t)
        return DdimStepOutput(_sqrt(a_prev) * x0 + _sqrt(1 - a_prev) * eps, x0)

    def inversion_step(self, eps: torch.Tensor, t, t_next, x_t: torch.Tensor) -> torch.Tensor:
        """One deterministic inversion step t -> t_next > t (Eq. 7).

        eps: (B, D) noise prediction at (x_t, t)
        t, t_next: timesteps, t_next > t
        x_t: (B, D)
        returns: (B, D) x_{t_next}
        """
        x0 = self.pred_x0(eps, t, x_t)
        a_next = self.alpha_bar_of(t_next, x_t)
        return _sqrt(a_next) * x0 + _sqrt(1 - a_next) * eps

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """Sample q(x_t | x_0): sqrt(a_t) x0 + sqrt(1 - a_t) noise.

        x0: (B, D) clean samples
        noise: (B, D) standard normal
        t: timestep(s), see class doc
        returns: (B, D)
        """
        a = self.alpha_bar_of(t, x0)
        return _sqrt(a) * x0 + _sqrt(1 - a) * noise
