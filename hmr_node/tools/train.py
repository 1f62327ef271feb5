"""``hmr train regressor|denoiser|gmm``: train the shipped learned models with fixed seeds.

Each command writes into its output folder (default: the shipped location under
``hmr_node/models/<name>/``) the weights, ``MODEL_CARD.md`` (data incl. CMU attribution,
steps, wall time, final validation metrics, the exact command), ``metrics.json`` and a
training-curve PNG. Checkpoints and full histories go to a work folder (default under /tmp).

All data comes from the motion registry's 'train' split (CMU train clips retargeted to SMPL +
procedural motion); validation uses clips of that split held out by name. The 'eval' split is
never read here.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
CMU_ATTRIBUTION = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
                   "The database was created with funding from NSF EIA-0196217.")


# ---------------------------------------------------------------------- shared helpers
def _command_line(args: argparse.Namespace) -> str:
    argv = getattr(args, "argv", None) or sys.argv[1:]
    return "hmr " + " ".join(shlex.quote(a) for a in argv)


def _data_summary(clips) -> tuple[list[str], str]:
    """(names, attribution text) of the clips used."""
    names = [c.name for c in clips]
    attributions = sorted({re.sub(r";\s*kind=.*$", "", c.attribution.strip()) for c in clips
                           if c.attribution and c.attribution.strip()})
    if any(n.startswith("cmu/") for n in names) and not any("mocap.cs.cmu.edu" in a for a in attributions):
        attributions.append(CMU_ATTRIBUTION)
    return names, "\n".join(f"> {a}" for a in attributions)


def _clip_table(names: list[str]) -> str:
    groups: dict[str, int] = {}
    for n in names:
        key = "/".join(n.split("#")[0].split("/")[:2])
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{k}: {v} clips" for k, v in sorted(groups.items()))


def _plot_curve(path: Path, steps, series: dict, title: str) -> None:
    try:
        from hmr_node.tools.plots import plot_training_curve
    except ImportError:  # plots module not available: matplotlib directly
        plot_training_curve = None
    clean = {k: np.asarray(v, dtype=float) for k, v in series.items()}
    positive = all(np.all(v[np.isfinite(v)] > 0) for v in clean.values())
    if plot_training_curve is not None:
        plot_training_curve(path, np.asarray(steps, dtype=float), clean, title, log_y=positive)
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5))
    for k, v in clean.items():
        ok = np.isfinite(v)
        ax.plot(np.asarray(steps)[ok], v[ok], label=k)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _smooth(values, window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.size == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(v.size):
        lo = max(0, i - window + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def _write_json(path: Path, data: dict) -> None:
    from hmr_node.tools.report import to_jsonable
    path.write_text(json.dumps(to_jsonable(data), indent=1) + "\n")


def _body_model_id(path) -> str:
    """'<file name> sha256:<first 16 hex>' of the body model file used."""
    from hmr_node.core.body.model_file import resolve_body_model_path
    p = resolve_body_model_path(path)
    if p.is_dir():
        return str(p)
    return f"{p.name} sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"


def _retarget_version() -> int | None:
    try:
        from hmr_node.core.data.retarget import RETARGET_VERSION
    except ImportError:
        return None
    return int(RETARGET_VERSION)


def _file_size_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


# ---------------------------------------------------------------------- regressor
def run_train_regressor(args: argparse.Namespace) -> int:
    from hmr_node.core.body.model import load_body_model
    from hmr_node.core.regressor.model import RegressorConfig, load_regressor, num_parameters, save_regressor
    from hmr_node.core.regressor.synthetic_samples import split_train_validation
    from hmr_node.core.regressor.training import (
        RegressorTrainingConfig,
        evaluate_regressor,
        load_training_clips,
        train_regressor,
        validation_batches,
    )

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    work = Path(args.work_dir or f"/tmp/hmr_train_regressor_seed{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    config = RegressorTrainingConfig(
        model=RegressorConfig(hidden_dim=args.hidden, num_blocks=args.blocks, feature_dim=args.feature_dim),
        lr=args.lr, val_samples=args.val_samples, val_every=args.val_every,
        checkpoint_every=args.checkpoint_every)
    body = load_body_model(args.body_model)
    clips = load_training_clips(config.fps, progress=not args.no_progress)
    t0 = time.time()
    model, hist = train_regressor(config, args.steps, args.batch, args.seed, work, progress=not args.no_progress,
                                  body=body, clips=clips)
    wall = time.time() - t0
    # ship float16 weights (half the file) and report the metrics of exactly what ships
    save_regressor(out / "regressor.pt", model, load_regressor(work / "regressor.pt").metadata, half=args.half)
    shipped = load_regressor(out / "regressor.pt")
    _, val_clips = split_train_validation(clips, config.val_fraction)
    final = evaluate_regressor(shipped, body, validation_batches(config, body, val_clips, args.seed))
    names, attribution = _data_summary(clips)
    steps = np.asarray(hist["step"])
    vsteps = np.asarray(hist["val_step"])
    mp = np.full(steps.shape, np.nan)
    pa = np.full(steps.shape, np.nan)
    for s, m in zip(vsteps, hist["val"]):
        mp[s - 1], pa[s - 1] = m["mpjpe_mm"] / 1000.0, m["pa_mpjpe_mm"] / 1000.0
    _plot_curve(out / "training_curve.png", steps,
                {"train loss (smoothed)": _smooth(hist["loss"], 50), "val MPJPE (m)": mp, "val PA-MPJPE (m)": pa},
                "keypoint regressor training")
    metrics = {"validation": final, "validation_float32_in_training": hist["val"][-1],
               "val_history": [dict(step=int(s), **m) for s, m in zip(vsteps, hist["val"])],
               "steps": args.steps, "batch": args.batch, "seed": args.seed, "wall_time_s": wall,
               "parameters": num_parameters(model), "body_model": _body_model_id(args.body_model),
               "retarget_version": _retarget_version(), "fit_clips": hist["fit_clips"], "val_clips": hist["val_clips"],
               "fit_frames": hist["fit_frames"], "val_frames": hist["val_frames"], "command": _command_line(args),
               "training_config": dataclasses.asdict(config)}
    _write_json(out / "metrics.json", metrics)
    card = f"""# Keypoint regressor (hmr_node)

COCO-17 2D keypoints (undistorted pixels + confidences) and the camera intrinsics ->
SMPL pose (6D, global orientation in the camera optical frame), betas (10), SMPL `transl`
in the optical frame (metres) and a {config.model.feature_dim}-D feature vector c for the
ScoreHMR denoiser. Code: `hmr_node/core/regressor/`. Load with
`hmr_node.core.regressor.model.load_regressor()`.

## Model
- Residual MLP: input 54 (box-normalised keypoints in normalised camera coordinates, confidences,
  box centre / log size), hidden {config.model.hidden_dim} x {config.model.num_blocks} blocks,
  features {config.model.feature_dim}; {num_parameters(model):,} parameters,
  file {_file_size_mb(out / 'regressor.pt'):.1f} MB ({'float16' if args.half else 'float32'} weights,
  evaluated below as shipped).
- Translation: log-depth relative to the keypoint box + image offset of the SMPL origin.

## Training data (synthetic, generated on the fly)
- Poses: frames of the motion registry's **train** split at {config.fps:g} fps (one frame
  in {config.frame_step}), mirrored left/right: {_clip_table(hist['fit_clips'])}
  ({hist['fit_frames']} frames with mirrors).
- Validation: {len(hist['val_clips'])} clips of the train split held out by name
  ({hist['val_frames']} frames): {', '.join(hist['val_clips'])}. The eval split was never used.
- Each sample: a random heading (360 deg) and tilt, betas ~ N(0, 1) clipped at 3, a robot camera
  (height {config.samples.camera_height_range} m, pitch {config.samples.camera_pitch_range_deg} deg, fx
  {config.samples.focal_range} px, images {list(config.samples.image_sizes)}), person
  {config.samples.distance_range} m away anywhere in and partly out of the view, keypoints of the
  body model ({_body_model_id(args.body_model)}; motion retarget version {_retarget_version()})
  projected with K and corrupted by `hmr_node.core.scenario.keypoint_noise` at a random severity (scale {config.samples.noise_scale_range}).
- Motion data attribution:

{attribution}

## Training
- {args.steps} steps, batch {args.batch}, AdamW lr {config.lr:g} (warm-up + cosine), seed {args.seed},
  {args.threads} CPU thread(s); wall time {wall / 60:.1f} min.
- Losses: rotation matrices, pelvis-relative 3D joints, 2D reprojection, betas, log-depth, centre.

## Validation metrics ({config.val_samples} held-out synthetic samples, noise severity as in training)
| metric | value |
|---|---|
| MPJPE (24 joints, pelvis-aligned) | {final['mpjpe_mm']:.1f} mm |
| PA-MPJPE (24 joints) | {final['pa_mpjpe_mm']:.1f} mm |
| translation error | {final['transl_err_m']:.3f} m |
| relative depth error | {100 * final['depth_rel_err']:.1f} % |
| 2D keypoint error (visible) | {final['kp2d_err_px']:.1f} px |
| body joint rotation error | {final['pose_err_deg']:.1f} deg |
| global orientation error | {final['orient_err_deg']:.1f} deg |

Curve: `training_curve.png`; all numbers: `metrics.json`.

## Reproduce
```
{_command_line(args)}
```

## Limitations
Trained only on synthetic keypoints of the shipped (non-SMPL) body and CMU + procedural motion; no
image evidence, so depth and shape are ambiguous from keypoints alone; real detectors' error patterns
differ from the simulated ones.
"""
    (out / "MODEL_CARD.md").write_text(card)
    print(json.dumps({"out": str(out), "wall_time_s": round(wall, 1), **{k: round(v, 4) for k, v in final.items()}}))
    return 0


# ---------------------------------------------------------------------- denoiser
def denoiser_training_pairs(regressor, body, clips, num_samples: int, seed: int, batch: int = 2048,
                            progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, c) pairs for the denoiser: GT 6D poses of synthetic samples and the regressor's
    features of their noisy keypoints (the same generator as the regressor's training).

    regressor: trained KeypointRegressor; body: body model; clips: fit clips of the train split
    num_samples: N; seed: generator seed; batch: samples per generator call
    returns: x0 (N, 144), c (N, feature_dim)
    """
    from tqdm import tqdm

    from hmr_node.core.regressor.model import sanitize_keypoints
    from hmr_node.core.regressor.synthetic_samples import PoseBank, SyntheticSampler

    sampler = SyntheticSampler(body, PoseBank.from_clips(clips, frame_step=1, mirror=True), seed=seed)
    xs, cs = [], []
    regressor.eval()
    with torch.no_grad():
        for start in tqdm(range(0, num_samples, batch), desc="denoiser data", disable=not progress):
            data = sampler.sample(min(batch, num_samples - start))
            uv, conf, K, _ = sanitize_keypoints(data.uv, data.conf, data.K)
            xs.append(data.pose6d)
            cs.append(regressor(uv, conf, K).features)
    return torch.cat(xs), torch.cat(cs)


def run_train_denoiser(args: argparse.Namespace) -> int:
    from hmr_node.core.body.model import load_body_model
    from hmr_node.core.regressor.model import load_regressor
    from hmr_node.core.regressor.synthetic_samples import split_train_validation
    from hmr_node.core.regressor.training import load_training_clips
    from hmr_node.core.scorehmr.denoiser import DenoiserConfig, save_denoiser
    from hmr_node.core.scorehmr.denoiser_training import DenoiserTrainingConfig, train_denoiser

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    regressor = load_regressor(args.regressor)
    body = load_body_model(args.body_model)
    clips = load_training_clips(30.0, progress=not args.no_progress)
    fit_clips, val_clips = split_train_validation(clips)
    t0 = time.time()
    x0, c = denoiser_training_pairs(regressor, body, fit_clips, args.samples, args.seed,
                                    progress=not args.no_progress)
    data_time = time.time() - t0
    config = DenoiserTrainingConfig(
        model=DenoiserConfig(cond_dim=regressor.config.feature_dim, hidden_dim=args.hidden),
        num_steps=args.steps, batch_size=args.batch, seed=args.seed, lr=args.lr)
    t1 = time.time()
    model, hist = train_denoiser(x0, c, config, progress=not args.no_progress)
    train_time = time.time() - t1
    # held-out clips: the same loss on pairs from clips the denoiser never saw
    from hmr_node.core.scorehmr.denoiser_training import denoiser_validation_loss
    xv, cv = denoiser_training_pairs(regressor, body, val_clips, min(8192, args.samples), args.seed + 1,
                                     progress=False)
    ranges = ((1, 50), (51, 200), (201, config.ddim.num_train_timesteps))
    held_out = dict(zip([f"{lo}-{hi}" for lo, hi in ranges],
                        denoiser_validation_loss(model, xv, cv, config.ddim, ranges)))
    meta = {"steps": args.steps, "batch": args.batch, "seed": args.seed, "samples": args.samples,
            "regressor": str(args.regressor or "shipped"), "body_model": _body_model_id(args.body_model),
            "retarget_version": _retarget_version(), "wall_time_s": data_time + train_time,
            "val_loss_by_t": hist.get("val_loss_by_t"), "held_out_clip_loss_by_t": held_out,
            "command": _command_line(args)}
    save_denoiser(out / "denoiser.pt", model, config.model, meta)
    _plot_curve(out / "training_curve.png", hist["step"],
                {"train loss": hist["loss"], "val loss (random split)": hist["val_loss"]},
                "pose denoiser training (Eq. 11)")
    names, attribution = _data_summary(clips)
    _write_json(out / "metrics.json", {**meta, "history": hist, "fit_clips": [c.name for c in fit_clips],
                                       "val_clips": [c.name for c in val_clips],
                                       "training_config": dataclasses.asdict(config)})
    n_params = sum(p.numel() for p in model.parameters())
    by_t = hist.get("val_loss_by_t") or {}
    rows = "\n".join(f"| {k} | {by_t.get(k, float('nan')):.4f} | {held_out[k]:.4f} |" for k in held_out)
    card = f"""# Pose denoiser eps(x_t, t, c) (hmr_node, ScoreHMR Section 4.2)

Epsilon-prediction MLP over the 144-D 6D pose (global orientation in the camera optical frame +
23 body joints), conditioned on the keypoint regressor's features c ({regressor.config.feature_dim}-D).
Code: `hmr_node/core/scorehmr/denoiser.py`; load with `load_denoiser()`.

## Model
- hidden {config.model.hidden_dim}, {config.model.num_blocks} residual blocks, timestep scale/shift,
  concatenated c; {n_params:,} parameters; file {_file_size_mb(out / 'denoiser.pt'):.1f} MB.
- T = {config.ddim.num_train_timesteps} cosine schedule, simple loss (Eq. 11), EMA {config.ema_decay}.

## Data
- {args.samples} synthetic samples from the regressor's generator on the **train** split's fit clips
  ({_clip_table([c.name for c in fit_clips])}), mirrored; x0 = GT pose, c = features of the regressor
  (`{args.regressor or 'shipped regressor.pt'}`) on the noisy keypoints of the same sample.
- Held-out check: {min(8192, args.samples)} samples from the {len(val_clips)} validation clips of the
  train split. The eval split was never used.
- Motion data attribution:

{attribution}

## Training
- {args.steps} steps, batch {args.batch}, lr {args.lr:g}, seed {args.seed}, {args.threads} thread(s);
  data generation {data_time / 60:.1f} min + training {train_time / 60:.1f} min.

## Validation loss (mean squared eps error per dimension) by timestep range
| t range | random 5% split | held-out clips |
|---|---|---|
{rows}

## Reproduce
```
{_command_line(args)}
```
"""
    (out / "MODEL_CARD.md").write_text(card)
    print(json.dumps({"out": str(out), "held_out_clip_loss_by_t": held_out, "wall_time_s": meta["wall_time_s"]}))
    return 0


# ---------------------------------------------------------------------- GMM
def run_train_gmm(args: argparse.Namespace) -> int:
    from hmr_node.core.data.mirror import mirror_smpl_params
    from hmr_node.core.priors.gmm import GmmPosePrior, fit_pose_gmm, save_pose_gmm
    from hmr_node.core.regressor.synthetic_samples import split_train_validation
    from hmr_node.core.regressor.training import load_training_clips

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = [c for c in load_training_clips(args.fps, progress=not args.no_progress) if c.name.startswith("cmu/")]
    if not clips:
        raise ValueError("no CMU clips in list_motions('train')")
    fit_clips, val_clips = split_train_validation(clips)

    def poses(cs):
        bp = np.concatenate([np.asarray(c.body_pose, dtype=np.float64) for c in cs])
        if args.mirror:
            _, mbp, _ = mirror_smpl_params(np.zeros((bp.shape[0], 3)), bp, np.zeros((bp.shape[0], 3)))
            bp = np.concatenate([bp, mbp])
        return bp.reshape(-1, 69)

    x_fit, x_val = poses(fit_clips), poses(val_clips)
    t0 = time.time()
    gmm = fit_pose_gmm(x_fit, num_components=args.components, seed=args.seed, reg=args.reg,
                       progress=not args.no_progress)
    wall = time.time() - t0
    prior = GmmPosePrior(gmm, mode="sum")
    with torch.no_grad():
        nll_fit = float(prior(torch.as_tensor(x_fit, dtype=torch.float32)).mean())
        nll_val = float(prior(torch.as_tensor(x_val, dtype=torch.float32)).mean())
        rng = np.random.default_rng(args.seed)
        rand = rng.uniform(-1.0, 1.0, size=(2000, 69))  # implausible: every joint rotated at random
        nll_rand = float(prior(torch.as_tensor(rand, dtype=torch.float32)).mean())
    names, attribution = _data_summary(clips)
    meta = {"data": "CMU train clips (registry 'train' split, cmu/*), retargeted to the body model",
            "body_model": _body_model_id(None), "retarget_version": _retarget_version(),
            "fps": args.fps, "mirror": args.mirror, "fit_clips": [c.name for c in fit_clips],
            "val_clips": [c.name for c in val_clips], "fit_frames": int(x_fit.shape[0]),
            "components": args.components, "reg": args.reg, "seed": args.seed, "iterations": gmm.iterations,
            "converged": gmm.converged, "wall_time_s": wall, "mean_nll_fit": nll_fit, "mean_nll_val": nll_val,
            "mean_nll_uniform_random_poses": nll_rand, "command": _command_line(args)}
    path = save_pose_gmm(out / "pose_gmm.npz", gmm, meta)
    _write_json(out / "metrics.json", meta)
    card = f"""# GMM pose prior (hmr_node, SMPLify-style)

A {args.components}-component full-covariance Gaussian mixture over the 69-D SMPL body pose
(axis-angle, joints 1..23), fitted by EM (`hmr_node.core.priors.gmm.fit_pose_gmm`) on CMU motion
capture as SMPLify's was. Load with `load_pose_prior()`; used by the SMPLify baseline
(`hmr_node.core.smplify`).

## Data
- {len(fit_clips)} CMU clips of the registry's **train** split at {args.fps:g} fps, retargeted to
  {meta['body_model']} (retarget version {meta['retarget_version']})
  ({x_fit.shape[0]} poses{' incl. left/right mirrors' if args.mirror else ''}); {len(val_clips)}
  train clips held out by name for the check below ({x_val.shape[0]} poses). Eval clips never used.
- Attribution:

{attribution}

## Fit
- EM: {gmm.iterations} iterations (converged: {gmm.converged}), diagonal regulariser {args.reg:g} rad^2,
  seed {args.seed}, {wall:.1f} s. File {_file_size_mb(path) * 1000:.0f} kB.

## Mean negative log-density (exact mixture, nats; lower = more plausible)
| poses | mean NLL |
|---|---|
| fit clips | {nll_fit:.1f} |
| held-out train clips | {nll_val:.1f} |
| uniform random joint rotations in [-1, 1] rad | {nll_rand:.1f} |

## Reproduce
```
{_command_line(args)}
```
"""
    (out / "MODEL_CARD.md").write_text(card)
    print(json.dumps({k: meta[k] for k in ("iterations", "converged", "mean_nll_fit", "mean_nll_val",
                                           "mean_nll_uniform_random_poses", "wall_time_s")}))
    return 0


# ---------------------------------------------------------------------- CLI
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train`` with subcommands ``regressor``, ``denoiser`` and ``gmm``."""
    train = subparsers.add_parser("train", help="train the learned models (fixed seeds, model cards)")
    sub = train.add_subparsers(dest="train_model", metavar="MODEL")

    def common(p, out_name, steps, batch, seed=0):
        p.add_argument("--out", default=str(MODELS_DIR / out_name), help="folder for weights, card, curve")
        p.add_argument("--steps", type=int, default=steps, help="optimisation steps")
        p.add_argument("--batch", type=int, default=batch, help="batch size")
        p.add_argument("--seed", type=int, default=seed, help="random seed")
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        p.add_argument("--body-model", default=None, help="SMPL-format body file (default: shipped)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    r = sub.add_parser("regressor", help="the keypoint regressor")
    common(r, "regressor", 6000, 128)
    r.add_argument("--hidden", type=int, default=512, help="trunk width")
    r.add_argument("--blocks", type=int, default=3, help="residual blocks")
    r.add_argument("--feature-dim", type=int, default=128, help="size of the features c")
    r.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    r.add_argument("--val-samples", type=int, default=2048, help="validation samples")
    r.add_argument("--val-every", type=int, default=500, help="validate every N steps")
    r.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint every N steps")
    r.add_argument("--work-dir", default=None, help="checkpoints and history (default /tmp/...)")
    r.add_argument("--no-half", dest="half", action="store_false", help="ship float32 instead of float16 weights")
    r.set_defaults(func=run_train_regressor)

    d = sub.add_parser("denoiser", help="the ScoreHMR pose denoiser (needs a trained regressor)")
    common(d, "denoiser", 20000, 512)
    d.add_argument("--regressor", default=None, help="regressor checkpoint (default: shipped)")
    d.add_argument("--samples", type=int, default=200000, help="(x0, c) training pairs to generate")
    d.add_argument("--hidden", type=int, default=256, help="denoiser width")
    d.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    d.set_defaults(func=run_train_denoiser)

    g = sub.add_parser("gmm", help="the GMM pose prior on CMU train poses")
    g.add_argument("--out", default=str(MODELS_DIR / "priors"), help="folder for pose_gmm.npz and its card")
    g.add_argument("--components", type=int, default=8, help="mixture components")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("--fps", type=float, default=30.0, help="rate the clips are sampled at")
    g.add_argument("--reg", type=float, default=1e-4, help="covariance diagonal regulariser (rad^2)")
    g.add_argument("--no-mirror", dest="mirror", action="store_false", help="do not add mirrored poses")
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=run_train_gmm)

    def _usage(args):
        train.print_help()
        return 2

    train.set_defaults(func=_usage)
    return train


__all__ = ["add_parser", "run_train_regressor", "run_train_denoiser", "run_train_gmm", "denoiser_training_pairs"]
