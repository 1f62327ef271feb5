"""``hmr bench scorehmr``: accuracy and speed of regression, SMPLify and ScoreHMR (ours and the
upstream default configuration), in the same command, on scenarios built from CMU ``eval/``.

Modes (the ScoreHMR paper's tables, on our data):

* ``single`` (Table 2 analogue): every ``single_stride``-th detected person-frame of the eval
  scenarios; regression, regression + SMPLify, regression + ScoreHMR (ours / upstream).
* ``multiview`` (Table 3 analogue): the same people seen by 2-4 synchronised cameras
  (:mod:`hmr_node.core.scenario.multiview`); per-view regression vs multi-view ScoreHMR (Eq. 13);
  ``results.multiview.<method>`` pools the view counts, ``results.multiview.by_views`` splits them.
* ``video`` (Table 4 analogue): each person's track; regression, SMPLify with a smoothness term
  (offline windows), our online sliding-window ScoreHMR, and the upstream configuration run
  offline on whole windows as upstream does.

Metrics over SMPL's 24 joints: MPJPE (pelvis-aligned) and PA-MPJPE in mm, PA-MPJPE over the
14 LSP joints, acceleration error in mm/s^2 (pelvis-aligned joints). Tuning uses
``--split train`` (scenarios from CMU train motions); reported numbers use ``--split eval``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from hmr_node.core.body import load_body_model
from hmr_node.core.body.skeleton import LSP14_FROM_SMPL
from hmr_node.core.geometry.rotations import rot6d_to_matrix
from hmr_node.core.metrics import accel_error, mpjpe, pa_mpjpe
from hmr_node.core.priors.gmm import load_pose_prior
from hmr_node.core.regressor.model import load_regressor, predict
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.core.scenario.multiview import MultiViewConfig, simulate_multiview
from hmr_node.core.scenario.simulate import simulate_scenario
from hmr_node.core.scorehmr.denoiser import load_denoiser
from hmr_node.core.scorehmr.online import OnlineWindowRefiner
from hmr_node.core.scorehmr.refiner import ScoreHmrConfig, ScoreHmrRefiner
from hmr_node.core.smplify.fitting import Smplify, SmplifyConfig
from hmr_node.tools.report import markdown_table, write_json_report
from hmr_node.tools.scenario import resolve_motions

METHODS = ("regression", "smplify", "scorehmr", "scorehmr_upstream")


@dataclass(frozen=True)
class ScoreHmrBenchConfig:
    """seeds: scenario seeds; people/frames/fps/split: each scenario; single_stride: every k-th
    frame enters single-frame mode; max_single: most person-frames in single-frame mode;
    min_keypoints: detected keypoints a person-frame needs; views: multi-view view counts;
    multiview_people: people per view count; video_max_tracks: most tracks in video mode;
    video_min_frames: shortest track segment kept; smplify_window: frames per offline SMPLify
    window in video mode; speed_repeats: timed calls per speed measurement; chunk: batch size
    of the accuracy runs; threads: torch threads; regressor/denoiser/prior: checkpoints (None =
    shipped)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    people: int = 2
    frames: int = 150
    fps: float = 30.0
    split: str = "eval"
    single_stride: int = 3
    max_single: int = 360
    min_keypoints: int = 6
    views: tuple[int, ...] = (2, 3, 4)
    multiview_people: int = 60
    video_max_tracks: int = 8
    video_min_frames: int = 30
    smplify_window: int = 32
    speed_repeats: int = 5
    chunk: int = 60
    threads: int = 1
    regressor: str | None = None
    denoiser: str | None = None
    prior: str | None = None

    def __post_init__(self) -> None:
        for name in ("people", "frames", "single_stride", "max_single", "min_keypoints", "multiview_people",
                     "video_max_tracks", "video_min_frames", "smplify_window", "speed_repeats", "chunk", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if not self.fps > 0:
            raise ValueError(f"fps: expected > 0, got {self.fps}")
        if self.split not in ("train", "eval"):
            raise ValueError(f"split: expected 'train' or 'eval', got {self.split!r}")
        if not self.seeds:
            raise ValueError("seeds: need at least one scenario seed")
        if any(n < 1 for n in self.views):
            raise ValueError(f"views: view counts must be >= 1, got {self.views}")

    @classmethod
    def quick(cls, **overrides) -> "ScoreHmrBenchConfig":
        """A minutes-long version for smoke runs and tests (same code, fewer samples)."""
        base = dict(seeds=(0,), people=1, frames=48, single_stride=4, max_single=12, views=(2,),
                    multiview_people=4, video_max_tracks=1, video_min_frames=24, speed_repeats=1, chunk=12)
        base.update(overrides)
        return cls(**base)


# ---------------------------------------------------------------------- data
@dataclass
class PersonFrames:
    """Detections and camera-frame ground truth of the selected person-frames (N rows)."""

    uv: np.ndarray          # (N, 17, 2)
    conf: np.ndarray        # (N, 17)
    K: np.ndarray           # (N, 3, 3)
    image_size: np.ndarray  # (N, 2)
    gt_orient: np.ndarray   # (N, 3, 3) optical frame
    gt_pose: np.ndarray     # (N, 23, 3, 3)
    gt_transl: np.ndarray   # (N, 3)
    gt_betas: np.ndarray    # (N, S)
    stamp: np.ndarray       # (N,) seconds
    track: np.ndarray       # (N,) track key (scenario * 100 + person)

    def take(self, idx) -> "PersonFrames":
        return PersonFrames(**{k: v[idx] for k, v in self.__dict__.items()})

    def observation(self) -> KeypointObservation:
        t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return KeypointObservation(t(self.uv), t(self.conf), t(self.K), t(self.image_size))

    def __len__(self) -> int:
        return len(self.uv)


def simulate_eval_people(cfg: ScoreHmrBenchConfig, body64) -> tuple[PersonFrames, list]:
    """All detected person-frames of the benchmark scenarios (and the simulations, for multi-view)."""
    rows, sims = [], []
    for s_i, seed in enumerate(cfg.seeds):
        sc = ScenarioConfig(seed=seed, people=cfg.people, frames=cfg.frames, fps=cfg.fps, split=cfg.split,
                            render=False)
        sim = simulate_scenario(sc, body64, resolve_motions(sc))
        sims.append(sim)
        K = sim.camera.K
        for p in sim.people:
            ok = (p.conf > 0).sum(-1) >= cfg.min_keypoints
            for t in np.flatnonzero(ok):
                rows.append((p.uv[t], p.conf[t], K, (sim.camera.width, sim.camera.height), p.camera_orient[t],
                             p.body_pose[t], p.camera_transl[t], p.betas, sim.times[t], s_i * 100 + p.index))
    if not rows:
        raise ValueError("no detected person-frames in the benchmark scenarios (check seeds/frames/people)")
    cols = list(zip(*rows))
    return PersonFrames(*(np.asarray(c, dtype=np.float64) for c in cols[:-1]), np.asarray(cols[-1])), sims


# ---------------------------------------------------------------------- evaluation helpers
def _joints(body, orient, pose, transl, betas) -> torch.Tensor:
    f = lambda a: torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=body.J_template.dtype)  # noqa: E731
    with torch.no_grad():
        return body.joints(f(betas), f(orient), f(pose), f(transl))


def _pred_joints(body, pose6d: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor) -> torch.Tensor:
    R = rot6d_to_matrix(pose6d.reshape(-1, 24, 6).double())
    return _joints(body, R[:, 0], R[:, 1:], transl.double(), betas.double())


def _pose_metrics(pred: torch.Tensor, gt: torch.Tensor) -> dict:
    return {
        "mpjpe": float(mpjpe(pred, gt, root_joints=(0,)).mean()),
        "pa_mpjpe": float(pa_mpjpe(pred, gt).mean()),
        "pa_mpjpe_14": float(pa_mpjpe(pred, gt, joints=LSP14_FROM_SMPL).mean()),
        "count": int(pred.shape[0]),
    }


def _cat(outs: list[RegressorOutput]) -> RegressorOutput:
    return RegressorOutput(*(torch.cat([getattr(o, k) for o in outs]) for k in ("pose6d", "betas", "transl", "features")))


class Methods:
    """The four estimators on a batch of observations, each returning a RegressorOutput."""

    def __init__(self, cfg: ScoreHmrBenchConfig, body32):
        self.regressor = load_regressor(cfg.regressor)
        denoiser = load_denoiser(cfg.denoiser)
        self.ours_cfg = ScoreHmrConfig()
        self.upstream_cfg = ScoreHmrConfig.upstream_default()
        self.scorehmr = ScoreHmrRefiner(denoiser, body32, self.ours_cfg)
        self.upstream = ScoreHmrRefiner(denoiser, body32, self.upstream_cfg)
        self.smplify = Smplify(body32, load_pose_prior(cfg.prior), SmplifyConfig())

    def regression(self, obs: KeypointObservation) -> RegressorOutput:
        return predict(self.regressor, obs.uv, obs.conf, obs.K)

    def run(self, method: str, reg: RegressorOutput, obs: KeypointObservation) -> RegressorOutput:
        if method == "regression":
            return reg
        if method == "smplify":
            return self.smplify.fit(reg, obs).to_output(reg.features)
        refiner = self.scorehmr if method == "scorehmr" else self.upstream
        r = refiner.refine(reg, obs)
        return RegressorOutput(r.pose6d, r.betas, r.transl, reg.features)


# ---------------------------------------------------------------------- modes
def run_single(cfg, methods: Methods, body64, data: PersonFrames) -> dict:
    idx = np.arange(0, len(data), cfg.single_stride)[: cfg.max_single]
    sel = data.take(idx)
    gt = _joints(body64, sel.gt_orient, sel.gt_pose, sel.gt_transl, sel.gt_betas)
    results, seconds = {}, {}
    for m in METHODS:
        outs, t0 = [], time.perf_counter()
        for a in tqdm(range(0, len(sel), cfg.chunk), desc=f"single/{m}", leave=False):
            part = sel.take(slice(a, a + cfg.chunk))
            obs = part.observation()
            outs.append(methods.run(m, methods.regression(obs), obs))
        seconds[m] = time.perf_counter() - t0
        out = _cat(outs)
        results[m] = _pose_metrics(_pred_joints(body64, out.pose6d, out.betas, out.transl), gt)
        results[m]["batched_ms_per_frame"] = 1e3 * seconds[m] / len(sel)
    return results


def run_multiview(cfg, methods: Methods, body64, sims) -> dict:
    """Per view count: per-view regression, per-view ScoreHMR (single), multi-view ScoreHMR."""
    rng = np.random.default_rng(1234)
    # ground-truth bodies in the world from the eval scenarios' people
    pool = [(p, t) for sim in sims for p in sim.people for t in np.flatnonzero(p.active)]
    results = {}
    for n_views in cfg.views:
        pick = rng.choice(len(pool), size=min(cfg.multiview_people, len(pool)), replace=False)
        go = np.stack([pool[i][0].world_orient[pool[i][1]] for i in pick])
        bp = np.stack([pool[i][0].body_pose[pool[i][1]] for i in pick])
        tr = np.stack([pool[i][0].world_transl[pool[i][1]] for i in pick])
        betas = np.stack([pool[i][0].betas for i in pick])
        camera = sims[0].camera
        mv = simulate_multiview(body64, go, bp, tr, betas, camera, rng, MultiViewConfig(num_views=n_views))
        N, B = mv.uv.shape[:2]
        f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        obs_views = [KeypointObservation(f(mv.uv[n]), f(mv.conf[n]), f(np.broadcast_to(mv.K, (B, 3, 3)).copy()),
                                         f(np.broadcast_to(mv.image_size, (B, 2)).copy())) for n in range(N)]
        regs = [methods.regression(o) for o in obs_views]
        gt = torch.cat([_joints(body64, mv.global_orient[n], mv.body_pose, mv.transl[n], mv.betas) for n in range(N)])
        reg_all = _cat(regs)
        single = _cat([methods.run("scorehmr", r, o) for r, o in zip(regs, obs_views)])
        t0 = time.perf_counter()
        multi = methods.scorehmr.refine_multiview(regs, obs_views)
        mv_seconds = time.perf_counter() - t0
        results[f"{n_views}_views"] = {
            "regression": _pose_metrics(_pred_joints(body64, reg_all.pose6d, reg_all.betas, reg_all.transl), gt),
            "scorehmr_single_view": _pose_metrics(_pred_joints(body64, single.pose6d, single.betas, single.transl), gt),
            "scorehmr": _pose_metrics(_pred_joints(body64, multi.pose6d, multi.betas, multi.transl), gt),
            "scorehmr_ms_per_person": 1e3 * mv_seconds / B,
        }
    # the release checks read results.multiview.<method>.<metric>: pool the view counts
    pooled = {}
    for m in ("regression", "scorehmr_single_view", "scorehmr"):
        rows = [r[m] for r in results.values()]
        n = sum(r["count"] for r in rows)
        pooled[m] = {k: sum(r[k] * r["count"] for r in rows) / n for k in ("mpjpe", "pa_mpjpe", "pa_mpjpe_14")}
        pooled[m]["count"] = n
    return {**pooled, "by_views": results}


def _segments(data: PersonFrames, fps: float, min_frames: int) -> list[np.ndarray]:
    """Index arrays of consecutive frames (no lost frame) of each track."""
    segs = []
    for key in np.unique(data.track):
        idx = np.flatnonzero(data.track == key)
        gaps = np.flatnonzero(np.diff(data.stamp[idx]) > 1.5 / fps)
        for part in np.split(idx, gaps + 1):
            if len(part) >= min_frames:
                segs.append(part)
    return segs


def run_video(cfg, methods: Methods, body64, data: PersonFrames) -> dict:
    segs = _segments(data, cfg.fps, cfg.video_min_frames)[: cfg.video_max_tracks]
    if not segs:
        return {"note": f"no track segment of >= {cfg.video_min_frames} frames"}
    per_method: dict[str, list] = {m: [] for m in METHODS}
    gts, seconds = [], {m: 0.0 for m in METHODS}
    online_delays = []
    for seg in tqdm(segs, desc="video", leave=False):
        part = data.take(seg)
        obs = part.observation()
        gts.append(_joints(body64, part.gt_orient, part.gt_pose, part.gt_transl, part.gt_betas))
        reg = methods.regression(obs)
        per_method["regression"].append(reg)
        # SMPLify with a smoothness term, offline windows
        t0 = time.perf_counter()
        fits = []
        for a in range(0, len(seg), cfg.smplify_window):
            sl = slice(a, a + cfg.smplify_window)
            sub_reg = RegressorOutput(reg.pose6d[sl], reg.betas[sl], reg.transl[sl], reg.features[sl])
            sub_obs = KeypointObservation(obs.uv[sl], obs.conf[sl], obs.K[sl], obs.image_size[sl])
            fits.append(methods.smplify.fit_window(sub_reg, sub_obs).to_output(sub_reg.features))
        per_method["smplify"].append(_cat(fits))
        seconds["smplify"] += time.perf_counter() - t0
        # ours: causal online sliding window
        t0 = time.perf_counter()
        online = OnlineWindowRefiner(methods.scorehmr)
        emitted = []
        for i in range(len(seg)):
            r_i = RegressorOutput(reg.pose6d[i:i + 1], reg.betas[i:i + 1], reg.transl[i:i + 1], reg.features[i:i + 1])
            o_i = KeypointObservation(obs.uv[i:i + 1], obs.conf[i:i + 1], obs.K[i:i + 1], obs.image_size[i:i + 1])
            emitted += online.push(r_i, o_i, float(part.stamp[i]))
        emitted += online.flush()
        seconds["scorehmr"] += time.perf_counter() - t0
        emitted.sort(key=lambda e: e.index)
        online_delays += [e.delay_frames for e in emitted]
        per_method["scorehmr"].append(RegressorOutput(torch.stack([e.pose6d for e in emitted]),
                                                      torch.stack([e.betas for e in emitted]),
                                                      torch.stack([e.transl for e in emitted]), reg.features))
        # upstream configuration, offline on whole windows of the track
        t0 = time.perf_counter()
        ups = []
        W = methods.upstream_cfg.window
        for a in range(0, len(seg), W):
            sl = slice(a, a + W)
            sub_reg = RegressorOutput(reg.pose6d[sl], reg.betas[sl], reg.transl[sl], reg.features[sl])
            sub_obs = KeypointObservation(obs.uv[sl], obs.conf[sl], obs.K[sl], obs.image_size[sl])
            r = methods.upstream.refine_window(sub_reg, sub_obs)
            ups.append(RegressorOutput(r.pose6d, r.betas, r.transl, sub_reg.features))
        per_method["scorehmr_upstream"].append(_cat(ups))
        seconds["scorehmr_upstream"] += time.perf_counter() - t0
    results = {}
    n_frames = sum(len(s) for s in segs)
    for m in METHODS:
        preds = [_pred_joints(body64, o.pose6d, o.betas, o.transl) for o in per_method[m]]
        allp, allg = torch.cat(preds), torch.cat(gts)
        res = _pose_metrics(allp, allg)
        acc = [accel_error(p - p[:, :1], g - g[:, :1], fps=cfg.fps) for p, g in zip(preds, gts)]
        res["accel"] = float(torch.cat([a.reshape(-1) for a in acc]).mean()) * 1000.0  # m/s^2 -> mm/s^2
        if m != "regression":
            res["ms_per_frame"] = 1e3 * seconds[m] / n_frames
        results[m] = res
    results["tracks"] = len(segs)
    results["frames"] = n_frames
    results["online_delay_frames"] = {"min": int(min(online_delays)), "max": int(max(online_delays)),
                                      "mean": float(np.mean(online_delays))}
    return results


def _median_ms(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def run_speed(cfg, methods: Methods, data: PersonFrames) -> dict:
    """ms per frame for 1 person and per person in a batch of 8 (single-frame mode), and the
    video-mode throughput of one track (regression + online window, amortised)."""
    out = {}
    for m in METHODS:
        row = {}
        for B, key in ((1, "ms_per_frame"), (8, "ms_per_frame_batch8")):
            part = data.take(np.arange(min(B, len(data))))
            obs = part.observation()
            if m == "regression":
                row[key] = _median_ms(lambda: methods.regression(obs), cfg.speed_repeats) / len(part)
            else:
                reg = methods.regression(obs)
                reps = 1 if m == "scorehmr_upstream" else cfg.speed_repeats
                row[key] = _median_ms(lambda: methods.run(m, reg, obs), reps) / len(part)
        out[m] = row
    # video mode, one person, 30 fps stream: regression + online sliding window per frame
    segs = _segments(data, cfg.fps, 2)
    seg = max(segs, key=len)
    part = data.take(seg)
    obs_all = part.observation()
    online = OnlineWindowRefiner(methods.scorehmr)
    t0 = time.perf_counter()
    for i in range(len(seg)):
        o_i = KeypointObservation(obs_all.uv[i:i + 1], obs_all.conf[i:i + 1], obs_all.K[i:i + 1],
                                  obs_all.image_size[i:i + 1])
        online.push(methods.regression(o_i), o_i, float(part.stamp[i]))
    online.flush()
    per_frame = 1e3 * (time.perf_counter() - t0) / len(seg)
    out["scorehmr_video"] = {"ms_per_frame": per_frame, "fps": 1e3 / per_frame, "frames": int(len(seg))}
    return out


def _goals(results: dict, speed: dict) -> dict:
    s, v = results["single"], results.get("video", {})
    g = {}
    reg, shmr, smp, ups = (s[m]["pa_mpjpe"] for m in ("regression", "scorehmr", "smplify", "scorehmr_upstream"))
    g["single_pa_mpjpe_gain_pct"] = 100 * (reg - shmr) / reg
    g["single_smplify_gain_pct"] = 100 * (reg - smp) / reg
    g["single_ok"] = g["single_pa_mpjpe_gain_pct"] >= 10 and g["single_smplify_gain_pct"] < g["single_pa_mpjpe_gain_pct"]
    if "regression" in v:
        g["video_accel_cut_pct"] = 100 * (v["regression"]["accel"] - v["scorehmr"]["accel"]) / v["regression"]["accel"]
        g["video_ok"] = g["video_accel_cut_pct"] >= 40 and v["scorehmr"]["pa_mpjpe"] <= v["regression"]["pa_mpjpe"]
    mv = results.get("multiview", {}).get("by_views", {})
    if mv:
        cuts = {k: 100 * (r["regression"]["mpjpe"] - r["scorehmr"]["mpjpe"]) / r["regression"]["mpjpe"]
                for k, r in mv.items()}
        g["multiview_mpjpe_cut_pct"] = cuts
        g["multiview_ok"] = all(c >= 15 for c in cuts.values())
    g["speedup_vs_upstream"] = speed["scorehmr_upstream"]["ms_per_frame"] / speed["scorehmr"]["ms_per_frame"]
    g["pa_mpjpe_ours_minus_upstream_mm"] = shmr - ups
    g["speed_ok"] = g["speedup_vs_upstream"] >= 10 and shmr <= ups + 1.0
    g["video_fps"] = speed["scorehmr_video"]["fps"]
    g["video_realtime_ok"] = g["video_fps"] >= 30
    return g


def run_scorehmr_bench(cfg: ScoreHmrBenchConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    body64 = load_body_model(dtype=torch.float64)
    body32 = load_body_model()
    methods = Methods(cfg, body32)
    data, sims = simulate_eval_people(cfg, body64)
    results = {"single": run_single(cfg, methods, body64, data)}
    results["multiview"] = run_multiview(cfg, methods, body64, sims)
    results["video"] = run_video(cfg, methods, body64, data)
    speed = run_speed(cfg, methods, data)
    return {
        "config": asdict(cfg),
        "scorehmr_config": asdict(methods.ours_cfg),
        "upstream_config": asdict(methods.upstream_cfg),
        "units": {"mpjpe": "mm (pelvis-aligned)", "pa_mpjpe": "mm", "pa_mpjpe_14": "mm (LSP-14 joints)",
                  "accel": "mm/s^2 (pelvis-aligned joints)", "ms_per_frame": "ms"},
        "data": {"person_frames": len(data), "split": cfg.split, "seeds": list(cfg.seeds),
                 "motions": sorted({p.motion for sim in sims for p in sim.people})},
        "results": results,
        "speed": speed,
        "goals": _goals(results, speed),
    }


def summary_table(report: dict) -> str:
    """Markdown tables of the report (single / video / multi-view / speed)."""
    rows = []
    for mode in ("single", "video"):
        for m in METHODS:
            r = report["results"][mode].get(m)
            if r:
                rows.append({"mode": mode, "method": m, "PA-MPJPE": r["pa_mpjpe"], "PA-MPJPE-14": r["pa_mpjpe_14"],
                             "MPJPE": r["mpjpe"], "accel": r.get("accel"),
                             "ms/frame (1 person)": report["speed"][m]["ms_per_frame"] if mode == "single" else r.get("ms_per_frame")})
    for k, r in report["results"]["multiview"]["by_views"].items():
        for m in ("regression", "scorehmr_single_view", "scorehmr"):
            rows.append({"mode": f"multiview {k}", "method": m, "PA-MPJPE": r[m]["pa_mpjpe"],
                         "PA-MPJPE-14": r[m]["pa_mpjpe_14"], "MPJPE": r[m]["mpjpe"]})
    return markdown_table(rows)


def add_bench_parser(bench_sub) -> None:
    p = bench_sub.add_parser("scorehmr", help="ScoreHMR vs regression vs SMPLify: accuracy and speed")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--seed", type=int, nargs="+", default=None, help="scenario seeds (default 0 1 2)")
    p.add_argument("--quick", action="store_true", help="a short smoke version of the same benchmark")
    p.add_argument("--split", choices=("train", "eval"), default="eval",
                   help="motions for the scenarios: eval reports, train tunes")
    p.add_argument("--regressor", default=None)
    p.add_argument("--denoiser", default=None)
    p.add_argument("--prior", default=None)
    p.add_argument("--threads", type=int, default=ScoreHmrBenchConfig.threads)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    over = dict(split=args.split, regressor=args.regressor, denoiser=args.denoiser, prior=args.prior,
                threads=args.threads)
    if args.seed:
        over["seeds"] = tuple(args.seed)
    cfg = ScoreHmrBenchConfig.quick(**over) if args.quick else replace(ScoreHmrBenchConfig(), **over)
    report = run_scorehmr_bench(cfg)
    write_json_report(args.json, report)
    print(summary_table(report))
    print({k: v for k, v in report["goals"].items()})
    return 0
