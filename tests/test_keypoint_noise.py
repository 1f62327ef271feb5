"""The simulated 2D detector: statistics of each effect against the configured numbers."""
from __future__ import annotations

import numpy as np
import pytest

from hmr_node.core.body.skeleton import COCO17_FLIP_PERMUTATION
from hmr_node.core.scenario.keypoint_noise import (KeypointNoiseConfig, corrupt_keypoints,
                                                   jitter_sigma, person_heights)

W, H = 640, 480


def _people(n: int, seed: int = 0) -> np.ndarray:
    """n people, each a 17-point figure ~200 px tall well inside a 640x480 image."""
    rng = np.random.default_rng(seed)
    base = np.stack([rng.uniform(-30, 30, 17), np.linspace(-100, 100, 17)], axis=-1)
    centre = np.stack([rng.uniform(150, 490, n), rng.uniform(160, 320, n)], axis=-1)
    return centre[:, None, :] + base[None]


ONLY_JITTER = dict(outlier_prob=0.0, swap_prob=0.0, miss_prob=0.0, lost_frame_prob=0.0)


def test_scale_zero_is_exact_and_marks_undetectable_joints():
    uv = _people(50)
    vis = np.ones(uv.shape[:2], bool)
    vis[:, 3] = False                      # occluded
    uv[:, 4, 0] = -5.0                     # left of the image: truncated
    uv[:, 5, 1] = H + 0.5                  # below the image
    uv[:, 6] = np.nan                      # behind the camera
    out, conf = corrupt_keypoints(uv, vis, (W, H), np.random.default_rng(1),
                                  KeypointNoiseConfig(scale=0.0))
    keep = np.ones(17, bool)
    keep[[3, 4, 5, 6]] = False
    np.testing.assert_array_equal(out[:, keep], uv[:, keep])
    np.testing.assert_array_equal(conf[:, keep], 1.0)
    np.testing.assert_array_equal(conf[:, ~keep], 0.0)
    np.testing.assert_array_equal(out[:, ~keep], 0.0)


def test_jitter_std_matches_config_per_joint():
    cfg = KeypointNoiseConfig(**ONLY_JITTER)
    uv = np.repeat(_people(1), 20000, axis=0)
    vis = np.ones(uv.shape[:2], bool)
    out, conf = corrupt_keypoints(uv, vis, (W, H), np.random.default_rng(2), cfg)
    assert np.all(conf > 0)
    h = uv[0, :, 1].max() - uv[0, :, 1].min()
    expected = np.asarray(cfg.joint_weights) * (cfg.jitter_px + cfg.jitter_rel * h)
    measured = (out - uv).std(axis=0)                      # (17, 2) per axis
    # std of a 20000-sample std estimate is ~0.5 %; allow 3 %.
    np.testing.assert_allclose(measured, np.repeat(expected[:, None], 2, 1), rtol=0.03)
    np.testing.assert_allclose((out - uv).mean(axis=0), 0.0, atol=0.05 * expected.max())
    # the jitter grows with the person's size as configured
    np.testing.assert_allclose(jitter_sigma(np.array([h]), cfg)[0], expected)


def test_probabilities_of_misses_lost_frames_outliers_and_swaps():
    cfg = KeypointNoiseConfig(miss_prob=0.1, lost_frame_prob=0.05, outlier_prob=0.05,
                              swap_prob=0.08, jitter_px=0.0, jitter_rel=0.0)
    n = 40000
    uv = np.repeat(_people(1), n, axis=0)
    vis = np.ones(uv.shape[:2], bool)
    out, conf = corrupt_keypoints(uv, vis, (W, H), np.random.default_rng(3), cfg)
    lost = np.all(conf == 0, axis=1)
    assert abs(lost.mean() - 0.05) < 0.005
    # misses among persons that were not lost (chance all 17 missed is negligible)
    assert abs((conf[~lost] == 0).mean() - 0.1) < 0.005
    rep = conf > 0
    # exact positions (no jitter) unless swapped or outlier
    moved = rep & (np.linalg.norm(out - uv, axis=-1) > 1e-9)
    swapped_at_true_partner = rep & (np.linalg.norm(out - uv[:, COCO17_FLIP_PERMUTATION], axis=-1)
                                     < 1e-9)
    # swaps: left ankle (15) shows the right ankle's position with prob swap_prob
    assert abs(swapped_at_true_partner[rep[:, 15], 15].mean() - 0.08) < 0.008
    # nose (0) has no partner and can only move through outliers
    assert abs(moved[rep[:, 0], 0].mean() - 0.05) < 0.006
    # outliers and swaps get low confidence; exact joints get ~1
    assert np.median(conf[moved]) < 0.3
    assert np.median(conf[rep & ~moved]) > 0.93


def test_confidence_falls_with_error():
    cfg = KeypointNoiseConfig(**ONLY_JITTER, jitter_px=6.0, conf_noise=0.0)
    uv = np.repeat(_people(1), 5000, axis=0)
    out, conf = corrupt_keypoints(uv, np.ones(uv.shape[:2], bool), (W, H),
                                  np.random.default_rng(4), cfg)
    err = np.linalg.norm(out - uv, axis=-1)
    h = uv[0, :, 1].max() - uv[0, :, 1].min()
    c = cfg.conf_err_px + cfg.conf_err_rel * h
    np.testing.assert_allclose(conf, np.clip(np.exp(-0.5 * (err / c) ** 2), cfg.conf_min, 1.0),
                               atol=1e-12)


def test_deterministic_given_rng_and_stream_independent_of_scale():
    uv = _people(7)
    vis = np.random.default_rng(0).random(uv.shape[:2]) > 0.2
    a = corrupt_keypoints(uv, vis, (W, H), np.random.default_rng(5), KeypointNoiseConfig())
    b = corrupt_keypoints(uv, vis, (W, H), np.random.default_rng(5), KeypointNoiseConfig())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    r1, r2 = np.random.default_rng(6), np.random.default_rng(6)
    corrupt_keypoints(uv, vis, (W, H), r1, KeypointNoiseConfig(scale=0.0))
    corrupt_keypoints(uv, vis, (W, H), r2, KeypointNoiseConfig(scale=2.0))
    assert r1.random() == r2.random()
    assert np.all((a[1] >= 0) & (a[1] <= 1))
    assert np.all(a[1][~vis] == 0)


def test_person_heights():
    uv = _people(3)
    vis = np.ones((3, 17), bool)
    vis[1, :16] = False
    np.testing.assert_allclose(person_heights(uv, vis), [200.0, 0.0, 200.0])


@pytest.mark.parametrize("kwargs, field", [
    (dict(scale=-1.0), "scale"), (dict(miss_prob=1.5), "miss_prob"),
    (dict(joint_weights=(1.0,) * 16), "joint_weights"), (dict(jitter_px=float("nan")), "jitter_px"),
])
def test_bad_config_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        KeypointNoiseConfig(**kwargs)


def test_bad_inputs():
    cfg = KeypointNoiseConfig()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uv"):
        corrupt_keypoints(np.zeros((2, 16, 2)), np.ones((2, 16), bool), (W, H), rng, cfg)
    with pytest.raises(ValueError, match="visible"):
        corrupt_keypoints(np.zeros((2, 17, 2)), np.ones((2, 16), bool), (W, H), rng, cfg)
    with pytest.raises(TypeError, match="visible"):
        corrupt_keypoints(np.zeros((2, 17, 2)), np.ones((2, 17)), (W, H), rng, cfg)
    with pytest.raises(ValueError, match="image_size"):
        corrupt_keypoints(np.zeros((2, 17, 2)), np.ones((2, 17), bool), (0, H), rng, cfg)
    with pytest.raises(TypeError, match="rng"):
        corrupt_keypoints(np.zeros((2, 17, 2)), np.ones((2, 17), bool), (W, H), 0, cfg)
