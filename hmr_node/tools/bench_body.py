"""``hmr bench body``: body model speed (CPU): full forward and joints-only at several batch sizes,
against smplx's full forward on the same file, run in the same command."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from hmr_node.core.body import load_body_model
from hmr_node.core.body.smplx_reference import smplx_model
from hmr_node.tools.report import write_json_report


@dataclass(frozen=True)
class BodyBenchConfig:
    """batch_sizes: batches to time; repeats: timed calls per measurement (median reported);
    body_model: file (None = shipped default); threads: torch intra-op threads."""

    batch_sizes: tuple[int, ...] = (1, 64, 1024)
    repeats: int = 20
    body_model: str | None = None
    threads: int = 1


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _inputs(B: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return dict(betas=torch.randn(B, 10, generator=g), global_orient=torch.randn(B, 3, generator=g) * 0.5,
                body_pose=torch.randn(B, 69, generator=g) * 0.3, transl=torch.randn(B, 3, generator=g))


def run_body_bench(config: BodyBenchConfig) -> dict:
    """Time ours (forward, joints, keypoints) and smplx's forward; returns the results dict."""
    if any(b < 1 for b in config.batch_sizes):
        raise ValueError(f"batch_sizes: must be >= 1, got {config.batch_sizes}")
    torch.set_num_threads(config.threads)
    body = load_body_model(config.body_model)
    rows = {}
    with torch.no_grad():
        for B in config.batch_sizes:
            x = _inputs(B)
            ref = smplx_model(config.body_model, batch_size=B)
            rows[str(B)] = {
                "forward_ms": _median_ms(lambda: body(**x), config.repeats),
                "joints_ms": _median_ms(lambda: body.joints(**x), config.repeats),
                "keypoints_ms": _median_ms(lambda: body.keypoints(**x), config.repeats),
                "smplx_forward_ms": _median_ms(lambda: ref(**x, return_verts=True), config.repeats),
            }
    results = {
        "body_model": body.name,
        "num_vertices": body.num_vertices,
        "config": {"batch_sizes": list(config.batch_sizes), "repeats": config.repeats, "threads": config.threads},
        "batches": rows,
    }
    largest = str(max(config.batch_sizes))
    results[f"speedup_vs_smplx_b{largest}"] = rows[largest]["smplx_forward_ms"] / rows[largest]["joints_ms"]
    return results


def add_bench_parser(bench_sub) -> None:
    p = bench_sub.add_parser("body", help="body model speed vs smplx (CPU)")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(BodyBenchConfig.batch_sizes))
    p.add_argument("--repeats", type=int, default=BodyBenchConfig.repeats)
    p.add_argument("--threads", type=int, default=BodyBenchConfig.threads)
    p.add_argument("--body-model", default=None, help="SMPL-format file (default: shipped body)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    cfg = BodyBenchConfig(batch_sizes=tuple(args.batch_sizes), repeats=args.repeats, body_model=args.body_model,
                          threads=args.threads)
    results = run_body_bench(cfg)
    write_json_report(args.json, results)
    for B, r in results["batches"].items():
        print(f"B={B:>5}: forward {r['forward_ms']:8.2f} ms  joints {r['joints_ms']:7.3f} ms  "
              f"keypoints {r['keypoints_ms']:7.3f} ms  smplx {r['smplx_forward_ms']:8.2f} ms")
    key = [k for k in results if k.startswith("speedup_vs_smplx")][0]
    print(f"{key}: {results[key]:.1f}")
    return 0
