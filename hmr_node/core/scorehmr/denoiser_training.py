"""Training of the pose denoiser with the simple loss (ScoreHMR Eq. 11 / DDPM Eq. 1).

``L = E_{x0, c, t, eps} |eps_phi(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t, c) - eps|^2`` with t uniform
on {1, ..., max_train_timestep} of the cosine schedule, Adam with warm-up and cosine decay,
gradient clipping and an exponential moving average (EMA) of the weights (the returned model).
Everything random comes from generators seeded with ``config.seed``: the same inputs and config
give the same weights (on the same machine and thread count).

The ``hmr train denoiser`` command (hmr_node.tools) builds (x0, c) pairs - poses and the
regressor's features for them - and calls :func:`train_denoiser`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from hmr_node.core.diffusion.ddim import DdimConfig, DdimScheduler
from hmr_node.core.scorehmr.denoiser import DenoiserConfig, PoseDenoiser

__all__ = ["DenoiserTrainingConfig", "train_denoiser", "denoiser_validation_loss"]


@dataclass(frozen=True)
class DenoiserTrainingConfig:
    """model: the denoiser architecture (model.cond_dim must equal c.shape[1]); ddim: the noise
    schedule; num_steps: optimiser steps; batch_size: samples per step; lr: peak Adam learning
    rate; warmup_steps: linear warm-up; lr_final_ratio: cosine decay to lr * this;
    weight_decay: AdamW decoupled weight decay; grad_clip: max gradient norm (0 = off);
    ema_decay: EMA of the weights, returned as the model (0 = return the raw weights);
    max_train_timestep: t is drawn from {1, ..., this} (T = the whole schedule, as the paper);
    val_fraction: share of the samples held out for the validation loss; val_every: steps
    between validation losses (and history entries); checkpoint_every: steps between calls of
    the checkpoint callback (0 = only at the end); seed: for init, batches, t and noise."""

    model: DenoiserConfig = field(default_factory=DenoiserConfig)
    ddim: DdimConfig = field(default_factory=DdimConfig)
    num_steps: int = 20000
    batch_size: int = 512
    lr: float = 1e-3
    warmup_steps: int = 500
    lr_final_ratio: float = 0.02
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    max_train_timestep: int = 1000
    val_fraction: float = 0.05
    val_every: int = 500
    checkpoint_every: int = 0
    seed: int = 0

    def __post_init__(self):
        for name in ("num_steps", "batch_size", "val_every", "max_train_timestep"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        for name in ("warmup_steps", "checkpoint_every", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: expected in [0, 1), got {self.ema_decay}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction: expected in [0, 1), got {self.val_fraction}")
        if self.max_train_timestep > self.ddim.num_train_timesteps:
            raise ValueError(f"max_train_timestep: expected <= {self.ddim.num_train_timesteps}, got {self.max_train_timestep}")


def _lr_at(step: int, cfg: DenoiserTrainingConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.num_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


@torch.no_grad()
def denoiser_validation_loss(model: PoseDenoiser, x0: torch.Tensor, c: torch.Tensor, ddim: DdimConfig = DdimConfig(),
                             t_ranges: tuple[tuple[int, int], ...] = ((1, 1000),), seed: int = 1,
                             batch_size: int = 4096) -> list[float]:
    """Mean |eps_phi - eps|^2 per dimension with fixed noise, for t uniform in each range.

    model: the denoiser
    x0: (N, 144) clean poses
    c: (N, C) their conditioning features
    ddim: the schedule
    t_ranges: inclusive (t_lo, t_hi) ranges; one loss per range
    seed: seed of the noise and timesteps (fixed: comparable across checkpoints)
    batch_size: evaluation chunk size
    returns: one float per range
    """
    sched = DdimScheduler(ddim)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    out = []
    for lo, hi in t_ranges:
        total, count = 0.0, 0
        for s in range(0, x0.shape[0], batch_size):
            xb, cb = x0[s:s + batch_size], c[s:s + batch_size]
            t = torch.randint(lo, hi + 1, (xb.shape[0],), generator=gen)
            noise = torch.randn(xb.shape, generator=gen, dtype=xb.dtype)
            pred = model(sched.add_noise(xb, noise, t), t, cb)
            total += float(((pred - noise) ** 2).mean(-1).sum())
            count += xb.shape[0]
        out.append(total / max(count, 1))
    model.train(was_training)
    return out


def train_denoiser(x0: torch.Tensor, c: torch.Tensor, config: DenoiserTrainingConfig = DenoiserTrainingConfig(),
                   progress: bool = True,
                   checkpoint_fn: Callable[[int, PoseDenoiser, dict], None] | None = None) -> tuple[PoseDenoiser, dict]:
    """Train eps_phi(x_t, t, c) on (x0, c) pairs with the simple loss (Eq. 11).

    x0: (N, pose_dim) clean 6D poses (first two columns of each of the 24 rotations)
    c: (N, cond_dim) conditioning features of each pose (the regressor's ``features``)
    config: DenoiserTrainingConfig
    progress: show a tqdm progress bar
    checkpoint_fn: called as ``checkpoint_fn(step, model, history)`` every
        ``checkpoint_every`` steps and at the end, with the (EMA) model in eval mode
    returns: (the trained model in eval mode (EMA weights), history) where history holds lists
        'step', 'loss' (mean training loss since the previous entry), 'val_loss', 'lr',
        'wall_s', and 'val_loss_by_t' {range label: loss} of the final model
    """
    if not isinstance(config, DenoiserTrainingConfig):
        raise TypeError(f"config: expected DenoiserTrainingConfig, got {type(config).__name__}")
    mc = config.model
    if not isinstance(x0, torch.Tensor) or x0.dim() != 2 or x0.shape[1] != mc.pose_dim:
        raise ValueError(f"x0: expected a (N, {mc.pose_dim}) tensor, got {getattr(x0, 'shape', type(x0))}")
    if not isinstance(c, torch.Tensor) or c.dim() != 2 or c.shape != (x0.shape[0], mc.cond_dim):
        raise ValueError(f"c: expected ({x0.shape[0]}, model.cond_dim={mc.cond_dim}), got {getattr(c, 'shape', type(c))}")
    if not (torch.isfinite(x0).all() and torch.isfinite(c).all()):
        raise ValueError("x0/c: contain NaN or inf")
    N = x0.shape[0]
    n_val = int(round(N * config.val_fraction))
    if N - n_val < 1:
        raise ValueError(f"x0: {N} samples leave none for training with val_fraction={config.val_fraction}")
    x0, c = x0.float(), c.float()
    gen = torch.Generator().manual_seed(config.seed)
    perm = torch.randperm(N, generator=gen)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    x_tr, c_tr, x_val, c_val = x0[tr_idx], c[tr_idx], x0[val_idx], c[val_idx]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = PoseDenoiser(mc)
    ema = copy.deepcopy(model).eval() if config.ema_decay > 0 else None
    for p in (ema.parameters() if ema is not None else ()):
        p.requires_grad_(False)
    sched = DdimScheduler(config.ddim)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: dict = {"step": [], "loss": [], "val_loss": [], "lr": [], "wall_s": []}
    t0, running, n_running = time.time(), 0.0, 0
    final = lambda: ema if ema is not None else model  # noqa: E731
    bar = tqdm(range(config.num_steps), desc="train denoiser", disable=not progress, dynamic_ncols=True)
    model.train()
    for step in bar:
        lr = _lr_at(step, config)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, x_tr.shape[0], (config.batch_size,), generator=gen)
        xb, cb = x_tr[idx], c_tr[idx]
        t = torch.randint(1, config.max_train_timestep + 1, (config.batch_size,), generator=gen)
        noise = torch.randn(xb.shape, generator=gen)
        loss = ((model(sched.add_noise(xb, noise, t), t, cb) - noise) ** 2).mean()  # Eq. 11
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                d = min(config.ema_decay, (1 + step) / (10 + step))  # short EMA early on
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - d)
        running += float(loss.detach())
        n_running += 1
        last = step + 1 == config.num_steps
        if (step + 1) % config.val_every == 0 or last:
            val = denoiser_validation_loss(final(), x_val, c_val, config.ddim,
                                           ((1, config.max_train_timestep),))[0] if n_val else float("nan")
            history["step"].append(step + 1)
            history["loss"].append(running / n_running)
            history["val_loss"].append(val)
            history["lr"].append(lr)
            history["wall_s"].append(time.time() - t0)
            bar.set_postfix(loss=f"{running / n_running:.4f}", val=f"{val:.4f}")
            running, n_running = 0.0, 0
        if checkpoint_fn is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and not last:
            checkpoint_fn(step + 1, final().eval(), history)
            model.train()
    bar.close()
    out = final().eval()
    T = config.ddim.num_train_timesteps
    ranges = ((1, 50), (51, 200), (201, T))
    if n_val:
        history["val_loss_by_t"] = {f"{lo}-{hi}": v for (lo, hi), v in
                                    zip(ranges, denoiser_validation_loss(out, x_val, c_val, config.ddim, ranges))}
    if checkpoint_fn is not None:
        checkpoint_fn(config.num_steps, out, history)
    return out, history
