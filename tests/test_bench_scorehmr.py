"""The smallest honest version of `hmr bench scorehmr`: every mode and method runs on a short
eval scenario with the shipped weights, and the report has the keys the release checks read."""
import json
import math

from hmr_node.tools.bench_scorehmr import METHODS, ScoreHmrBenchConfig, run_scorehmr_bench, summary_table
from hmr_node.tools.cli import main


def test_tiny_benchmark_report_structure_and_sanity(tmp_path):
    cfg = ScoreHmrBenchConfig.quick(frames=30, max_single=6, multiview_people=3, video_min_frames=20,
                                    video_max_tracks=1)
    rep = run_scorehmr_bench(cfg)
    for mode in ("single", "video"):
        for m in METHODS:
            r = rep["results"][mode][m]
            for k in ("pa_mpjpe", "pa_mpjpe_14", "mpjpe"):
                assert math.isfinite(r[k]) and 0 < r[k] < 500, (mode, m, k, r[k])
        assert math.isfinite(rep["results"]["video"][m]["accel"])
    for m in METHODS:
        assert rep["speed"][m]["ms_per_frame"] > 0
    mv = rep["results"]["multiview"]["by_views"]["2_views"]
    assert mv["scorehmr"]["count"] == mv["regression"]["count"] == 6  # 3 people x 2 views
    assert rep["results"]["multiview"]["scorehmr"]["mpjpe"] == mv["scorehmr"]["mpjpe"]  # one view count: pooled = it
    # the online window emits every video frame exactly once, within its documented delay
    v = rep["results"]["video"]
    assert rep["results"]["video"]["scorehmr"]["count"] == v["frames"]
    lo, hi = rep["scorehmr_config"]["lookahead"], rep["scorehmr_config"]["lookahead"] + rep["scorehmr_config"]["stride"] - 1
    assert v["online_delay_frames"]["max"] <= hi
    assert set(rep["goals"]) >= {"single_ok", "video_ok", "multiview_ok", "speed_ok", "speedup_vs_upstream"}
    assert "| single | scorehmr |" in summary_table(rep)


def test_cli_rejects_bad_config(tmp_path, capsys):
    rc = main(["bench", "scorehmr", "--json", str(tmp_path / "x.json"), "--quick", "--threads", "0"])
    assert rc == 2 and "threads" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
