"""Smoke tests of hmr_node.tools.plots: each writes a readable PNG of the requested size."""
from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from hmr_node.core.body.skeleton import SMPL_JOINT_NAMES
from hmr_node.tools.plots import plot_per_joint_errors, plot_trajectory_topview, plot_training_curve


def read_png(path) -> np.ndarray:
    assert path.stat().st_size > 1000
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


def assert_drawn(image: np.ndarray, width: int, height: int) -> None:
    assert image.shape[:2] == (height, width)
    # not a blank canvas: enough ink and several distinct colours
    rgb = np.round(image[..., :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert np.unique(packed).size > 20
    assert (image[..., :3].min(axis=-1) < 0.5).mean() > 0.005


def test_plot_trajectory_topview(tmp_path):
    t = np.linspace(0.0, 2.0 * np.pi, 100)
    gt = {"person_1": np.stack([np.cos(t), np.sin(t)], -1),
          "person_2": np.stack([t, 0.5 * t], -1)}
    est = {name: xy + 0.05 * np.random.default_rng(0).normal(size=xy.shape)
           for name, xy in gt.items()}
    path = plot_trajectory_topview(tmp_path / "sub" / "top.png", gt, est, "world trajectories")
    assert path == tmp_path / "sub" / "top.png"
    assert_drawn(read_png(path), 800, 800)
    assert sorted(p.name for p in path.parent.iterdir()) == ["top.png"]  # no temp file left


def test_plot_per_joint_errors(tmp_path):
    g = np.random.default_rng(1)
    errors = {"regression": 60 + 20 * g.random(24), "scorehmr": 45 + 15 * g.random(24)}
    path = plot_per_joint_errors(tmp_path / "joints.png", errors, SMPL_JOINT_NAMES,
                                 "per-joint MPJPE", size_px=(1200, 500))
    assert_drawn(read_png(path), 1200, 500)


def test_plot_training_curve(tmp_path):
    steps = np.arange(0, 1000, 10)
    val = np.full(steps.shape, np.nan)
    val[::10] = 2.0 / (1.0 + steps[::10] / 150.0)  # logged every 100 steps
    path = plot_training_curve(tmp_path / "curve.png", steps,
                               {"train": list(1.0 / (1.0 + steps / 100.0)), "val": val},
                               "denoiser loss")
    assert_drawn(read_png(path), 900, 500)


def test_plots_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"gt_xy\['a'\].*\(5, 3\)"):
        plot_trajectory_topview(tmp_path / "a.png", {"a": np.zeros((5, 3))}, {}, "t")
    with pytest.raises(ValueError, match=r"errors_mm\['m'\].*\(24,\)"):
        plot_per_joint_errors(tmp_path / "b.png", {"m": np.zeros(14)}, SMPL_JOINT_NAMES, "t")
    with pytest.raises(ValueError, match=r"values\['loss'\].*log_y=False"):
        plot_training_curve(tmp_path / "c.png", [0, 1], {"loss": [1.0, -0.5]}, "t")
    with pytest.raises(ValueError, match=r"values\['loss'\].*\(3,\)"):
        plot_training_curve(tmp_path / "d.png", [0, 1, 2], {"loss": [1.0, 0.5]}, "t")
    assert list(tmp_path.iterdir()) == []
