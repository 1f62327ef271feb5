"""Keypoint regressor: synthetic samples, input normalisation, outputs, training, checkpoints, bad input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hmr_node.core.body.model import load_body_model
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, rot6d_to_matrix
from hmr_node.core.regressor.model import (
    KeypointRegressor,
    RegressorConfig,
    load_regressor,
    normalize_keypoints,
    predict,
    save_regressor,
)
from hmr_node.core.regressor.synthetic_samples import (
    PoseBank,
    SyntheticSampleConfig,
    SyntheticSampler,
    project_with_K,
    remove_heading,
    split_train_validation,
)
from hmr_node.core.regressor.training import RegressorTrainingConfig, train_regressor
from hmr_node.core.scenario.keypoint_noise import KeypointNoiseConfig


@pytest.fixture(scope="module")
def body(random_smpl_npz):
    return load_body_model(random_smpl_npz)


def _clips(n=6, T=40, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        go = rng.normal(scale=0.15, size=(T, 3))
        bp = rng.normal(scale=scale, size=(T, 23, 3))
        tr = np.c_[rng.normal(size=T), np.full(T, 0.9), rng.normal(size=T)]
        out.append(MotionClip(f"synthetic/test_{i}", 30.0, go, bp, tr))
    return out


NOISE_OFF = dataclasses.replace(SyntheticSampleConfig(), noise_scale_range=(0.0, 0.0))


def test_noise_off_samples_are_exact_projections(body):
    bank = PoseBank.from_clips(_clips())
    batch = SyntheticSampler(body, bank, NOISE_OFF, seed=3).sample(200)
    # reported keypoints are exactly the visible (in front, in image) projections, conf 1
    np.testing.assert_array_equal((batch.conf > 0).numpy(), batch.visible.numpy())
    assert torch.all(batch.conf[batch.visible] == 1.0)
    torch.testing.assert_close(batch.uv[batch.visible], project_with_K(batch.keypoints3d, batch.K)[batch.visible])
    # independent projection with the intrinsic matrix: u ~ K X
    hom = torch.einsum("bij,bkj->bki", batch.K, batch.keypoints3d)
    torch.testing.assert_close(batch.uv_clean, hom[..., :2] / hom[..., 2:], rtol=1e-5, atol=1e-3)
    # ground truth is self-consistent: the body model of the GT parameters gives the GT points
    R = rot6d_to_matrix(batch.pose6d.reshape(-1, 24, 6))
    torch.testing.assert_close(R, batch.rotmats, atol=1e-5, rtol=0)
    kp = body.keypoints(batch.betas, R[:, 0], R[:, 1:], batch.transl)
    torch.testing.assert_close(kp, batch.keypoints3d, atol=1e-5, rtol=0)
    torch.testing.assert_close(body.joints(batch.betas, R[:, 0], R[:, 1:], batch.transl), batch.joints3d,
                               atol=1e-5, rtol=0)
    # the body pose is the clip's (frames drawn from the bank), untouched by the camera
    torch.testing.assert_close(batch.rotmats[:, 1:], axis_angle_to_matrix(batch.body_pose_aa), atol=1e-6, rtol=0)
    assert torch.all((batch.conf > 0).sum(1) >= NOISE_OFF.min_visible)
    assert batch.betas.abs().max() <= NOISE_OFF.betas_clip


def test_sample_geometry_distances_and_cameras(body):
    cfg = NOISE_OFF
    batch = SyntheticSampler(body, PoseBank.from_clips(_clips()), cfg, seed=0).sample(300)
    fx = batch.K[:, 0, 0]
    assert fx.min() >= cfg.focal_range[0] and fx.max() <= cfg.focal_range[1]
    sizes = {tuple(s) for s in batch.image_size.int().tolist()}
    assert sizes <= set(cfg.image_sizes)
    pelvis = batch.joints3d[:, 0]
    dist = pelvis.norm(dim=-1)
    # horizontal 1.5-8 m plus the vertical offset to a camera at most ~2 m above/below
    assert dist.min() > cfg.distance_range[0] - 0.1 and dist.max() < np.hypot(cfg.distance_range[1], 2.5)
    # some people are cut by the image border (partly out of view)
    assert (~batch.visible).any(dim=1).float().mean() > 0.05


def test_pose_bank_heading_removed_and_mirrored():
    clips = _clips(n=2, T=10)
    bank = PoseBank.from_clips(clips, mirror=True)
    assert bank.num_frames == 40
    forward = bank.root_tilt[:, :, 2]
    assert forward[:, 0].abs().max() < 1e-5 and torch.all(forward[:, 2] > 0)
    R = axis_angle_to_matrix(torch.randn(50, 3))
    torch.testing.assert_close(remove_heading(remove_heading(R)), remove_heading(R), atol=1e-5, rtol=0)


def test_validation_split_is_by_clip_and_deterministic():
    clips = [MotionClip(f"cmu/train/clip_{i}", 30.0, np.zeros((2, 3)), np.zeros((2, 23, 3)), np.zeros((2, 3)))
             for i in range(100)]
    fit, val = split_train_validation(clips, 0.2)
    assert {c.name for c in fit}.isdisjoint({c.name for c in val})
    assert len(fit) + len(val) == 100 and 8 <= len(val) <= 35
    assert [c.name for c in split_train_validation(clips[::-1], 0.2)[1]] == [c.name for c in val][::-1]


def _random_K(fx, fy, cx, cy):
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def test_input_normalisation_is_intrinsics_invariant():
    torch.manual_seed(0)
    pts = torch.randn(4, 17, 3) * 0.4 + torch.tensor([0.3, 0.2, 4.0])
    conf = torch.rand(4, 17)
    conf[:, :3] = 0.0  # missing keypoints
    cfg = RegressorConfig()
    model = KeypointRegressor(RegressorConfig(hidden_dim=64, num_blocks=1)).eval()
    outs = []
    for K in (_random_K(500.0, 505.0, 320.0, 240.0), _random_K(1150.0, 1150.0, 640.0, 350.0)):
        Kb = K.expand(4, 3, 3)
        uv = project_with_K(pts, Kb)
        uv[:, :3] = float("nan")  # garbage where conf == 0 must not matter
        outs.append((normalize_keypoints(uv, conf, Kb, cfg), predict(model, uv, conf, Kb)))
    (a, ca, sa), oa = outs[0]
    (b, cb, sb), ob = outs[1]
    torch.testing.assert_close(a, b, atol=2e-5, rtol=0)
    torch.testing.assert_close(ca, cb, atol=1e-6, rtol=0)
    torch.testing.assert_close(oa.transl, ob.transl, atol=1e-4, rtol=0)
    torch.testing.assert_close(oa.pose6d, ob.pose6d, atol=1e-4, rtol=0)
    # box-normalised keypoints span [-0.5, 0.5] along the box's long side
    kp = a[:, :34].reshape(4, 17, 2)[:, 3:]
    assert torch.allclose(kp.amax(dim=(1, 2)) - kp.amin(dim=(1, 2)) >= 0.999 * torch.ones(4), torch.ones(4).bool())


def test_output_shapes_and_valid_rotations():
    torch.manual_seed(1)
    model = KeypointRegressor(RegressorConfig(hidden_dim=64, num_blocks=2, feature_dim=32))
    for p in model.parameters():  # make the heads non-trivial
        torch.nn.init.normal_(p, std=0.2)
    uv = torch.rand(5, 17, 2) * 400
    out = model(uv, torch.rand(5, 17), _random_K(600.0, 600.0, 320.0, 240.0).expand(5, 3, 3))
    assert out.pose6d.shape == (5, 144) and out.betas.shape == (5, 10)
    assert out.transl.shape == (5, 3) and out.features.shape == (5, 32)
    R = rot6d_to_matrix(out.pose6d.reshape(5, 24, 6))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(5, 24, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(5, 24), atol=1e-5, rtol=0)
    # the 6D output is already the exact first two columns of a rotation
    torch.testing.assert_close(out.pose6d.reshape(5, 24, 3, 2), R[..., :2], atol=1e-6, rtol=0)
    assert torch.all(out.transl[:, 2] > 0)


def test_untrained_model_outputs_the_rest_prior():
    """Zero heads: upright body facing the camera, depth = body extent / box size."""
    cfg = RegressorConfig(hidden_dim=32, num_blocks=1)
    model = KeypointRegressor(cfg)
    for head in (model.head_pose, model.head_cam, model.head_betas):
        torch.nn.init.zeros_(head.weight)
    K = _random_K(800.0, 800.0, 320.0, 240.0)[None]
    uv = torch.tensor([[320.0, 100.0], [320.0, 420.0]]).repeat(9, 1)[:17][None]  # box 320 px tall at the centre
    out = model(uv, torch.ones(1, 17), K)
    R = rot6d_to_matrix(out.pose6d.reshape(1, 24, 6))
    torch.testing.assert_close(R[0, 0], torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6, rtol=0)
    torch.testing.assert_close(R[0, 1:], torch.eye(3).expand(23, 3, 3), atol=1e-6, rtol=0)
    z = float(np.exp(cfg.log_body_extent)) / (320.0 / 800.0)
    torch.testing.assert_close(out.transl, torch.tensor([[0.0, (260.0 - 240.0) / 800.0 * z, z]]), atol=1e-5, rtol=0)


def test_tiny_training_run_reduces_loss(body, tmp_path):
    clips = _clips(n=4, T=4, scale=0.2)
    narrow = dataclasses.replace(NOISE_OFF, distance_range=(3.0, 4.0), focal_range=(600.0, 650.0),
                                 camera_pitch_range_deg=(0.0, 5.0), azimuth_margin=0.5, betas_std=0.3,
                                 yaw_range_deg=30.0, body_tilt_deg=0.0)
    cfg = RegressorTrainingConfig(model=RegressorConfig(hidden_dim=128, num_blocks=2, feature_dim=32),
                                  samples=narrow, lr=2e-3, warmup_steps=20, val_samples=64, val_every=200,
                                  checkpoint_every=0, val_fraction=0.3, frame_step=1, mirror=False)
    torch.set_num_threads(1)
    model, hist = train_regressor(cfg, steps=200, batch=32, seed=0, out_dir=tmp_path, progress=False,
                                  body=body, clips=clips)
    first, last = np.mean(hist["loss"][:10]), np.mean(hist["loss"][-20:])
    assert last < first / 4, (first, last)
    assert hist["parts"]["depth"][-1] < 0.1  # log-depth error below 10%
    assert (tmp_path / "regressor.pt").is_file() and (tmp_path / "history.json").is_file()
    assert set(hist["val"][-1]) >= {"mpjpe_mm", "pa_mpjpe_mm", "transl_err_m"}
    assert set(hist["fit_clips"]).isdisjoint(hist["val_clips"])


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(2)
    model = KeypointRegressor(RegressorConfig(hidden_dim=48, num_blocks=2, feature_dim=16))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = save_regressor(tmp_path / "r.pt", model, {"steps": 7, "note": "x"})
    back = load_regressor(path)
    assert back.config == model.config and back.metadata == {"steps": 7, "note": "x"}
    uv, conf, K = torch.rand(3, 17, 2) * 300, torch.rand(3, 17), _random_K(500.0, 500.0, 150.0, 150.0).expand(3, 3, 3)
    a, b = predict(model, uv, conf, K), predict(back, uv, conf, K)
    for f in ("pose6d", "betas", "transl", "features"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), atol=0, rtol=0)
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="path"):
        load_regressor(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="path"):
        load_regressor(tmp_path / "missing.pt")


def test_predict_bad_input_is_finite():
    model = KeypointRegressor(RegressorConfig(hidden_dim=32, num_blocks=1))
    K = _random_K(600.0, 600.0, 320.0, 240.0).repeat(4, 1, 1)
    uv = torch.rand(4, 17, 2) * 300
    conf = torch.rand(4, 17)
    uv[0] = float("nan")                # NaN keypoints
    conf[1] = 0.0                        # all-zero confidences
    conf[2, :5] = float("nan")           # NaN confidences
    K[3] = torch.zeros(3, 3)             # singular intrinsics
    out = predict(model, uv, conf, K)
    for f in ("pose6d", "betas", "transl", "features"):
        assert torch.isfinite(getattr(out, f)).all(), f
    # single person, (17, 2) input and (3, 3) K broadcast; the method is the same function
    assert predict(model, uv[1], conf[1], K[0]).pose6d.shape == (1, 144)
    torch.testing.assert_close(model.predict(uv, conf, K).transl, out.transl, atol=0, rtol=0)
    with pytest.raises(ValueError, match="uv"):
        model(torch.zeros(2, 16, 2), torch.zeros(2, 16), K[:2])
    with pytest.raises(ValueError, match="hidden_dim"):
        RegressorConfig(hidden_dim=0)
