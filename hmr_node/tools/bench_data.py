"""``hmr bench data``: quality and speed of retargeting real motion capture to the body, and
the speed of scenario generation with and without rendering.

For every CMU clip of a split (and, for 'eval', the BVH clips separately) the clip is
retargeted afresh (no cache) and the mean joint position error between the body's joints and
the scaled source joints is reported per clip, per joint and overall (mm), with the time
taken. ``rest_pose_error_mm`` is the error of fitting the body to the source skeleton's own
rest pose: the part of the error due to differing skeleton proportions alone.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hmr_node.core.data.cmu import CMU_ATTRIBUTION, load_cmu_skeleton
from hmr_node.core.data.registry import cmu_data_dir, list_motions, retarget_motion, retargeter_for
from hmr_node.core.data.retarget import CMU_JOINT_MAP, RETARGET_VERSION, RetargetResult, rest_pose_source
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.tools.report import markdown_table, write_json_report
from hmr_node.tools.scenario import make_scenario


def _summary(results: dict[str, RetargetResult], fps: float) -> dict:
    per_clip = {n: {"mean_error_mm": r.mean_error_mm, "max_error_mm": float(r.errors_mm.max()),
                    "frames": int(r.errors_mm.shape[0]), "seconds": r.seconds, "scale": r.scale}
                for n, r in results.items()}
    errs = np.concatenate([r.errors_mm for r in results.values()])  # (sum T, K)
    clip_means = np.array([v["mean_error_mm"] for v in per_clip.values()])
    joints = next(iter(results.values())).joints_used
    return {
        "mean_error_mm": float(errs.mean()),  # over all frames and joints of all clips
        "clip_mean_error_mm": {"mean": float(clip_means.mean()), "min": float(clip_means.min()),
                               "median": float(np.median(clip_means)), "max": float(clip_means.max())},
        "per_joint_mm": {j: float(e) for j, e in zip(joints, errs.mean(0))},
        "per_clip": per_clip,
        "joints_used": list(joints),
        "correspondence": {s: src for s, src, w in CMU_JOINT_MAP.pairs if s in joints},
        "frames": int(errs.shape[0]),
        "seconds": float(sum(r.seconds for r in results.values())),
        "fps": float(fps),
    }


def retarget_report(split: str = "eval", fps: float = 30.0, body_path: str | None = None,
                    max_clips: int | None = None) -> dict:
    """Retarget every CMU clip of ``split`` (and the BVH clips for 'eval') and summarise.

    split: 'eval' (reporting) or 'train'
    fps: output rate, Hz
    body_path: SMPL-format body file (None = the shipped default)
    max_clips: only the first clips of each group (the smallest version, for tests)
    returns: ``{"retarget": {...}, "retarget_bvh": {...} (eval only), "meta": {...}}`` with
        mean_error_mm, per_clip, per_joint_mm, joints_used, correspondence, seconds, fps
    """
    names = list_motions(split)
    out: dict = {}
    groups = {"retarget": [n for n in names if n.startswith("cmu/")]}
    if split == "eval":
        groups["retarget_bvh"] = [n for n in names if n.startswith("bvh/")]
    t0 = time.perf_counter()
    for key, group in groups.items():
        group = group[:max_clips] if max_clips is not None else group
        results = {}
        for n in tqdm(group, desc=f"retarget {key}", leave=False):
            results[n] = retarget_motion(n, fps, body_path)
        out[key] = _summary(results, fps)
    # error on the source's own rest pose: skeleton proportions alone (all CMU clips share one skeleton)
    rt = retargeter_for(body_path, fps)
    sk = load_cmu_skeleton(cmu_data_dir())
    src = rest_pose_source(sk.names, sk.parents, sk.offsets * sk.units_to_metres, fps)
    scale, betas = rt.fit_shape(src)
    out["retarget"]["rest_pose_error_mm"] = rt.retarget(src).mean_error_mm
    out["retarget"]["scale"] = scale
    out["retarget"]["betas"] = betas.tolist()
    out["meta"] = {"retarget_version": RETARGET_VERSION, "split": split, "attribution": CMU_ATTRIBUTION,
                   "wall_seconds": time.perf_counter() - t0}
    return out


def scenario_speed_report(frames: int = 60, people: int = 2, seed: int = 0, split: str = "eval") -> dict:
    """Scenario generation speed (frames/s, wall clock, writing an mcap bag) with and without
    rendering, on the shipped body and motions of ``split``."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="hmr_bench_scenario_") as tmp:
        for render in (False, True):
            cfg = ScenarioConfig(seed=seed, people=people, frames=frames, split=split, render=render)
            summary = make_scenario(cfg, Path(tmp) / f"bag_render{int(render)}", progress=False)
            out["with_render" if render else "without_render"] = {
                "frames_per_second": summary.frames_per_second, "frames": summary.frames,
                "people": summary.people, "fps": cfg.fps, "bag_bytes": summary.bag_bytes,
                "width": cfg.camera.width, "height": cfg.camera.height}
    return {"scenario_speed": out}


def add_bench_parser(bench_sub) -> None:
    p = bench_sub.add_parser("data", help="retargeting error of real motion capture (CMU eval, BVH)")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--split", default="eval", choices=("eval", "train"))
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--body-model", default=None, help="SMPL-format file (default: shipped body)")
    p.add_argument("--scenario-frames", type=int, default=60, help="frames per timed scenario (0 = skip)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    report = retarget_report(args.split, args.fps, args.body_model)
    if args.scenario_frames > 0:
        report.update(scenario_speed_report(frames=args.scenario_frames))
    write_json_report(args.json, report)
    rows = []
    for key in ("retarget", "retarget_bvh"):
        if key in report:
            r = report[key]
            rows.append({"set": key, "clips": len(r["per_clip"]), "frames": r["frames"],
                         "mean_error_mm": round(r["mean_error_mm"], 1),
                         "clip_max_mm": round(r["clip_mean_error_mm"]["max"], 1), "seconds": round(r["seconds"], 1)})
    print(markdown_table(rows, ["set", "clips", "frames", "mean_error_mm", "clip_max_mm", "seconds"]))
    print(f"rest-pose (proportions only) error: {report['retarget']['rest_pose_error_mm']:.1f} mm")
    for key, r in report.get("scenario_speed", {}).items():
        print(f"scenario generation {key}: {r['frames_per_second']:.1f} frames/s")
    return 0
