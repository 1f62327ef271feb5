"""Training of the keypoint regressor on synthetic samples (:mod:`.synthetic_samples`).

Losses (per batch, weights in :class:`RegressorTrainingConfig`):

* ``rot``: ``mean_j ||R_pred_j - R_gt_j||_F^2`` over the 24 rotations (global orientation in
  the optical frame + body pose), computed on matrices from the 6D output;
* ``joints``: mean Euclidean error of the pelvis-relative 24 joints (metres), through the body
  model's joints of the predicted pose and betas;
* ``kp2d``: mean Euclidean error of the predicted COCO-17 keypoints projected into the image
  (with the predicted translation) against the exact GT projections, over the visible GT
  keypoints, in units of the GT keypoint box (so near and far people weigh alike);
  clamped at 1 box per keypoint;
* ``betas``: mean squared error;
* ``depth``: ``|log z_pred - log z_gt|`` of the translation;
* ``centre``: image-plane error of the translation direction ``transl_xy / z`` in box units.

The validation set is drawn once from clips held out by name *within* the training split
(:func:`~hmr_node.core.regressor.synthetic_samples.split_train_validation`); the evaluation
split is never touched here.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hmr_node.core.body.model import BodyModel
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.rotations import rot6d_to_matrix
from hmr_node.core.metrics.pose import mpjpe, pa_mpjpe
from hmr_node.core.regressor.model import KeypointRegressor, RegressorConfig, keypoint_box, save_regressor
from hmr_node.core.regressor.output import RegressorOutput
from hmr_node.core.regressor.synthetic_samples import (
    PoseBank,
    SyntheticBatch,
    SyntheticSampleConfig,
    SyntheticSampler,
    project_with_K,
    split_train_validation,
)


@dataclass(frozen=True)
class RegressorTrainingConfig:
    """Everything :func:`train_regressor` needs besides steps, batch, seed and output folder.

    model: the regressor architecture.
    samples: the synthetic sample distribution.
    lr: peak AdamW learning rate (linear warm-up, then cosine decay to ``lr * final_lr_ratio``).
    final_lr_ratio: learning rate at the last step relative to ``lr``.
    warmup_steps: linear warm-up steps.
    weight_decay: AdamW weight decay.
    grad_clip: gradient norm clip.
    w_rot, w_joints, w_kp2d, w_betas, w_depth, w_centre: loss weights (module docstring).
    fps: rate the clips are loaded at.
    frame_step: keep every frame_step-th frame of each clip in the pose bank.
    mirror: add mirrored poses to the pose bank.
    val_fraction: fraction of training clips held out (by name) for validation.
    val_samples: size of the fixed validation set.
    val_every: validate every this many steps (and at the end).
    checkpoint_every: write ``checkpoint.pt`` every this many steps (0 = only at the end).
    """

    model: RegressorConfig = field(default_factory=RegressorConfig)
    samples: SyntheticSampleConfig = field(default_factory=SyntheticSampleConfig)
    lr: float = 1e-3
    final_lr_ratio: float = 0.02
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    w_rot: float = 1.0
    w_joints: float = 5.0
    w_kp2d: float = 1.0
    w_betas: float = 0.05
    w_depth: float = 1.0
    w_centre: float = 1.0
    fps: float = 30.0
    frame_step: int = 2
    mirror: bool = True
    val_fraction: float = 0.12
    val_samples: int = 2048
    val_every: int = 500
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"RegressorTrainingConfig.lr: expected > 0, got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"RegressorTrainingConfig.val_fraction: expected in (0, 1), got {self.val_fraction}")
        if self.val_samples < 1 or self.val_every < 1:
            raise ValueError(f"RegressorTrainingConfig: val_samples and val_every must be >= 1, got "
                             f"{self.val_samples}, {self.val_every}")


def lr_at(step: int, total: int, config: RegressorTrainingConfig) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: linear warm-up, cosine decay."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    ratio = config.final_lr_ratio + (1 - config.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.lr * ratio


def _gt_box_size(batch: SyntheticBatch) -> torch.Tensor:
    """(B,) size of the visible GT keypoints' box in normalised camera coordinates (>= 0.02)."""
    xy = batch.keypoints3d[..., :2] / batch.keypoints3d[..., 2:].clamp_min(1e-3)
    _, size = keypoint_box(xy, batch.visible, 0.02)
    return size


def regressor_losses(out: RegressorOutput, batch: SyntheticBatch, body: BodyModel,
                     config: RegressorTrainingConfig) -> dict[str, torch.Tensor]:
    """The training losses (module docstring) of one batch; ``total`` is their weighted sum.

    out: the regressor output for ``batch``
    batch: synthetic samples with ground truth
    body: body model used to build the samples
    config: loss weights
    returns: dict of scalar tensors
    """
    R = rot6d_to_matrix(out.pose6d.reshape(-1, 24, 6))
    loss = {"rot": ((R - batch.rotmats) ** 2).sum(dim=(-1, -2)).mean()}
    joints = body.joints(out.betas, R[:, 0], R[:, 1:])
    gt = batch.joints3d - batch.joints3d[:, :1]
    loss["joints"] = (joints - joints[:, :1] - gt).norm(dim=-1).mean()
    size = _gt_box_size(batch)
    kp = body.keypoints(out.betas, R[:, 0], R[:, 1:], out.transl)
    xy = kp[..., :2] / kp[..., 2:].clamp_min(0.05)
    xy_gt = batch.keypoints3d[..., :2] / batch.keypoints3d[..., 2:].clamp_min(1e-3)
    err = ((xy - xy_gt).norm(dim=-1) / size[:, None]).clamp_max(1.0)
    vis = batch.visible.float()
    loss["kp2d"] = (err * vis).sum() / vis.sum().clamp_min(1.0)
    loss["betas"] = ((out.betas - batch.betas) ** 2).mean()
    z, z_gt = out.transl[:, 2].clamp_min(1e-3), batch.transl[:, 2]
    loss["depth"] = (z.log() - z_gt.log()).abs().mean()
    loss["centre"] = ((out.transl[:, :2] / z[:, None] - batch.transl[:, :2] / z_gt[:, None]).norm(dim=-1) / size).mean()
    loss["total"] = (config.w_rot * loss["rot"] + config.w_joints * loss["joints"] + config.w_kp2d * loss["kp2d"]
                     + config.w_betas * loss["betas"] + config.w_depth * loss["depth"]
                     + config.w_centre * loss["centre"])
    return loss


@torch.no_grad()
def evaluate_regressor(model: KeypointRegressor, body: BodyModel, batches: list[SyntheticBatch]) -> dict[str, float]:
    """Validation metrics over synthetic batches.

    returns: mpjpe_mm (24 joints, pelvis-relative), pa_mpjpe_mm, transl_err_m (SMPL transl,
        Euclidean), depth_rel_err (|dz| / z), kp2d_err_px (visible GT keypoints), pose_err_deg
        (mean geodesic angle of the 23 body rotations), orient_err_deg (global orientation)
    """
    was = model.training
    model.eval()
    sums: dict[str, float] = {}
    n_total = 0
    for batch in batches:
        out = model(batch.uv, batch.conf, batch.K)
        R = rot6d_to_matrix(out.pose6d.reshape(-1, 24, 6))
        joints = body.joints(out.betas, R[:, 0], R[:, 1:], out.transl)
        kp = body.keypoints(out.betas, R[:, 0], R[:, 1:], out.transl)
        px = (project_with_K(kp, batch.K) - batch.uv_clean).norm(dim=-1)
        vis = batch.visible.float()
        rel = R.transpose(-1, -2) @ batch.rotmats
        angle = torch.rad2deg(torch.arccos(((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))
        n = len(batch)
        vals = {
            "mpjpe_mm": mpjpe(joints, batch.joints3d, root_joints=(0,)).mean(),
            "pa_mpjpe_mm": pa_mpjpe(joints, batch.joints3d).mean(),
            "transl_err_m": (out.transl - batch.transl).norm(dim=-1).mean(),
            "depth_rel_err": ((out.transl[:, 2] - batch.transl[:, 2]).abs() / batch.transl[:, 2]).mean(),
            "kp2d_err_px": ((px * vis).sum(1) / vis.sum(1).clamp_min(1)).mean(),
            "pose_err_deg": angle[:, 1:].mean(),
            "orient_err_deg": angle[:, 0].mean(),
        }
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        n_total += n
    model.train(was)
    return {k: v / n_total for k, v in sums.items()}


def load_training_clips(fps: float, procedural_seeds: int = 3, progress: bool = False) -> list[MotionClip]:
    """All clips of the 'train' split from the motion registry (CMU train + procedural).

    fps: rate to load at
    procedural_seeds: variants of each ``synthetic/<kind>`` (seeds 0..n-1), named
        ``synthetic/<kind>#seed<s>`` (the validation split hashes the part before '#', so all
        variants of a kind fall on the same side)
    progress: tqdm bar (the first load retargets CMU clips, ~2 s each; later loads hit the cache)
    """
    import dataclasses

    from tqdm import tqdm

    from hmr_node.core.data.registry import list_motions, load_motion  # the registry reads files; import late

    names = list_motions("train")
    if not names:
        raise ValueError("list_motions('train') returned no clips")
    clips = []
    for name in tqdm(names, desc="load clips", disable=not progress):
        if name.startswith("synthetic/"):
            for seed in range(max(1, procedural_seeds)):
                clip = load_motion(name, fps=fps, seed=seed)
                clips.append(dataclasses.replace(clip, name=f"{name}#seed{seed}"))
        else:
            clips.append(load_motion(name, fps=fps))
    return clips


def validation_batches(config: RegressorTrainingConfig, body: BodyModel, val_clips: list[MotionClip], seed: int
                       ) -> list[SyntheticBatch]:
    """The fixed validation set of a training run: ``config.val_samples`` samples of the
    held-out clips, drawn with seed ``seed + 1000003`` (reproducible after training)."""
    bank = PoseBank.from_clips(val_clips, config.frame_step, mirror=False)
    sampler = SyntheticSampler(body, bank, config.samples, seed=seed + 1_000_003)
    return [sampler.sample(min(512, config.val_samples - i)) for i in range(0, config.val_samples, 512)]


def train_regressor(config: RegressorTrainingConfig, steps: int, batch: int, seed: int, out_dir,
                    progress: bool = True, *, body: BodyModel | None = None,
                    clips: list[MotionClip] | None = None,
                    on_validation: Callable[[int, dict], None] | None = None
                    ) -> tuple[KeypointRegressor, dict]:
    """Train a :class:`KeypointRegressor` from scratch on synthetic samples.

    config: training configuration
    steps: optimisation steps
    batch: samples per step
    seed: seeds the model init, the sample generators and the validation set
    out_dir: folder for ``checkpoint.pt``, ``regressor.pt`` and ``history.json``
    progress: show a tqdm progress bar
    body: body model to build samples with (None = the shipped default)
    clips: training-split clips (None = ``list_motions('train')`` from the registry); split by
        name into fit / validation clips
    on_validation: optional callback(step, metrics)
    returns: (trained model in eval mode, history dict with per-step losses and validation metrics)
    """
    if not isinstance(config, RegressorTrainingConfig):
        raise TypeError(f"config: expected RegressorTrainingConfig, got {type(config).__name__}")
    if steps < 1 or batch < 1:
        raise ValueError(f"steps, batch: expected >= 1, got {steps}, {batch}")
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if body is None:
        from hmr_node.core.body.model import load_body_model
        body = load_body_model()
    if clips is None:
        clips = load_training_clips(config.fps)
    fit_clips, val_clips = split_train_validation(clips, config.val_fraction)
    if not fit_clips or not val_clips:
        raise ValueError(f"clips: need clips on both sides of the validation split, got {len(fit_clips)} fit and "
                         f"{len(val_clips)} validation clips of {len(clips)}")
    fit_bank = PoseBank.from_clips(fit_clips, config.frame_step, config.mirror)
    val_batches = validation_batches(config, body, val_clips, seed)
    val_frames = PoseBank.from_clips(val_clips, config.frame_step).num_frames

    torch.manual_seed(seed)
    model = KeypointRegressor(config.model)
    sampler = SyntheticSampler(body, fit_bank, config.samples, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = {"step": [], "loss": [], "parts": {}, "val_step": [], "val": [], "lr": [],
               "fit_clips": [c.name for c in fit_clips], "val_clips": [c.name for c in val_clips],
               "fit_frames": fit_bank.num_frames, "val_frames": val_frames}
    meta = {"seed": seed, "steps": steps, "batch": batch, "training_config": _jsonable(asdict(config))}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="train regressor", disable=not progress, mininterval=2.0)
    model.train()
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, config)
        data = sampler.sample(batch)
        losses = regressor_losses(model(data.uv, data.conf, data.K), data, body, config)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        history["step"].append(step + 1)
        history["loss"].append(float(losses["total"].detach()))
        history["lr"].append(opt.param_groups[0]["lr"])
        for k, v in losses.items():
            if k != "total":
                history["parts"].setdefault(k, []).append(float(v.detach()))
        if (step + 1) % config.val_every == 0 or step + 1 == steps:
            metrics = evaluate_regressor(model, body, val_batches)
            history["val_step"].append(step + 1)
            history["val"].append(metrics)
            bar.set_postfix(loss=f"{np.mean(history['loss'][-50:]):.3f}", mpjpe=f"{metrics['mpjpe_mm']:.0f}",
                            pa=f"{metrics['pa_mpjpe_mm']:.0f}")
            if on_validation is not None:
                on_validation(step + 1, metrics)
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            save_regressor(out_dir / "checkpoint.pt", model, {**meta, "step": step + 1,
                                                             "wall_time_s": time.perf_counter() - t0})
    history["wall_time_s"] = time.perf_counter() - t0
    meta.update(step=steps, wall_time_s=history["wall_time_s"], val=history["val"][-1],
                fit_clips=len(fit_clips), val_clips=len(val_clips))
    save_regressor(out_dir / "regressor.pt", model, meta)
    (out_dir / "history.json").write_text(json.dumps(_jsonable(history)))
    return model.eval(), history


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


__all__ = ["RegressorTrainingConfig", "train_regressor", "regressor_losses", "evaluate_regressor", "lr_at",
           "load_training_clips", "validation_batches"]
