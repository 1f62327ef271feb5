"""Scenario bags: readable by independent readers, reproducible, and consistent with their ground
truth. A tiny bag (3 s, 160x120 images) is generated once per session with a random SMPL-format
body and a sinusoidal walking clip, so these tests do not depend on shipped assets."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hmr_node.core.body.model import BodyModel
from hmr_node.core.body.model_file import _normalise
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.frames import transform_smpl_root
from hmr_node.core.scenario.camera_rig import CameraRigConfig
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.tools import scenario as scenario_tool
from hmr_node.tools.scenario import TOPICS, make_scenario
from hmr_node.tools.scenario_reader import read_scenario
from tests.conftest import make_random_smpl_arrays

FPS = 8.0
SMALL_CAMERA = CameraRigConfig(width=160, height=120)


def walking_clip(name: str = "test/walk", fps: float = FPS, seconds: float = 8.0,
                 speed: float = 1.2) -> MotionClip:
    """Sinusoidal gait walking along SMPL +z (the facing direction)."""
    T = int(round(seconds * fps))
    t = np.arange(T) / fps
    ph = 2 * np.pi * 0.9 * t
    pose = np.zeros((T, 23, 3))
    pose[:, 0, 0], pose[:, 1, 0] = -0.45 * np.sin(ph), 0.45 * np.sin(ph)       # hips
    pose[:, 3, 0] = 0.6 * np.maximum(0, np.sin(ph + 1.2))                     # knees
    pose[:, 4, 0] = 0.6 * np.maximum(0, np.sin(ph + 1.2 + np.pi))
    pose[:, 15, 2], pose[:, 16, 2] = -1.25, 1.25                               # arms down
    transl = np.stack([np.zeros(T), 0.92 + 0.02 * np.cos(2 * ph), speed * t], -1)
    return MotionClip(name=name, fps=fps, global_orient=np.zeros((T, 3)), body_pose=pose,
                      transl=transl, source="synthetic", synthetic=True,
                      attribution="test clip (synthetic)")


KNOWN = {"test/walk": 8.0, "test/short_walk": 3.0}


def load_motion(name: str, fps: float, seed: int = 0) -> MotionClip:
    if name not in KNOWN:
        raise KeyError(f"no motion named {name!r}")
    return walking_clip(name, fps, KNOWN[name])


def list_motions(split: str) -> list[str]:
    return sorted(KNOWN)


@pytest.fixture(scope="session")
def body():
    arrays = make_random_smpl_arrays(seed=1)
    arrays["f"] = arrays["f"][:300]  # a random mesh: few faces keep the render cheap
    return BodyModel(_normalise(arrays, Path("random_smpl.npz")), dtype=torch.float64)


def _make(body, out, **kw):
    cfg = ScenarioConfig(**{"frames": 24, "fps": FPS, "people": 1, "camera": SMALL_CAMERA,
                            "motion": ("test/walk",), **kw})
    return make_scenario(cfg, out, body=body, load_motion=load_motion, list_motions=list_motions,
                         progress=False)


@pytest.fixture(scope="session")
def tiny_bags(tmp_path_factory, body):
    """'mcap': rendered, default noise, 1 person; 'mcap_again': same seed; 'sqlite3': no render,
    2 people, kp_noise = odom_drift = 0."""
    root = tmp_path_factory.mktemp("scenarios")
    bags = {
        "mcap": _make(body, root / "mcap", seed=3),
        "mcap_again": _make(body, root / "mcap_again", seed=3),
        "sqlite3": _make(body, root / "sqlite3", seed=5, storage="sqlite3", render=False,
                         people=2, kp_noise=0.0, odom_drift=0.0,
                         motion=("test/walk", "test/short_walk")),
    }
    return {k: s.path for k, s in bags.items()}


def _raw_messages(path):
    with AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as r:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in r.messages()]


def test_both_storages_read_back_with_a_fresh_typestore(tiny_bags):
    for key, render in (("mcap", True), ("sqlite3", False)):
        msgs = _raw_messages(tiny_bags[key])
        topics = {}
        with AnyReader([tiny_bags[key]], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as r:
            for c, t, raw in r.messages():
                msg = r.deserialize(raw, c.msgtype)   # custom types from the bag's definitions
                topics[c.topic] = topics.get(c.topic, 0) + 1
                if c.topic == TOPICS["keypoints"]:
                    assert msg.header.frame_id == "camera_optical_frame"
                    assert msg.keypoint_format == "coco17"
        expected = {v for k, v in TOPICS.items() if render or k != "image"}
        assert set(topics) == expected
        for k in ("odom", "tf", "camera_info", "keypoints", "gt_camera", "gt_world", "camera_pose"):
            assert topics[TOPICS[k]] == 24
        assert topics[TOPICS["tf_static"]] == 1 and topics[TOPICS["info"]] == 1
        assert len(msgs) == sum(topics.values())


def test_mcap_decodes_with_the_independent_mcap_reader(tiny_bags):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = next(Path(tiny_bags["mcap"]).glob("*.mcap"))
    scn = read_scenario(tiny_bags["mcap"])
    seen = {}
    with open(path, "rb") as f:
        for schema, channel, message, decoded in make_reader(
                f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            seen[channel.topic] = seen.get(channel.topic, 0) + 1
            if channel.topic == TOPICS["keypoints"]:
                t = int(np.searchsorted(scn.stamps, message.log_time))
                assert schema.name == "hmr_msgs/msg/PeopleKeypoints2D"
                assert len(decoded.people) == len(scn.detections[t])
                for d, ref in zip(decoded.people, scn.detections[t]):
                    assert d.track_id == ref.track_id
                    np.testing.assert_array_equal(np.asarray(d.x, np.float64), ref.uv[:, 0])
                    np.testing.assert_array_equal(np.asarray(d.confidence, np.float64), ref.conf)
            if channel.topic == TOPICS["gt_camera"] and decoded.people:
                assert len(decoded.people[0].rotations) == 24
            if channel.topic == TOPICS["image"]:
                assert (decoded.width, decoded.height, decoded.encoding) == (160, 120, "rgb8")
    assert seen[TOPICS["image"]] == 24 and seen[TOPICS["keypoints"]] == 24


def test_same_seed_gives_identical_messages(tiny_bags, body, tmp_path):
    a, b = _raw_messages(tiny_bags["mcap"]), _raw_messages(tiny_bags["mcap_again"])
    assert a == b
    other = _raw_messages(_make(body, tmp_path / "seed4", seed=4, render=False).path)
    kp = [m for m in other if m[0] == TOPICS["keypoints"]]
    assert kp != [m for m in a if m[0] == TOPICS["keypoints"]]


def test_noise_free_keypoints_are_the_projected_ground_truth(tiny_bags, body):
    scn = read_scenario(tiny_bags["sqlite3"])
    gt = scn.gt_camera
    checked = 0
    for t, dets in enumerate(scn.detections):
        for d in dets:
            p = d.track_id
            assert gt.present[t, p]
            with torch.no_grad():
                kp3 = body.keypoints(torch.as_tensor(gt.betas[p][None]),
                                     torch.as_tensor(gt.global_orient[t, p][None]),
                                     torch.as_tensor(gt.body_pose[t, p][None]),
                                     torch.as_tensor(gt.transl[t, p][None]))[0].numpy()
            uv = scn.camera.project(kp3)
            ok = d.conf > 0
            assert ok.any()
            # float32 message fields: exact up to float32 rounding
            np.testing.assert_allclose(d.uv[ok], uv[ok], atol=2e-3)
            np.testing.assert_array_equal(d.conf[ok], 1.0)
            np.testing.assert_array_equal(ok, gt.keypoints_visible[t, p])
            np.testing.assert_allclose(gt.keypoints_uv[t, p][ok], uv[ok], atol=2e-3)
            checked += int(ok.sum())
    assert checked > 100


def test_world_ground_truth_is_the_camera_pose_applied_to_camera_ground_truth(tiny_bags, body):
    for key in ("mcap", "sqlite3"):
        scn = read_scenario(tiny_bags[key])
        c, w = scn.gt_camera, scn.gt_world
        np.testing.assert_array_equal(c.present, w.present)
        t, p = np.nonzero(c.present)
        R = torch.as_tensor(scn.camera_R[t])
        tr = torch.as_tensor(scn.camera_t[t])
        j0 = body.rest_joints(torch.as_tensor(c.betas[p]))[:, 0]
        go, transl = transform_smpl_root(R, tr, torch.as_tensor(c.global_orient[t, p]),
                                         torch.as_tensor(c.transl[t, p]), j0)
        np.testing.assert_allclose(go.numpy(), w.global_orient[t, p], atol=1e-6)
        np.testing.assert_allclose(transl.numpy(), w.transl[t, p], atol=1e-5)
        root = np.einsum("nij,nj->ni", scn.camera_R[t], c.root[t, p]) + scn.camera_t[t]
        np.testing.assert_allclose(root, w.root[t, p], atol=1e-5)
        np.testing.assert_array_equal(c.body_pose[t, p], w.body_pose[t, p])
        # the world ground truth stands on the floor plane (clip floor y = 0 -> z = 0) upright
        up = np.einsum("nij,j->ni", w.global_orient[t, p], [0.0, 1.0, 0.0])
        np.testing.assert_allclose(up, np.tile([0.0, 0.0, 1.0], (len(t), 1)), atol=1e-6)


def _tf_camera_pose(scn):
    """Camera pose from /odom (odom -> base_link) and /tf_static (base_link -> optical)."""
    yaw = scn.odometry.pose[:, 2]
    c, s = np.cos(yaw), np.sin(yaw)
    Rb = np.zeros((len(yaw), 3, 3))
    Rb[:, 0, 0], Rb[:, 0, 1], Rb[:, 1, 0], Rb[:, 1, 1], Rb[:, 2, 2] = c, -s, s, c, 1
    return Rb @ scn.base_from_camera_R, np.einsum("tij,j->ti", Rb, scn.base_from_camera_t) \
        + scn.odometry.position


def test_odometry_without_drift_is_the_true_path_and_drifts_otherwise(tiny_bags):
    exact = read_scenario(tiny_bags["sqlite3"])
    R, t = _tf_camera_pose(exact)
    np.testing.assert_allclose(R, exact.camera_R, atol=1e-9)
    np.testing.assert_allclose(t, exact.camera_t, atol=1e-9)
    noisy = read_scenario(tiny_bags["mcap"])
    R, t = _tf_camera_pose(noisy)
    assert np.allclose(t[0], noisy.camera_t[0], atol=1e-9)       # odom starts at the true pose
    assert np.linalg.norm(t[-1] - noisy.camera_t[-1]) > 1e-4     # ... and drifts
    assert np.linalg.norm(t[-1] - noisy.camera_t[-1]) < 0.5
    # camera: realistic intrinsics and mount (65 deg HFOV, 1.35 m high, looking forward)
    assert math.degrees(2 * math.atan(80 / exact.camera.K[0, 0])) == pytest.approx(65.0)
    assert exact.base_from_camera_t[2] == pytest.approx(1.35)
    assert exact.base_from_camera_R[:, 2] @ [1.0, 0.0, 0.0] > 0.95


def test_people_walk_through_the_view_at_the_configured_distances(tiny_bags):
    scn = read_scenario(tiny_bags["sqlite3"])
    assert scn.info["warnings"] == []
    gt = scn.gt_camera
    uv = scn.camera.project(np.where(gt.present[..., None], gt.root, 1.0))
    in_view = gt.present & (gt.root[..., 2] > 0.3) & scn.camera.in_image(uv)
    assert in_view.any(axis=0).all()                 # everyone is seen at some point
    dist = np.linalg.norm(gt.root[..., [0, 2]], axis=-1)
    assert np.all((dist[in_view] >= 1.5) & (dist[in_view] <= 8.0))
    # the short clip starts and ends inside the recording, outside the image
    short = gt.present[:, 1]
    first, last = np.flatnonzero(short)[[0, -1]]
    assert (first > 0 and not in_view[first, 1]) or first == 0
    assert (last < scn.num_frames - 1 and not in_view[last, 1]) or last == scn.num_frames - 1
    assert scn.info["motions"] == ["test/walk", "test/short_walk"]
    assert scn.info["people"][0]["synthetic"] is True


def test_reader_images_and_tracks(tiny_bags):
    scn = read_scenario(tiny_bags["mcap"])
    frames = list(scn.images())
    assert [k for k, _ in frames] == list(range(24))
    img = scn.image(5)
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, frames[5][1])
    tracks = scn.keypoint_tracks()
    assert set(tracks) <= {0}
    n = sum(len(d) for d in scn.detections)
    assert sum(len(tr.frames) for tr in tracks.values()) == n
    with pytest.raises(ValueError, match="no-render"):
        next(read_scenario(tiny_bags["sqlite3"]).images())


def _leftovers(parent: Path, name: str):
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.partial")]


def test_existing_output_is_refused_and_untouched(tiny_bags, body):
    path = Path(tiny_bags["mcap"])
    before = sorted((p.name, p.stat().st_size) for p in path.iterdir())
    with pytest.raises(FileExistsError, match="already exists"):
        _make(body, path)
    assert sorted((p.name, p.stat().st_size) for p in path.iterdir()) == before


@pytest.mark.parametrize("kw, field", [(dict(fps=0.0), "fps"), (dict(fps=-5.0), "fps"),
                                       (dict(frames=0), "frames"), (dict(frames=-1), "frames"),
                                       (dict(storage="rosbag1"), "storage"),
                                       (dict(kp_noise=-1.0), "kp_noise")])
def test_impossible_options_name_the_field(kw, field, body, tmp_path):
    with pytest.raises(ValueError, match=field):
        _make(body, tmp_path / "bag", **kw)
    assert list(tmp_path.iterdir()) == []


def test_unknown_motion_is_one_clear_error_and_nothing_is_written(body, tmp_path):
    with pytest.raises(ValueError, match="test/flying"):
        _make(body, tmp_path / "bag", motion=("test/walk", "test/flying"), people=2)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing_behind(body, tmp_path, monkeypatch):
    def broken(self, t):
        if t == 3:
            raise RuntimeError("renderer failed")
        return np.zeros((120, 160, 3), np.uint8)

    monkeypatch.setattr(scenario_tool.ScenarioImages, "frame", broken)
    with pytest.raises(RuntimeError, match="renderer failed"):
        _make(body, tmp_path / "bag")
    assert list(tmp_path.iterdir()) == []


def test_cli_flags_map_onto_the_config(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    scenario_tool.add_parser(parser.add_subparsers())
    args = parser.parse_args(["scenario", "make", "--out", str(tmp_path / "x"), "--seed", "7",
                              "--people", "3", "--frames", "40", "--fps", "10", "--storage",
                              "sqlite3", "--motion", "a", "b", "--split", "eval", "--no-render",
                              "--odom-drift", "0.5", "--kp-noise", "2", "--occlusion", "0",
                              "--body-model", "/x/SMPL_NEUTRAL.npz"])
    cfg = scenario_tool._config_from_args(args)
    assert cfg == replace(ScenarioConfig(), seed=7, people=3, frames=40, fps=10.0,
                          storage="sqlite3", motion=("a", "b"), split="eval", render=False,
                          odom_drift=0.5, kp_noise=2.0, occlusion=0.0,
                          body_model="/x/SMPL_NEUTRAL.npz")
    assert args.func is scenario_tool._run_make


def test_cli_reports_bad_fps_as_one_error(tmp_path, capsys):
    from hmr_node.tools.cli import main

    assert main(["scenario", "make", "--out", str(tmp_path / "bag"), "--fps", "0"]) == 2
    err = capsys.readouterr().err
    assert "fps" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
