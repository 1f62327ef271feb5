"""Motion registry (names, splits, cache), window dataset, and the smallest retarget benchmark."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hmr_node.core.data import registry
from hmr_node.core.data.mirror import mirror_smpl_params
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.registry import list_motions, load_motion
from hmr_node.core.data.windows import MotionWindows, WindowConfig

from conftest import make_random_smpl_arrays

CMU_DIR = Path(os.environ.get("HMR_CMU_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmu"))
needs_cmu = pytest.mark.skipif(not (CMU_DIR / "skeleton.json").is_file(), reason=f"CMU data not found at {CMU_DIR}")


@pytest.fixture(scope="module")
def body_file(tmp_path_factory):
    """Any SMPL-format body: the registry's mechanics do not depend on the shipped one."""
    path = tmp_path_factory.mktemp("body") / "SMPL_NEUTRAL.npz"
    np.savez(path, **make_random_smpl_arrays(seed=11))
    return path


# ----------------------------------------------------------------------------- names and splits


@needs_cmu
def test_splits_are_disjoint_and_come_from_their_directories():
    train, evl = list_motions("train"), list_motions("eval")
    assert len(train) == 72 + 4 and len(evl) == 24 + 19  # CMU INDEX.tsv counts + synthetic kinds / BVH clips
    assert not set(train) & set(evl)
    assert "cmu/train/walking_1" in train and "synthetic/walk" in train and "bvh/07_01" in evl
    files = registry._source_files(registry.cmu_data_dir())
    for n in train:
        if n.startswith("cmu/"):
            assert files[n].parent.parent.name == "train"
    for n in evl:
        assert files[n].parent.parent.name == "eval" or files[n].parent.name == "bvh"
    # no eval clip is a copy of a train clip (same-named clips exist in both directories)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert not {digest(files[n]) for n in train if n in files} & {digest(files[n]) for n in evl}
    with pytest.raises(ValueError, match="split: expected one of"):
        list_motions("test")


@needs_cmu
def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown motion 'cmu/train/walkin_1'.*cmu/train/walking_1"):
        load_motion("cmu/train/walkin_1")
    with pytest.raises(ValueError, match="unknown motion 'synthetic/dance'"):
        load_motion("synthetic/dance")


def test_bad_cmu_dir_setting_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("HMR_CMU_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="HMR_CMU_DIR=.*no skeleton.json"):
        list_motions("train")


# ----------------------------------------------------------------------------- loading and cache


@needs_cmu
def test_load_motion_caches_by_clip_fps_and_body(monkeypatch, tmp_path, body_file):
    monkeypatch.setenv("HMR_CACHE_DIR", str(tmp_path))
    clip = load_motion("cmu/eval/running_1", fps=10.0, body_path=body_file)
    assert clip.name == "cmu/eval/running_1" and clip.source == "cmu" and not clip.synthetic
    assert "mocap.cs.cmu.edu" in clip.attribution and clip.fps == 10.0
    assert clip.num_frames == 14  # 162 motion frames at 120 Hz -> 1.342 s -> 14 frames at 10 Hz
    files = list((tmp_path / "motion").glob("*.npz"))
    assert len(files) == 1 and "10fps" in files[0].name
    with np.load(files[0]) as z:
        assert "mocap.cs.cmu.edu" in str(z["attribution"])

    # a second load reads the cache: retargeting is not run again
    def no_retarget(*args, **kwargs):
        raise AssertionError("retargeted again despite the cache")

    monkeypatch.setattr(registry, "retarget_motion", no_retarget)
    again = load_motion("cmu/eval/running_1", fps=10.0, body_path=body_file)
    for key in ("global_orient", "body_pose", "transl", "betas"):
        assert np.array_equal(getattr(again, key), getattr(clip, key))
    assert again.attribution == clip.attribution
    # another rate is another cache entry
    with pytest.raises(AssertionError, match="retargeted again"):
        load_motion("cmu/eval/running_1", fps=15.0, body_path=body_file)


@needs_cmu
def test_bvh_and_synthetic_names_load(monkeypatch, tmp_path, body_file):
    monkeypatch.setenv("HMR_CACHE_DIR", str(tmp_path))
    clip = load_motion("bvh/16_50", fps=10.0, body_path=body_file)
    assert clip.source == "bvh" and "Hahne" in clip.attribution and "mocap.cs.cmu.edu" in clip.attribution
    assert clip.num_frames == 11  # 130 motion frames at 120 Hz (rest line dropped) -> 1.075 s
    syn = load_motion("synthetic/crouch", fps=10.0, seed=2, body_path=body_file)
    assert syn.synthetic and syn.source == "synthetic" and "seed=2" in syn.attribution


# ----------------------------------------------------------------------------- windows


def fake_loader(name, fps, seed):
    """Distinct, recognisable content per clip: values encode (clip hash, frame)."""
    k = int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 1000
    T = 20 + k % 13
    f = np.arange(T, dtype=np.float64)
    go = np.stack([f * 0.01, np.full(T, k * 1e-3), np.zeros(T)], 1)
    bp = np.tile((f[:, None, None] * 1e-3 + np.arange(23)[None, :, None] * 1e-2), (1, 1, 3))
    tr = np.stack([f, np.full(T, float(k)), -f], 1)
    return MotionClip(name, fps, go, bp, tr, np.full(10, k * 1e-3), source="synthetic", attribution="test")


def test_windows_shapes_counts_and_content():
    names = ["synthetic/a", "synthetic/b", "synthetic/c"]
    ds = MotionWindows(names, WindowConfig(window=8, stride=3, fps=30.0), loader=fake_loader)
    lengths = [fake_loader(n, 30.0, 0).num_frames for n in names]
    assert len(ds) == sum((T - 8) // 3 + 1 for T in lengths)
    item = ds[5]
    assert item["global_orient"].shape == (8, 3) and item["body_pose"].shape == (8, 23, 3)
    assert item["transl"].shape == (8, 3) and item["betas"].shape == (10,) and item["global_orient"].dtype == torch.float32
    clip = fake_loader(ds.clip_names[int(item["clip_id"])], 30.0, 0)
    s = int(item["start"])
    assert s % 3 == 0 and np.allclose(item["transl"].numpy(), clip.transl[s:s + 8])
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["body_pose"].shape == (2, 8, 23, 3)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_windows_mirroring_both_and_random():
    names = ["synthetic/a", "synthetic/b"]
    plain = MotionWindows(names, WindowConfig(window=6, stride=4), loader=fake_loader)
    both = MotionWindows(names, WindowConfig(window=6, stride=4, mirror="both"), loader=fake_loader)
    n = len(plain)
    assert len(both) == 2 * n
    for i in (0, n - 1):
        ref = plain[i]
        go, bp, tr = mirror_smpl_params(ref["global_orient"].numpy(), ref["body_pose"].numpy(), ref["transl"].numpy())
        m = both[n + i]
        assert bool(m["mirrored"]) and not bool(both[i]["mirrored"])
        assert np.allclose(m["body_pose"].numpy(), bp, atol=1e-6) and np.allclose(m["transl"].numpy(), tr)
    rnd = MotionWindows(names, WindowConfig(window=6, stride=1, mirror="random", seed=4), loader=fake_loader)
    flags = [bool(rnd[i]["mirrored"]) for i in range(len(rnd))]
    assert flags == [bool(rnd[i]["mirrored"]) for i in range(len(rnd))]  # reproducible
    assert 0.25 < np.mean(flags) < 0.75
    rnd.set_epoch(1)
    assert flags != [bool(rnd[i]["mirrored"]) for i in range(len(rnd))]


@needs_cmu
def test_windows_refuse_clips_of_the_other_split():
    with pytest.raises(ValueError, match=r"not in split 'train': \['cmu/eval/walking_1'\]"):
        MotionWindows(["cmu/train/walking_1", "cmu/eval/walking_1"], split="train", loader=fake_loader)
    train = MotionWindows(list_motions("train"), WindowConfig(window=8), split="train", loader=fake_loader)
    evl = MotionWindows(list_motions("eval"), WindowConfig(window=8), split="eval", loader=fake_loader)
    assert not set(train.clip_names) & set(evl.clip_names)


# ----------------------------------------------------------------------------- benchmark, smallest version


@needs_cmu
def test_retarget_report_smallest_version(body_file):
    from hmr_node.tools.bench_data import retarget_report

    rep = retarget_report("eval", fps=10.0, body_path=str(body_file), max_clips=1)
    r = rep["retarget"]
    assert list(r["per_clip"]) == ["cmu/eval/basketball_1"] and r["fps"] == 10.0
    assert r["mean_error_mm"] == pytest.approx(r["per_clip"]["cmu/eval/basketball_1"]["mean_error_mm"])
    assert "head" in r["joints_used"] and r["correspondence"]["left_knee"] == "LeftLeg"
    assert list(rep["retarget_bvh"]["per_clip"]) == ["bvh/02_03"]
    assert r["rest_pose_error_mm"] >= 0 and "mocap.cs.cmu.edu" in rep["meta"]["attribution"]
