"""The offline replay runs the same pipeline as the node over a scenario bag."""
import json
from collections import Counter

import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hmr_node.core.pipeline import PeoplePipeline, PersonDetection, PipelineConfig
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.core.scorehmr.denoiser import DenoiserConfig, PoseDenoiser, save_denoiser
from hmr_node.core.tracking import IouTracker, box_iou
from hmr_node.tools.replay import replay
from hmr_node.tools.scenario import make_scenario


@pytest.fixture(scope="module")
def tiny_bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "bag"
    make_scenario(ScenarioConfig(seed=3, people=2, frames=40, fps=30.0, split="eval", render=False), out,
                  progress=False)
    return out


@pytest.fixture(scope="module")
def denoiser_path(tmp_path_factory):
    """An untrained denoiser: the refinement path and its bookkeeping are under test, not the prior."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("den") / "den.pt"
    save_denoiser(path, PoseDenoiser(DenoiserConfig()))
    return path


def test_replay_emits_every_detection_once_per_stage(tiny_bag, denoiser_path, tmp_path):
    out = tmp_path / "replay"
    report = replay(tiny_bag, out, PipelineConfig(denoiser=str(denoiser_path)), progress=False)
    saved = json.loads((out / "report.json").read_text())["replay"]
    assert saved["fast"]["count"] == report["fast"]["count"] > 20
    assert report["refined"]["count"] == report["fast"]["count"]  # nothing lost in the window
    assert 0 <= report["refined_delay_frames"]["max"] <= 9
    # the shipped regressor: sane accuracy on eval motions with the default noise model
    assert report["fast"]["pa_mpjpe"] < 120 and report["fast"]["root_error_m"] < 1.0
    for png in ("trajectories.png", "per_joint_errors.png"):
        assert (out / png).stat().st_size > 10_000
    # the estimates bag decodes with a fresh typestore; every fast stamp has a refined twin
    stamps = {"/hmr/people": Counter(), "/hmr/people_refined": Counter()}
    with AnyReader([out / "estimates"], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for conn, ns, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic in stamps:
                for p in msg.people:
                    stamps[conn.topic][(p.track_id, ns)] += 1
                    assert len(p.rotations) == 24 and np.isfinite(p.transl.z)
    assert stamps["/hmr/people"] == stamps["/hmr/people_refined"]
    assert max(stamps["/hmr/people"].values()) == 1


def test_replay_refuses_existing_output(tiny_bag, tmp_path):
    with pytest.raises(FileExistsError, match="out"):
        replay(tiny_bag, tmp_path, PipelineConfig(refine=False), progress=False)


def test_pipeline_ignores_unusable_detections_and_tracks_untracked(tiny_bag):
    from hmr_node.tools.scenario_reader import read_scenario
    scn = read_scenario(tiny_bag)
    pipe = PeoplePipeline(PipelineConfig(refine=False))
    t = next(i for i, d in enumerate(scn.detections) if d)
    det = scn.detections[t][0]
    nan_det = PersonDetection(-1, np.full((17, 2), np.nan), np.ones(17))
    empty = PersonDetection(-1, det.uv, np.zeros(17))
    res = pipe.process(0.0, scn.camera, [PersonDetection(-1, det.uv, det.conf), nan_det, empty])
    assert len(res.fast) == 1 and res.fast[0].track_id >= 1_000_000
    res2 = pipe.process(1 / 30, scn.camera, [PersonDetection(-1, det.uv + 2.0, det.conf)])
    assert res2.fast[0].track_id == res.fast[0].track_id  # same box, same track
    assert np.isfinite(res.fast[0].fit_residual) and res.fast[0].fit_residual < 50


def test_box_iou_and_tracker_new_ids():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    assert np.allclose(box_iou(a, a), np.eye(2))
    assert np.isclose(box_iou(a[:1], np.array([[5, 0, 15, 10]], float))[0, 0], 50 / 150)
    tr = IouTracker()
    first = tr.assign(a, 0.0)
    assert len(set(first)) == 2
    assert list(tr.assign(a[::-1], 0.1)) == list(first[::-1])
    assert set(tr.assign(a, 5.0)).isdisjoint(first)  # forgotten after max_age_s
