"""ScoreHMR guidance losses and the refinement loop (single frame, multi-view, window, bad input)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_random_smpl_arrays
from hmr_node.core.body import load_body_model
from hmr_node.core.diffusion import DdimScheduler
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, axis_angle_to_rot6d, rot6d_to_matrix
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.scorehmr.denoiser import DenoiserConfig, PoseDenoiser
from hmr_node.core.scorehmr.guidance import (ShapedKeypoints, gauss_newton_translation, gmof, keypoint_gauss_newton_step,
                                             keypoint_gauss_newton_system, keypoint_loss, multiview_loss,
                                             multiview_prox, reprojection_loss, shared_body_gauss_newton_step,
                                             temporal_loss, temporal_prox)
from hmr_node.core.scorehmr.refiner import ScoreHmrConfig, ScoreHmrRefiner, observation_problems

FX, CX, CY, W, H = 500.0, 320.0, 240.0, 640.0, 480.0


@pytest.fixture(scope="module")
def body_path(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("body") / "random_smpl.npz"
    np.savez(path, **make_random_smpl_arrays(seed=4))
    return path


@pytest.fixture(scope="module")
def body(body_path):
    return load_body_model(body_path)


@pytest.fixture(scope="module")
def body64_no_correctives(tmp_path_factory):
    """float64, pose-corrective blend shapes zeroed (the Gauss-Newton Jacobian neglects them;
    this random body's correctives are far larger than a real body's)."""
    arrays = make_random_smpl_arrays(seed=4)
    arrays["posedirs"] = np.zeros_like(arrays["posedirs"])
    path = tmp_path_factory.mktemp("body") / "random_smpl_no_posedirs.npz"
    np.savez(path, **arrays)
    return load_body_model(path, dtype=torch.float64)


@pytest.fixture(scope="module")
def zero_denoiser():
    """An untrained denoiser predicts eps = 0 (zero-initialised output): the prior is flat and
    guided sampling is plain gradient descent on x0 - enough to test the loop's mechanics."""
    return PoseDenoiser(DenoiserConfig(cond_dim=8, hidden_dim=32, time_embed_dim=16))


def K_batch(B):
    return torch.tensor([[FX, 0, CX], [0, FX, CY], [0, 0, 1.0]]).expand(B, 3, 3).clone()


def make_problem(body, B=4, pose_noise=0.15, transl_offset=(0.1, -0.05, 0.4), seed=0):
    """GT people 4 m in front of the camera, exact keypoints, and a perturbed 'regression'."""
    g = torch.Generator().manual_seed(seed)
    aa = 0.3 * torch.randn(B, 24, 3, generator=g)
    aa[:, 0] = torch.tensor([np.pi, 0.0, 0.0]) + 0.2 * torch.randn(B, 3, generator=g)
    betas = 0.5 * torch.randn(B, 10, generator=g)
    transl = torch.tensor([0.0, 0.0, 4.0]) + 0.2 * torch.randn(B, 3, generator=g)
    R = axis_angle_to_matrix(aa)
    kp = body.keypoints(betas, R[:, 0], R[:, 1:], transl)
    uv = kp[..., :2] / kp[..., 2:] * FX + torch.tensor([CX, CY])
    obs = KeypointObservation(uv, torch.ones(B, 17), K_batch(B), torch.tensor([[W, H]]).repeat(B, 1))
    aa_reg = aa + pose_noise * torch.randn(B, 24, 3, generator=g)
    reg = RegressorOutput(axis_angle_to_rot6d(aa_reg).reshape(B, 144), betas.clone(),
                          transl + torch.tensor(transl_offset), torch.randn(B, 8, generator=g))
    gt = dict(pose6d=axis_angle_to_rot6d(aa).reshape(B, 144), R=R, betas=betas, transl=transl)
    return reg, obs, gt


def subset(obj, idx):
    return type(obj)(*(getattr(obj, f)[idx] for f in obj.__dataclass_fields__))


# ---------------------------------------------------------------------------- guidance losses
def test_shaped_keypoints_match_body_model(body):
    reg, _, gt = make_problem(body, B=3)
    sk = ShapedKeypoints(body, gt["betas"])
    ref = body.keypoints(gt["betas"], gt["R"][:, 0], gt["R"][:, 1:], gt["transl"])
    assert torch.allclose(sk(gt["R"], gt["transl"]), ref, atol=1e-5)
    assert torch.allclose(sk.from_pose6d(gt["pose6d"], gt["transl"]), ref, atol=1e-5)
    assert torch.allclose(sk.index(torch.tensor([2]))(gt["R"][2:]), ref[2:] - gt["transl"][2:, None], atol=1e-5)


def test_shaped_keypoints_hand_written_backward_matches_autograd(body):
    _, _, gt = make_problem(body, B=2)
    sk = ShapedKeypoints(body, gt["betas"])
    w = torch.randn(2, 17, 3, generator=torch.Generator().manual_seed(0))
    Ra = gt["R"].clone().requires_grad_(True)
    (sk(Ra) * w).sum().backward()
    Rb = gt["R"].clone().requires_grad_(True)
    (sk.keypoints_autograd(Rb) * w).sum().backward()
    assert torch.allclose(Ra.grad, Rb.grad, atol=1e-5, rtol=1e-4)
    assert Ra.grad.abs().max() > 1e-2


def test_preconditioner_is_the_per_joint_gauss_newton_curvature(body):
    _, _, gt = make_problem(body, B=2)
    sk = ShapedKeypoints(body, gt["betas"])
    weight = torch.rand(2, 17, generator=torch.Generator().manual_seed(1))
    R = gt["R"]
    w = torch.randn(2, 17, 3, generator=torch.Generator().manual_seed(2))
    Ra = R.clone().requires_grad_(True)
    (sk(Ra) * w).sum().backward()
    sk.set_preconditioner(weight, damping=0.05)
    Rb = R.clone().requires_grad_(True)
    (sk(Rb) * w).sum().backward()
    # independent H: which keypoints move when joint j rotates (finite test), and their lever arms
    kp = sk.keypoints_autograd(R)
    pj = body.joints(gt["betas"], R[:, 0], R[:, 1:])
    for j in (0, 1, 4, 7, 18, 20):
        bump = R.clone()
        bump[:, j] = bump[:, j] @ axis_angle_to_matrix(torch.tensor([0.0, 0.3, 0.2]))
        moved = (sk.keypoints_autograd(bump) - kp).norm(dim=-1) > 1e-6  # (2, 17)
        H = 2 * (moved * weight * ((kp - pj[:, j, None]) ** 2).sum(-1)).sum(-1)
        assert torch.allclose(Rb.grad[:, j], Ra.grad[:, j] / (H + 0.05)[:, None, None], rtol=1e-4, atol=1e-6), j


def test_reprojection_loss_zero_at_truth_and_robust(body):
    reg, obs, gt = make_problem(body, B=2)
    l0 = reprojection_loss(gt["pose6d"], gt["betas"], gt["transl"], obs.uv, obs.conf, obs.K, body, sigma=50.0)
    assert l0.shape == (2,) and float(l0.abs().max()) < 1e-3
    # one keypoint 3 px off: GMoF(9) = 50^2 * 9 / (50^2 + 9); weighted by its confidence
    uv = obs.uv.clone()
    uv[0, 5, 0] += 3.0
    conf = obs.conf.clone()
    conf[0, 5] = 0.5
    l1 = reprojection_loss(gt["pose6d"], gt["betas"], gt["transl"], uv, conf, obs.K, body, sigma=50.0)
    assert l1[0].item() == pytest.approx(0.5 * 2500 * 9 / 2509, rel=1e-3, abs=1e-3)
    # a gross outlier costs at most conf * sigma^2
    uv[0, 5, 0] += 1e5
    l2 = reprojection_loss(gt["pose6d"], gt["betas"], gt["transl"], uv, conf, obs.K, body, sigma=50.0)
    assert l2[0].item() <= 0.5 * 2500 + 1e-2
    assert torch.allclose(gmof(torch.tensor([0.0, 1e12]), 2.0), torch.tensor([0.0, 4.0]))


def test_gauss_newton_translation_recovers_the_truth_despite_an_outlier(body):
    reg, obs, gt = make_problem(body, B=3)
    pts = body.keypoints(gt["betas"], gt["R"][:, 0], gt["R"][:, 1:])
    start = gt["transl"] + torch.tensor([0.3, -0.2, 1.0])
    g5 = gauss_newton_translation(pts, start, obs.uv, obs.conf, obs.K, sigma=100.0, iterations=8)
    assert (g5 - gt["transl"]).abs().max() < 1e-3
    # the loss decreases monotonically iteration by iteration
    losses, g = [], start
    for _ in range(4):
        losses.append(keypoint_loss(pts + g[:, None], obs.uv, obs.conf, obs.K, 100.0))
        g = gauss_newton_translation(pts, g, obs.uv, obs.conf, obs.K, sigma=100.0)
    assert all(bool((b <= a + 1e-6).all()) for a, b in zip(losses, losses[1:]))
    uv = obs.uv.clone()
    uv[:, 0] += 400.0  # a wrong nose detection far away
    g_rob = gauss_newton_translation(pts, start, uv, obs.conf, obs.K, sigma=30.0, iterations=15)
    assert (g_rob - gt["transl"]).norm(dim=-1).max() < 0.03


def test_multiview_loss_ignores_global_orientation_and_matches_pairwise_form():
    g = torch.Generator().manual_seed(0)
    body_pose = axis_angle_to_rot6d(0.3 * torch.randn(1, 23, 3, generator=g)).reshape(1, 138)
    views = []
    for n in range(3):  # same body pose, different global orientations
        go = axis_angle_to_rot6d(torch.randn(1, 3, generator=g))
        views.append(torch.cat((go, body_pose), dim=1))
    x = torch.stack(views, dim=1)  # (1, 3, 144)
    assert multiview_loss(x).abs().max() < 1e-10
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    pairwise = sum(((y[:, i, 6:] - y[:, j, 6:]) ** 2).sum(-1) for i in range(3) for j in range(i + 1, 3)) / 3
    assert torch.allclose(multiview_loss(y), pairwise, rtol=1e-5)
    # a view with weight 0 takes no part
    y2 = y.clone()
    y2[:, 2] += 100.0
    w = torch.tensor([[1.0, 1.0, 0.0]])
    assert torch.allclose(multiview_loss(y2, w), ((y[:, 0, 6:] - y[:, 1, 6:]) ** 2).sum(-1) / 2, rtol=1e-5)


def test_temporal_loss_first_and_second_differences():
    t = torch.arange(5, dtype=torch.float64)
    line = (t[:, None] * torch.ones(1, 144, dtype=torch.float64))[None]  # constant velocity
    assert temporal_loss(line, order=1).item() == pytest.approx(4 * 144)
    assert temporal_loss(line, order=2).item() == pytest.approx(0.0, abs=1e-12)
    w = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    assert temporal_loss(line, w, order=1).item() == pytest.approx(3 * 144)


def test_gauss_newton_jacobian_matches_finite_differences(body, body64_no_correctives):
    reg, obs, gt = make_problem(body, B=2, pose_noise=0.1)
    R = rot6d_to_matrix(reg.pose6d.reshape(2, 24, 6)).double()
    sk = ShapedKeypoints(body64_no_correctives, reg.betas.double())
    gamma, uv, conf, K = reg.transl.double(), obs.uv.double(), obs.conf.double(), obs.K.double()
    ones = torch.ones(2, dtype=torch.float64)
    sigma = 1e9  # GMoF weights ~ 1: J and r are the plain linearisation
    J, r = keypoint_gauss_newton_system(sk, R, gamma, uv, conf, K, sigma, ones)
    for col in range(75):  # every joint axis (parent frame) and the translation
        d = torch.zeros(2, 75, dtype=torch.float64)
        d[:, col] = 1e-7
        Rp = axis_angle_to_matrix(d[:, :72].reshape(2, 24, 3)) @ R
        _, r_p = keypoint_gauss_newton_system(sk, Rp, gamma + d[:, 72:], uv, conf, K, sigma, ones)
        fd = (r_p - r) / 1e-7
        assert torch.allclose(J[..., col], fd, atol=1e-4 * fd.abs().max() + 1e-6), col


def test_gauss_newton_step_fits_exact_keypoints(body):
    reg, obs, gt = make_problem(body, B=3, pose_noise=0.03, transl_offset=(0.02, 0.0, 0.05))
    sk = ShapedKeypoints(body, reg.betas)
    R = rot6d_to_matrix(reg.pose6d.reshape(3, 24, 6))
    scale = (reg.transl[:, 2] / FX) ** 2
    d6, dg = keypoint_gauss_newton_step(sk, R, reg.transl, obs.uv, obs.conf, obs.K, 100.0, scale, 1e-4)
    before = reprojection_loss(reg.pose6d, reg.betas, reg.transl, obs.uv, obs.conf, obs.K, body)
    after = reprojection_loss(reg.pose6d + d6, reg.betas, reg.transl + dg, obs.uv, obs.conf, obs.K, body)
    assert bool((after < 0.1 * before).all())
    # the shared multi-view solve with one view is the single-view solve
    d6s, dgs = shared_body_gauss_newton_step(sk, R, reg.transl, obs.uv, obs.conf, obs.K, 100.0, scale, 1e-4, views=1)
    assert torch.allclose(d6s, d6, atol=1e-4) and torch.allclose(dgs, dg, atol=1e-5)


def test_shared_gauss_newton_gives_views_one_body_change(body):
    reg_a, obs_a, _ = make_problem(body, B=1, seed=21)
    reg_b, obs_b, _ = make_problem(body, B=1, seed=22)
    R = rot6d_to_matrix(torch.cat((reg_a.pose6d, reg_b.pose6d)).reshape(2, 24, 6))
    sk = ShapedKeypoints(body, torch.cat((reg_a.betas, reg_a.betas)))
    cat = lambda a, b: torch.cat((a, b))  # noqa: E731
    gamma = cat(reg_a.transl, reg_b.transl)
    d6, _ = shared_body_gauss_newton_step(sk, R, gamma, cat(obs_a.uv, obs_b.uv), cat(obs_a.conf, obs_b.conf),
                                          cat(obs_a.K, obs_b.K), 100.0, torch.full((2,), 1e-4), 1e-3, views=2)
    # parent-relative change of each body joint: R_new R^T is the same rotation in both views
    R_new = rot6d_to_matrix((R[..., :2].reshape(2, 144) + d6).reshape(2, 24, 6))
    delta = R_new[:, 1:] @ R[:, 1:].transpose(-1, -2)
    assert torch.allclose(delta[0], delta[1], atol=1e-4)
    assert (delta[0] - torch.eye(3)).abs().max() > 1e-3


def test_temporal_prox_is_the_implicit_step():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 7, 144, generator=g, dtype=torch.float64)
    free = torch.ones(1, 7, dtype=torch.bool)
    free[0, 0] = False  # a fixed context frame
    for order in (1, 2):
        w = torch.ones(1, 7 - order, dtype=torch.float64)
        # small step: the gradient step
        small = temporal_prox(x0, free, w, 1e-6, order)
        xr = x0.clone().requires_grad_(True)
        grad = torch.autograd.grad(temporal_loss(xr, w, order).sum(), xr)[0]
        expect = x0 - 1e-6 * grad
        expect[0, 0] = x0[0, 0]
        assert torch.allclose(small, expect, atol=1e-10)
        # any step: the gradient of 1/2 |x - x0|^2 + kappa L(x) vanishes at the free frames
        big = temporal_prox(x0, free, w, 50.0, order).requires_grad_(True)
        obj = 0.5 * ((big - x0) ** 2).sum() + 50.0 * temporal_loss(big, w, order).sum()
        gb = torch.autograd.grad(obj, big)[0]
        assert gb[0, 1:].abs().max() < 1e-8 and torch.allclose(big[0, 0].detach(), x0[0, 0], atol=1e-12)


def test_multiview_prox_reaches_consensus_on_the_body_only():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 144, generator=g, dtype=torch.float64)
    free = torch.ones(2, 3, dtype=torch.bool)
    w = torch.ones(2, 3, dtype=torch.float64)
    out = multiview_prox(x0, free, w, 1e6)
    assert torch.allclose(out[..., :6], x0[..., :6])
    assert torch.allclose(out[:, 0, 6:], out[:, 1, 6:], atol=1e-5)
    assert torch.allclose(out[:, 0, 6:], x0[..., 6:].mean(1), atol=1e-5)  # the mean is kept


# ---------------------------------------------------------------------------- configuration
def test_config_validation_and_upstream_default():
    up = ScoreHmrConfig.upstream_default()
    assert (up.num_rounds, up.num_steps, up.tau) == (10, 25, 50)
    cfg = ScoreHmrConfig()
    assert cfg.latency_frames == (cfg.lookahead, cfg.lookahead + cfg.stride - 1)
    with pytest.raises(ValueError, match="stride"):
        ScoreHmrConfig(window=4, stride=5)
    with pytest.raises(ValueError, match="num_steps"):
        ScoreHmrConfig(num_steps=60, tau=50)
    with pytest.raises(ValueError, match="rho_keypoints"):
        ScoreHmrConfig(rho_keypoints=-1.0)


# ---------------------------------------------------------------------------- the loop
def _gaussian_eps_fn(mu, s):
    sched = DdimScheduler()

    def eps_fn(x, t, c):
        a = sched.alpha_bar_at(t, x)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)
    return eps_fn


def test_unguided_round_trip_through_the_refiner(body):
    # guidance off (rho = 0) -> one round is inversion to tau and plain DDIM sampling back
    g = torch.Generator().manual_seed(0)
    W_ = 6
    x0 = axis_angle_to_rot6d(0.4 * torch.randn(W_, 24, 3, generator=g)).reshape(W_, 144)  # valid 6D
    mu, s = x0.mean(0), 0.3  # eps_fn: the ideal denoiser of data N(mu, s^2 I)
    reg = RegressorOutput(x0, torch.zeros(W_, 10), torch.tensor([[0, 0, 4.0]]).repeat(W_, 1), torch.zeros(W_, 8))
    up = replace(ScoreHmrConfig.upstream_default(), num_rounds=1, rho_temporal=0.0, video_use_keypoints=False)
    res = ScoreHmrRefiner(_gaussian_eps_fn(mu, s), body, up).refine_window(reg)
    assert res.refined.all() and res.num_denoiser_calls == 50
    assert (res.pose6d - x0).abs().mean() < 1e-3  # the paper's < 1e-3 per dimension
    # fixed-point inversion makes the round trip exact even with our 5-step schedule
    fp = ScoreHmrConfig(num_rounds=1, num_steps=5, num_inversion_steps=0, inversion_fixed_point_iterations=3,
                        rho_temporal=0.0, video_use_keypoints=False)
    res = ScoreHmrRefiner(_gaussian_eps_fn(mu, s), body, fp).refine_window(reg)
    assert (res.pose6d - x0).abs().max() < 1e-4
    assert res.num_denoiser_calls == 5 * 4 + 5


def test_keypoint_guidance_reduces_reprojection_and_moves_camera_to_truth(body, zero_denoiser):
    # (monocular fitting leaves depth / pose ambiguous, so the pose error is kept small here)
    reg, obs, gt = make_problem(body, B=4, pose_noise=0.05)
    cfg = ScoreHmrConfig(num_rounds=3, num_steps=5, stop_threshold=0.0)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine(reg, obs)
    assert res.refined.all() and res.reason == [""] * 4
    before = reprojection_loss(reg.pose6d, reg.betas, reg.transl, obs.uv, obs.conf, obs.K, body)
    after = reprojection_loss(res.pose6d, res.betas, res.transl, obs.uv, obs.conf, obs.K, body)
    assert bool((after < 0.3 * before).all())
    h = res.loss_history
    assert bool((h[1:] <= h[:-1] + 1e-9).all()), "guidance loss should fall round by round"
    d0 = (reg.transl - gt["transl"]).norm(dim=-1)
    d1 = (res.transl - gt["transl"]).norm(dim=-1)
    assert bool((d1 < 0.5 * d0).all())
    # the pose itself moves towards the truth
    e0 = (rot6d_to_matrix(reg.pose6d.reshape(4, 24, 6)) - gt["R"]).norm(dim=(-1, -2)).mean()
    e1 = (rot6d_to_matrix(res.pose6d.reshape(4, 24, 6)) - gt["R"]).norm(dim=(-1, -2)).mean()
    assert e1 < e0
    # valid 6D out: orthonormal columns
    R = rot6d_to_matrix(res.pose6d.reshape(4, 24, 6))
    assert torch.allclose(res.pose6d.reshape(4, 24, 3, 2), R[..., :2], atol=1e-6)


def test_preconditioned_keypoint_guidance_fits_the_keypoints(body, zero_denoiser):
    reg, obs, gt = make_problem(body, B=4, pose_noise=0.05)
    cfg = ScoreHmrConfig(num_rounds=2, num_steps=5, stop_threshold=0.0, keypoint_preconditioning=True,
                         rho_keypoints=100.0)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine(reg, obs)
    before = reprojection_loss(reg.pose6d, reg.betas, reg.transl, obs.uv, obs.conf, obs.K, body)
    after = reprojection_loss(res.pose6d, res.betas, res.transl, obs.uv, obs.conf, obs.K, body)
    assert bool((after < 0.3 * before).all())


def test_trust_region_bounds_the_guidance_step(body, zero_denoiser):
    reg, obs, _ = make_problem(body, B=3, pose_noise=0.3)
    base = dict(num_rounds=1, num_steps=4, stop_threshold=0.0, rho_keypoints=1e7, keypoint_preconditioning=False,
                guidance_step="gradient")
    wild = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(max_guidance_step=0.0, **base)).refine(reg, obs)
    safe = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(max_guidance_step=0.05, **base)).refine(reg, obs)
    move = lambda r: (r.pose6d - reg.pose6d).reshape(3, 24, 6).norm(dim=-1).max()  # noqa: E731
    # eps = 0: each of the 4 guided steps moves a joint's 6D vector by at most 0.05 (before
    # re-orthonormalisation, which does not lengthen the move of unit columns much)
    assert move(safe) <= 4 * 0.05 * 1.5
    assert move(wild) > 1.0


def test_early_stopping_drops_converged_samples(body, zero_denoiser):
    reg, obs, gt = make_problem(body, B=4, seed=3)
    # samples 0 and 1 start at the truth (nothing to fix); 2 and 3 are perturbed
    reg.pose6d[:2] = gt["pose6d"][:2]
    reg.transl[:2] = gt["transl"][:2]
    cfg = ScoreHmrConfig(num_rounds=4, num_steps=5, stop_threshold=0.05)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine(reg, obs)
    assert res.rounds[:2].tolist() == [1, 1]
    assert bool((res.rounds[2:] > 1).all())
    # every round costs 1 + 5 calls (1-step inversion, 5 guided steps); each call only carries
    # the groups still active
    assert res.num_denoiser_calls == 6 * int(res.rounds.max())
    assert res.num_denoiser_samples == 6 * int(res.rounds.sum())
    # a sample's result does not depend on its batch mates
    alone = ScoreHmrRefiner(zero_denoiser, body, cfg).refine(subset(reg, [2]), subset(obs, [2]))
    assert torch.allclose(alone.pose6d[0], res.pose6d[2], atol=1e-4)


@pytest.mark.parametrize("case", ["nan", "zero_conf", "outside", "singular_K", "too_few"])
def test_bad_input_returns_regression_unrefined(body, zero_denoiser, case):
    reg, obs, _ = make_problem(body, B=3, seed=5)
    i = 1
    if case == "nan":
        obs.uv[i, 3] = float("nan")
    elif case == "zero_conf":
        obs.conf[i] = 0.0
    elif case == "outside":
        obs.uv[i, :, 0] += 5000.0
    elif case == "singular_K":
        obs.K[i] = torch.tensor([[500.0, 0, 320], [0, 0, 240], [0, 0, 1]])
    elif case == "too_few":
        obs.conf[i, 3:] = 0.0
    ref = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(num_rounds=2, num_steps=3))
    res = ref.refine(reg, obs)
    expected = {"nan": "NaN", "zero_conf": "zero", "outside": "outside", "singular_K": "singular",
                "too_few": "min_keypoints"}[case]
    assert not res.refined[i] and expected in res.reason[i]
    assert torch.equal(res.pose6d[i], reg.pose6d[i]) and torch.equal(res.transl[i], reg.transl[i])
    assert res.refined[[0, 2]].all() and res.reason[0] == res.reason[2] == ""
    for v in (res.pose6d, res.betas, res.transl):
        assert torch.isfinite(v).all()
    # the good samples get what they get without the bad one
    good = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(num_rounds=2, num_steps=3)).refine(
        subset(reg, [0, 2]), subset(obs, [0, 2]))
    assert torch.allclose(good.pose6d, res.pose6d[[0, 2]], atol=1e-4)


def test_observation_problems_nan_with_zero_confidence_is_just_missing(body):
    _, obs, _ = make_problem(body, B=2)
    obs.uv[0, 4] = float("nan")
    obs.conf[0, 4] = 0.0  # a missing keypoint may carry any position
    assert observation_problems(obs, 0.0, 4) == ["", ""]


def test_empty_window_and_window_without_guidance(body, zero_denoiser):
    ref = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig())
    empty = RegressorOutput(torch.zeros(0, 144), torch.zeros(0, 10), torch.zeros(0, 3), torch.zeros(0, 8))
    res = ref.refine_window(empty)
    assert res.pose6d.shape == (0, 144) and res.note == "empty window" and res.num_denoiser_calls == 0
    # one frame, no keypoints, no context: nothing to guide it
    reg, _, _ = make_problem(body, B=1)
    res = ref.refine_window(reg)
    assert not res.refined[0] and "nothing to guide" in res.reason[0]
    assert torch.equal(res.pose6d, reg.pose6d)


def _jitter(x):
    return (x[2:] - 2 * x[1:-1] + x[:-2]).norm(dim=-1).mean()


def test_temporal_guidance_reduces_jitter_of_a_noisy_sequence(body, zero_denoiser):
    W_ = 16
    t = torch.linspace(0, 1, W_)[:, None, None]
    aa = 0.4 * torch.sin(2 * np.pi * 0.5 * t + torch.arange(24 * 3).reshape(1, 24, 3) * 0.1)
    smooth = axis_angle_to_rot6d(aa).reshape(W_, 144)
    g = torch.Generator().manual_seed(0)
    noisy = axis_angle_to_rot6d(aa + 0.05 * torch.randn(aa.shape, generator=g)).reshape(W_, 144)
    reg = RegressorOutput(noisy, torch.zeros(W_, 10), torch.tensor([[0, 0, 4.0]]).repeat(W_, 1), torch.zeros(W_, 8))
    cfg = ScoreHmrConfig(num_rounds=3, num_steps=5, rho_temporal=100.0, stop_threshold=0.0)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine_window(reg)
    assert res.refined.all()
    assert _jitter(res.pose6d) < 0.5 * _jitter(noisy)
    assert (res.pose6d - smooth).norm(dim=-1).mean() < (noisy - smooth).norm(dim=-1).mean()
    h = res.loss_history[:, 0]
    assert bool((h[1:] < h[:-1]).all())
    # context frames are held fixed and only enter the temporal term
    ctx = smooth[:2]
    res2 = ScoreHmrRefiner(zero_denoiser, body, cfg).refine_window(subset(reg, slice(2, W_)), context=ctx)
    assert res2.pose6d.shape == (W_ - 2, 144) and res2.refined.all()
    # the first refined frame is pulled towards the fixed context frame before it
    assert (res2.pose6d[0] - ctx[1]).norm() < (noisy[2] - ctx[1]).norm()


def test_window_frame_with_bad_keypoints_is_refined_by_the_temporal_term(body, zero_denoiser):
    reg, obs, _ = make_problem(body, B=5, pose_noise=0.05, seed=8)
    obs.conf[2] = 0.0
    res = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(num_rounds=1, num_steps=3)).refine_window(reg, obs)
    assert res.refined.all() and res.reason[2].startswith("keypoints ignored") and res.reason[0] == ""
    assert torch.equal(res.transl[2], reg.transl[2])  # no keypoints: no camera update
    # a frame whose regression is NaN is excluded and returned as is; the others still refine
    reg.pose6d[3] = float("nan")
    res = ScoreHmrRefiner(zero_denoiser, body, ScoreHmrConfig(num_rounds=1, num_steps=3)).refine_window(reg, obs)
    assert not res.refined[3] and "not finite" in res.reason[3]
    assert res.refined[[0, 1, 2, 4]].all() and torch.isfinite(res.pose6d[[0, 1, 2, 4]]).all()


def test_multiview_consistency_pulls_views_together(body, zero_denoiser):
    # 3 views of one person: same body pose, different global orientations, noisy estimates
    N = 3
    g = torch.Generator().manual_seed(2)
    body_aa = 0.3 * torch.randn(1, 23, 3, generator=g)
    regs = []
    for n in range(N):
        go = torch.tensor([[np.pi, 0.0, 0.0]]) + 0.5 * torch.randn(1, 3, generator=g)
        aa = torch.cat((go[:, None], body_aa + 0.1 * torch.randn(1, 23, 3, generator=g)), dim=1)
        regs.append(RegressorOutput(axis_angle_to_rot6d(aa).reshape(1, 144), 0.3 * torch.randn(1, 10, generator=g),
                                    torch.tensor([[0.0, 0.0, 4.0]]), torch.randn(1, 8, generator=g)))
    cfg = ScoreHmrConfig(num_rounds=3, num_steps=5, rho_multiview=200.0, stop_threshold=0.0)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine_multiview(regs)
    x_in = torch.cat([r.pose6d for r in regs])[None]
    assert res.refined.all() and res.pose6d.shape == (N, 144)
    assert multiview_loss(res.pose6d[None]) < 0.2 * multiview_loss(x_in)
    # global orientations are not part of the term
    assert (res.pose6d[:, :6] - x_in[0, :, :6]).abs().max() < 0.02
    # shared betas: every view gets the mean
    mean_b = torch.cat([r.betas for r in regs]).mean(0)
    assert torch.allclose(res.betas, mean_b.expand(N, -1), atol=1e-6)
    # the stacked form (one RegressorOutput with N rows) gives the same
    stacked = RegressorOutput(*(torch.cat([getattr(r, f) for r in regs]) for f in ("pose6d", "betas", "transl", "features")))
    res2 = ScoreHmrRefiner(zero_denoiser, body, cfg).refine_multiview(stacked)
    assert torch.allclose(res2.pose6d, res.pose6d, atol=1e-5)


def test_multiview_with_keypoints_per_view_and_view_major_layout(body, zero_denoiser):
    # 2 views x 2 people; view-major rows (n * B + b); people are the groups
    reg_a, obs_a, _ = make_problem(body, B=2, seed=11)
    reg_b, obs_b, _ = make_problem(body, B=2, seed=12)
    obs_b.conf[1] = 0.0  # person 1 unusable in view b: keeps the cross-view term
    cfg = ScoreHmrConfig(num_rounds=2, num_steps=3)
    res = ScoreHmrRefiner(zero_denoiser, body, cfg).refine_multiview([reg_a, reg_b], [obs_a, obs_b])
    assert res.group.tolist() == [0, 1, 0, 1]
    assert res.refined.all() and res.reason[3].startswith("keypoints ignored")
    assert res.loss_history.shape[1] == 2
