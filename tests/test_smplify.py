"""SMPLify baseline: it fits keypoints, its priors act, bad input comes back unchanged, video mode smooths."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hmr_node.core.body.model import load_body_model
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from hmr_node.core.priors.gmm import GaussianMixture, GmmPosePrior
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.regressor.synthetic_samples import project_with_K
from hmr_node.core.smplify.fitting import Smplify, SmplifyConfig
from hmr_node.core.smplify.losses import angle_prior, gmof, second_difference_energy

K0 = torch.tensor([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
FAST = SmplifyConfig(camera_iters=10, num_iters=40, lr=0.04)


@pytest.fixture(scope="module")
def body(random_smpl_npz):
    return load_body_model(random_smpl_npz)


@pytest.fixture(scope="module")
def prior():
    """A broad unimodal 'plausible pose' prior: N(0, 0.3^2 I) over the 69-D body pose."""
    return GmmPosePrior(GaussianMixture(np.ones(1), np.zeros((1, 69)), 0.09 * np.eye(69)[None]))


def _output(go_aa, bp_aa, betas, transl):
    R = torch.cat((axis_angle_to_matrix(go_aa)[:, None], axis_angle_to_matrix(bp_aa.reshape(-1, 23, 3))), dim=1)
    return RegressorOutput(pose6d=matrix_to_rot6d(R).flatten(1), betas=betas, transl=transl,
                           features=torch.zeros(go_aa.shape[0], 4))


def _scene(body, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    go = torch.tensor([np.pi, 0.0, 0.0]).repeat(B, 1) + 0.2 * torch.randn(B, 3, generator=g)
    bp = 0.2 * torch.randn(B, 69, generator=g)
    betas = 0.5 * torch.randn(B, 10, generator=g)
    transl = torch.tensor([0.0, 0.0, 4.0]) + 0.3 * torch.randn(B, 3, generator=g)
    kp = body.keypoints(betas, axis_angle_to_matrix(go), axis_angle_to_matrix(bp.reshape(B, 23, 3)), transl)
    uv = project_with_K(kp, K0.expand(B, 3, 3))
    obs = KeypointObservation(uv=uv, conf=torch.ones(B, 17), K=K0.expand(B, 3, 3).clone(),
                              image_size=torch.tensor([[640.0, 480.0]]).repeat(B, 1))
    init = _output(go + 0.15 * torch.randn(B, 3, generator=g), bp + 0.2 * torch.randn(B, 69, generator=g),
                   betas + 0.3 * torch.randn(B, 10, generator=g), transl + torch.tensor([0.15, -0.1, 0.4]))
    return obs, init, (go, bp, betas, transl)


def test_gmof_and_angle_prior_analytic():
    r = torch.tensor([0.0, 1.0, 100.0, 1e6])
    torch.testing.assert_close(gmof(r, 100.0), torch.tensor([0.0, 1e4 / 10001, 5000.0, 1e4 * 1e12 / (1e4 + 1e12)]))
    bp = torch.zeros(2, 69)
    bp[1, 52] = 1.0  # left elbow about +y: bent backwards
    e = angle_prior(bp)
    torch.testing.assert_close(e, torch.tensor([4.0, 3.0 + np.exp(2.0)], dtype=torch.float32))
    x = torch.arange(5.0)[:, None] ** 2  # constant second difference 2
    assert float(second_difference_energy(x)) == pytest.approx(3 * 4.0)
    assert float(second_difference_energy(x, torch.tensor([0, 1, 2, 4, 5]))) == pytest.approx(4.0)


def test_fit_reduces_reprojection_error(body, prior):
    torch.manual_seed(0)
    obs, init, _ = _scene(body)
    res = Smplify(body, prior, FAST).fit(init, obs)
    assert res.fitted.all() and res.reason == [""] * 4
    assert torch.all(res.reprojection_px_init > 10.0)
    assert torch.all(res.reprojection_px < 0.3 * res.reprojection_px_init), (res.reprojection_px_init,
                                                                              res.reprojection_px)
    assert torch.isfinite(res.energy).all()
    assert res.pose6d.shape == (4, 144) and res.to_output(init.features).transl.shape == (4, 3)


def test_lbfgs_also_fits(body, prior):
    obs, init, _ = _scene(body, B=2, seed=1)
    cfg = dataclasses.replace(FAST, optimizer="lbfgs", camera_iters=2, num_iters=4)
    res = Smplify(body, prior, cfg).fit(init, obs)
    assert torch.all(res.reprojection_px < 0.3 * res.reprojection_px_init)


def test_priors_pull_unobserved_implausible_pose_to_plausible(body, prior):
    """Arms unobserved and bent backwards at the elbows: the priors bring them back; without
    priors nothing moves them."""
    obs, init, (go, bp, betas, transl) = _scene(body, B=2, seed=2)
    conf = obs.conf.clone()
    conf[:, 7:11] = 0.0  # elbows and wrists not detected
    obs = dataclasses.replace(obs, conf=conf)
    bad = bp.clone()
    bad[:, 52], bad[:, 55] = 1.4, -1.4  # both elbows hyper-extended (wrong direction)
    init = _output(go, bad, betas, transl)
    spin = dataclasses.replace(FAST, w_angle=15.2 ** 2)  # SPIN's angle weight: a strong pull
    with_prior = Smplify(body, prior, spin).fit(init, obs)
    no_prior = Smplify(body, prior, dataclasses.replace(FAST, w_pose=0.0, w_angle=0.0, w_shape=0.0)).fit(init, obs)
    default = Smplify(body, prior, FAST).fit(init, obs)  # the weaker default angle weight pulls less

    def elbows(res):
        from hmr_node.core.geometry.rotations import matrix_to_axis_angle
        aa = matrix_to_axis_angle(res.body_pose).reshape(-1, 69)
        return aa, aa[:, [52, 55]]

    aa_p, el_p = elbows(with_prior)
    aa_n, el_n = elbows(no_prior)
    assert torch.all(angle_prior(aa_p) < 0.2 * angle_prior(bad))
    assert torch.all(prior(aa_p) < prior(bad) - 5)
    assert torch.all(el_p[:, 0] < 0.7) and torch.all(el_p[:, 1] > -0.7)
    # without the priors the elbows stay (mostly) bent the wrong way
    assert torch.all(angle_prior(aa_p) < 0.3 * angle_prior(aa_n))
    aa_d, _ = elbows(default)
    assert torch.all(angle_prior(aa_d) < 0.5 * angle_prior(bad)) and torch.all(prior(aa_d) < prior(bad))


def test_bad_input_returns_init_unfitted(body, prior):
    obs, init, _ = _scene(body, B=6, seed=3)
    uv, conf, K = obs.uv.clone(), obs.conf.clone(), obs.K.clone()
    uv[0] = float("nan")                      # NaN keypoints
    conf[1] = 0.0                             # all-zero confidences
    uv[2] = uv[2] + 5000.0                    # person fully outside the image
    K[3] = torch.zeros(3, 3)                  # singular intrinsics
    conf[4, :14] = float("nan")               # mostly NaN confidences -> too few keypoints
    bad = KeypointObservation(uv=uv, conf=conf, K=K, image_size=obs.image_size)
    res = Smplify(body, prior, dataclasses.replace(FAST, num_iters=10, camera_iters=2)).fit(init, bad)
    assert res.fitted.tolist() == [False, False, False, False, False, True]
    assert all(res.reason[i] for i in range(5)) and res.reason[5] == ""
    assert "intrinsics" in res.reason[3] and "keypoints" in res.reason[0]
    torch.testing.assert_close(res.pose6d[:5], init.pose6d[:5], atol=1e-5, rtol=0)
    torch.testing.assert_close(res.transl[:5], init.transl[:5])
    torch.testing.assert_close(res.betas[:5], init.betas[:5])
    for t in (res.pose6d, res.transl, res.betas, res.reprojection_px):
        assert torch.isfinite(t).all()
    with pytest.raises(ValueError, match="obs"):
        Smplify(body, prior, FAST).fit(init, dataclasses.replace(obs, uv=obs.uv[:, :16]))
    with pytest.raises(ValueError, match="optimizer"):
        SmplifyConfig(optimizer="sgd")


def test_window_mode_is_smoother_than_per_frame(body, prior):
    """A person holding still, seen with jittery keypoints: the temporal term reduces jitter."""
    T = 8
    g = torch.Generator().manual_seed(4)
    go = torch.tensor([[np.pi, 0.1, 0.0]]).repeat(T, 1)
    bp = (0.2 * torch.randn(1, 69, generator=g)).repeat(T, 1)
    betas = torch.zeros(T, 10)
    transl = torch.tensor([[0.0, 0.0, 4.0]]).repeat(T, 1)
    kp = body.keypoints(betas, axis_angle_to_matrix(go), axis_angle_to_matrix(bp.reshape(T, 23, 3)), transl)
    uv = project_with_K(kp, K0.expand(T, 3, 3)) + 3.0 * torch.randn(T, 17, 2, generator=g)
    conf = torch.ones(T, 17)
    conf[5, :] = 0.0  # a lost frame inside the window
    obs = KeypointObservation(uv=uv, conf=conf, K=K0.expand(T, 3, 3).clone(),
                              image_size=torch.tensor([[640.0, 480.0]]).repeat(T, 1))
    init = _output(go, bp + 0.1 * torch.randn(T, 69, generator=g), betas, transl + 0.05 * torch.randn(T, 3, generator=g))
    fitter = Smplify(body, prior, FAST)
    per_frame = fitter.fit(init, obs)
    window = fitter.fit_window(init, obs)
    assert window.fitted.tolist() == [True] * 5 + [False] + [True] * 2
    torch.testing.assert_close(window.pose6d[5], init.pose6d[5], atol=1e-5, rtol=0)

    def accel(res):
        j = body.joints(res.betas, res.global_orient, res.body_pose, res.transl)
        keep = [0, 1, 2, 3, 4]
        return float(second_difference_energy(j[keep]))

    assert accel(window) < 0.5 * accel(per_frame)
    # one shape for the whole window
    torch.testing.assert_close(window.betas[0].expand(5, 10), window.betas[[0, 1, 2, 3, 4]])
    with pytest.raises(ValueError, match="empty"):
        fitter.fit_window(RegressorOutput(torch.zeros(0, 144), torch.zeros(0, 10), torch.zeros(0, 3),
                                          torch.zeros(0, 4)), obs)


def test_angle_prior_penalises_the_anatomically_wrong_bend_on_the_shipped_body():
    """On the shipped body (T-pose, facing +z) the bends the angle prior allows move the forearms
    forward (+z) and the shins backward (-z); the opposite bends are the penalised ones."""
    body = load_body_model()  # the shipped body (committed; must load)
    rest = body.joints(torch.zeros(1, 10), torch.zeros(1, 3), torch.zeros(1, 69))[0]
    # (body_pose index of the bend component, end joint): left elbow y, right elbow y, knees x
    cases = [(52, 20, 2, +1.0), (55, 21, 2, +1.0), (9, 7, 2, -1.0), (12, 8, 2, -1.0)]
    for idx, end, axis, natural_dir in cases:
        for theta in (0.8, -0.8):
            bp = torch.zeros(1, 69)
            bp[0, idx] = theta
            moved = body.joints(torch.zeros(1, 10), torch.zeros(1, 3), bp)[0, end, axis] - rest[end, axis]
            penalised = float(angle_prior(bp)) > 4.0 + 1.0  # exp(2 * 0.8) - 1 extra
            assert penalised == (float(moved) * natural_dir < 0), (idx, theta, float(moved))
