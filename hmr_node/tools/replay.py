"""``hmr replay`` and ``hmr demo``: run the perception pipeline over a rosbag2 recording.

``hmr replay BAG --out DIR`` reads the camera info and ``/people/keypoints`` of a bag (the
scenario format; any bag with those topics), runs :class:`hmr_node.core.pipeline.PeoplePipeline`
frame by frame exactly as the node would, and writes into DIR:

* ``estimates/`` - a rosbag2 (mcap) with ``/hmr/people`` (camera-rate estimates, stage FAST),
  ``/hmr/people_refined`` (sliding-window ScoreHMR, stage REFINED, stamped with the frame they
  describe) and ``/tf`` (``body_<track>`` frames of the fast estimates at each pelvis);
* ``report.json`` / ``report.md`` - accuracy against the bag's ground truth when it has some
  (MPJPE, PA-MPJPE, acceleration error, root position error per stage), per-frame compute
  latency percentiles and the refinement delay;
* ``trajectories.png`` (top view of each person's pelvis in the camera frame: ground truth,
  fast, refined) and ``per_joint_errors.png``.

``hmr demo --out DIR`` first makes a scenario from CMU ``eval/`` motions (``hmr scenario make``)
and then replays it.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from hmr_node.core.body import load_body_model
from hmr_node.core.body.skeleton import SMPL_JOINT_NAMES
from hmr_node.core.metrics import accel_error, latency_percentiles, mpjpe, pa_mpjpe, per_joint_errors
from hmr_node.core.pipeline import STAGE_FAST, STAGE_REFINED, PeoplePipeline, PersonDetection, PipelineConfig
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.tools.message_builders import MessageBuilder
from hmr_node.tools.msg_types import msg_type_name
from hmr_node.tools.plots import plot_per_joint_errors, plot_trajectory_topview
from hmr_node.tools.report import markdown_table, write_json_report
from hmr_node.tools.scenario import make_scenario
from hmr_node.tools.scenario_reader import Scenario, read_scenario

STAGES = {STAGE_FAST: "fast", STAGE_REFINED: "refined"}
TOPICS = {STAGE_FAST: "/hmr/people", STAGE_REFINED: "/hmr/people_refined"}


def run_pipeline(scn: Scenario, config: PipelineConfig, progress: bool = True):
    """Replay the detections of ``scn`` through the pipeline.

    returns: (estimates: list[PersonEstimate] of both stages, per-frame compute seconds (T,))
    """
    pipe = PeoplePipeline(config)
    estimates, latency = [], []
    t0_ns = int(scn.stamps[0])
    for t in tqdm(range(scn.num_frames), desc="replay", disable=not progress):
        dets = [PersonDetection(d.track_id, d.uv, d.conf) for d in scn.detections[t]]
        stamp = (int(scn.stamps[t]) - t0_ns) * 1e-9
        tic = time.perf_counter()
        res = pipe.process(stamp, scn.camera, dets)
        latency.append(time.perf_counter() - tic)
        estimates += res.fast + res.refined
    estimates += pipe.flush()
    return estimates, np.asarray(latency)


def write_estimates_bag(path: Path, scn: Scenario, estimates, body_name: str) -> None:
    """The estimates as a rosbag2 (mcap): one SmplPersonArray per stage and frame, plus /tf."""
    mb = MessageBuilder()
    frame = scn.frame_ids.get("camera", "camera_optical_frame")
    t0_ns = int(scn.stamps[0])
    by_key: dict[tuple[int, int], list] = {}
    for e in estimates:
        by_key.setdefault((e.stage, int(round(e.stamp * 1e9)) + t0_ns), []).append(e)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {s: writer.add_connection(TOPICS[s], msg_type_name("SmplPersonArray"), typestore=mb.ts) for s in TOPICS}
        tf_conn = writer.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=mb.ts)
        for (stage, ns), people in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            msgs = [mb.smpl_person(e.track_id, stage, e.rotations, e.betas, e.transl, e.root,
                                   mb.keypoints2d(e.track_id, e.uv, e.conf), body_name,
                                   confidence=e.confidence, fit_residual=e.fit_residual) for e in people]
            arr = mb.smpl_person_array(ns, frame, msgs)
            writer.write(conns[stage], ns, mb.ts.serialize_cdr(arr, msg_type_name("SmplPersonArray")))
            if stage == STAGE_FAST:
                tfs = [mb.transform_ns(ns, frame, f"body_{e.track_id}", e.root, mb.mat_quat(e.rotations[0]))
                       for e in people]
                tf = mb.T["tf2_msgs/msg/TFMessage"](transforms=tfs)
                writer.write(tf_conn, ns, mb.ts.serialize_cdr(tf, "tf2_msgs/msg/TFMessage"))


def _match_ground_truth(scn: Scenario, estimates) -> dict:
    """Ground-truth person of each (track, frame): the present person whose exact keypoint
    projections are closest to the estimate's detected keypoints."""
    t_of = {int(round(((int(s) - int(scn.stamps[0])) * 1e-9) * 1e6)): t for t, s in enumerate(scn.stamps)}
    gt = scn.gt_camera
    match = {}
    for e in estimates:
        t = t_of.get(int(round(e.stamp * 1e6)))
        if t is None or not gt.present[t].any():
            continue
        ok = e.conf > 0
        d = np.full(gt.present.shape[1], np.inf)
        for p in np.flatnonzero(gt.present[t]):
            dist = np.linalg.norm(gt.keypoints_uv[t, p][ok] - e.uv[ok], axis=-1)
            d[p] = np.nanmean(dist) if dist.size else np.inf
        if np.isfinite(d).any():
            match[(e.track_id, t)] = int(np.argmin(d))
    return match, t_of


def evaluate(scn: Scenario, estimates, latency_s: np.ndarray) -> dict:
    """Accuracy per stage against the bag's camera-frame ground truth, and latency."""
    body = load_body_model(dtype=torch.float64)
    gt = scn.gt_camera
    match, t_of = _match_ground_truth(scn, estimates)
    out = {"frames": scn.num_frames, "latency": latency_percentiles(latency_s),
           "fps_compute": float(1.0 / max(latency_s.mean(), 1e-9))}
    refined_delays = [e.delay_frames for e in estimates if e.stage == STAGE_REFINED]
    if refined_delays:
        out["refined_delay_frames"] = {"min": int(min(refined_delays)), "max": int(max(refined_delays)),
                                       "mean": float(np.mean(refined_delays))}
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    per_joint, tracks_xy = {}, {}
    for stage, name in STAGES.items():
        est = [e for e in estimates if e.stage == stage and (e.track_id, t_of.get(int(round(e.stamp * 1e6)))) in match]
        if not est:
            continue
        ts = [t_of[int(round(e.stamp * 1e6))] for e in est]
        ps = [match[(e.track_id, t)] for e, t in zip(est, ts)]
        with torch.no_grad():
            pred = body.joints(f64([e.betas for e in est]), f64([e.rotations[0] for e in est]),
                               f64([e.rotations[1:] for e in est]), f64([e.transl for e in est]))
            true = body.joints(f64(gt.betas[ps]), f64(gt.global_orient[ts, ps]), f64(gt.body_pose[ts, ps]),
                               f64(gt.transl[ts, ps]))
        res = {"count": len(est), "mpjpe": float(mpjpe(pred, true, root_joints=(0,)).mean()),
               "pa_mpjpe": float(pa_mpjpe(pred, true).mean()),
               "root_error_m": float((pred[:, 0] - true[:, 0]).norm(dim=-1).mean())}
        # acceleration error over each (track, GT person) run of consecutive frames
        accs = []
        key = np.array([(e.track_id, p) for e, p in zip(est, ps)])
        order = np.lexsort((np.array(ts), key[:, 1], key[:, 0]))
        runs, cur = [], [order[0]]
        for a, b in zip(order[:-1], order[1:]):
            if (key[a] == key[b]).all() and ts[b] == ts[a] + 1:
                cur.append(b)
            else:
                runs.append(cur)
                cur = [b]
        runs.append(cur)
        fps = 1.0 / float(np.median(np.diff(scn.times))) if scn.num_frames > 1 else 1.0
        for r in runs:
            if len(r) >= 3:
                p_, g_ = pred[r] - pred[r][:, :1], true[r] - true[r][:, :1]
                accs.append(accel_error(p_, g_, fps=fps).reshape(-1))
        if accs:
            res["accel_mm_s2"] = float(torch.cat(accs).mean()) * 1000.0
        out[name] = res
        per_joint[name] = per_joint_errors(pred, true, root_joints=(0,)).mean(0).numpy()
        for e, p, t in zip(est, ps, ts):
            tracks_xy.setdefault(name, {}).setdefault(f"person {p}", []).append((t, e.root[0], e.root[2]))
    return out, per_joint, tracks_xy


def replay(bag: str | Path, out_dir: str | Path, config: PipelineConfig = PipelineConfig(), progress: bool = True,
           argv: list[str] | None = None) -> dict:
    """Replay ``bag`` into ``out_dir`` (must not exist); returns the report dict."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"out: {out_dir} already exists; choose a new directory")
    scn = read_scenario(bag)
    estimates, latency = run_pipeline(scn, config, progress)
    out_dir.mkdir(parents=True)
    body_name = load_body_model(config.body_model).name
    write_estimates_bag(out_dir / "estimates", scn, estimates, body_name)
    report, per_joint, tracks = evaluate(scn, estimates, latency)
    report["bag"] = str(bag)
    report["estimates_bag"] = str(out_dir / "estimates")
    report["refine"] = config.refine
    write_json_report(out_dir / "report.json", {"replay": report}, argv=argv)
    rows = [{"stage": s, **{k: report[s][k] for k in ("count", "mpjpe", "pa_mpjpe", "accel_mm_s2", "root_error_m")
                            if k in report[s]}} for s in STAGES.values() if s in report]
    (out_dir / "report.md").write_text(
        f"# Replay of {bag}\n\n{markdown_table(rows) if rows else 'no ground truth matched'}\n\n"
        f"Compute per frame: p50 {report['latency']['p50_ms']:.1f} ms, p95 {report['latency']['p95_ms']:.1f} ms "
        f"({report['fps_compute']:.1f} frames/s).\n")
    if per_joint:
        plot_per_joint_errors(out_dir / "per_joint_errors.png", per_joint, list(SMPL_JOINT_NAMES),
                              "Per-joint error (pelvis-aligned), mm")
    if tracks:
        gt_xy, est_xy = {}, {}
        gt = scn.gt_camera
        for p in range(scn.num_people):
            m = gt.present[:, p]
            gt_xy[f"person {p}"] = gt.root[m, p][:, [0, 2]]
        for stage, per in tracks.items():
            for person, pts in per.items():
                pts = sorted(pts)
                est_xy[f"{stage} {person}"] = np.array([[x, z] for _, x, z in pts])
        plot_trajectory_topview(out_dir / "trajectories.png", gt_xy, est_xy,
                                "Pelvis in the camera frame, top view", axis_labels=("x (right) [m]", "z (forward) [m]"))
    return report


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("replay", help="run the pipeline over a rosbag2 recording")
    p.add_argument("bag", help="rosbag2 directory with /camera/camera_info and /people/keypoints")
    p.add_argument("--out", required=True, help="output directory (must not exist)")
    _pipeline_args(p)
    p.set_defaults(func=_main_replay)
    d = subparsers.add_parser("demo", help="make a scenario from CMU eval motions and replay it")
    d.add_argument("--out", required=True, help="output directory (must not exist)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--people", type=int, default=2)
    d.add_argument("--frames", type=int, default=150)
    d.add_argument("--fps", type=float, default=30.0)
    d.add_argument("--render", action="store_true", help="also render camera images into the scenario bag")
    _pipeline_args(d)
    d.set_defaults(func=_main_demo)


def _pipeline_args(p) -> None:
    p.add_argument("--no-refine", action="store_true", help="regression only (no ScoreHMR)")
    p.add_argument("--regressor", default=None, help="regressor checkpoint (default: shipped)")
    p.add_argument("--denoiser", default=None, help="denoiser checkpoint (default: shipped)")
    p.add_argument("--quiet", action="store_true")


def _config(args) -> PipelineConfig:
    return replace(PipelineConfig(), refine=not args.no_refine, regressor=args.regressor, denoiser=args.denoiser)


def _print(report: dict, out: Path) -> None:
    for s in STAGES.values():
        if s in report:
            r = report[s]
            print(f"{s:8s}: MPJPE {r['mpjpe']:6.1f} mm  PA-MPJPE {r['pa_mpjpe']:6.1f} mm  "
                  f"accel {r.get('accel_mm_s2', float('nan')):8.0f} mm/s^2  root {r['root_error_m']:.3f} m  (n={r['count']})")
    print(f"compute: {report['fps_compute']:.1f} frames/s (p95 {report['latency']['p95_ms']:.1f} ms)")
    print(f"wrote {out}/report.json, report.md, trajectories.png, per_joint_errors.png, estimates/")


def _main_replay(args) -> int:
    torch.set_num_threads(1)
    report = replay(args.bag, args.out, _config(args), progress=not args.quiet)
    _print(report, Path(args.out))
    return 0


def _main_demo(args) -> int:
    torch.set_num_threads(1)
    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"out: {out} already exists; choose a new directory")
    out.mkdir(parents=True)
    cfg = ScenarioConfig(seed=args.seed, people=args.people, frames=args.frames, fps=args.fps, split="eval",
                         render=args.render)
    summary = make_scenario(cfg, out / "scenario", progress=not args.quiet)
    print(f"scenario: {summary.frames} frames, {summary.people} people ({', '.join(summary.motions)}) -> {summary.path}")
    report = replay(out / "scenario", out / "replay", _config(args), progress=not args.quiet)
    _print(report, out / "replay")
    return 0
