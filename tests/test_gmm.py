"""Gaussian mixture pose prior: EM recovers a known mixture; densities match scipy; save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from hmr_node.core.priors.gmm import (
    GaussianMixture,
    GmmPosePrior,
    fit_pose_gmm,
    load_pose_gmm,
    load_pose_prior,
    save_pose_gmm,
)


def _known_mixture(seed=0, D=6, K=3):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(K, D))
    A = rng.normal(size=(K, D, D)) * 0.5
    covs = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(D)
    weights = np.array([0.5, 0.3, 0.2])[:K]
    return weights, means, covs, rng


def _draw(weights, means, covs, rng, n):
    labels = rng.choice(len(weights), size=n, p=weights)
    chol = np.linalg.cholesky(covs)[labels]
    return means[labels] + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, means.shape[1])))


def test_em_recovers_known_mixture():
    w, mu, cov, rng = _known_mixture()
    x = _draw(w, mu, cov, rng, 9000)
    gmm = fit_pose_gmm(x, num_components=3, seed=1, reg=1e-6)
    order = [int(np.argmin(np.linalg.norm(gmm.means - m, axis=1))) for m in mu]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(gmm.weights[order], w, atol=0.02)
    np.testing.assert_allclose(gmm.means[order], mu, atol=0.1)
    # covariance within 10% of its scale (sampling error with ~2-4.5k samples per component)
    for k, j in enumerate(order):
        assert np.abs(gmm.covariances[j] - cov[k]).max() < 0.1 * np.abs(cov[k]).max()
    assert gmm.converged
    # the fit explains the data at least as well as the truth (it maximises the likelihood)
    true_ll = np.log(sum(w[k] * multivariate_normal(mu[k], cov[k]).pdf(x) for k in range(3))).mean()
    assert gmm.log_likelihood >= true_ll - 1e-6


def test_prior_density_matches_scipy_both_modes():
    w, mu, cov, rng = _known_mixture(seed=3)
    gmm = GaussianMixture(weights=w, means=mu, covariances=cov)
    x = _draw(w, mu, cov, rng, 20)
    comp = np.stack([w[k] * multivariate_normal(mu[k], cov[k]).pdf(x) for k in range(3)], axis=1)
    xt = torch.tensor(x, dtype=torch.float32)
    np.testing.assert_allclose(GmmPosePrior(gmm, "sum")(xt).numpy(), -np.log(comp.sum(1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(GmmPosePrior(gmm, "max")(xt).numpy(), -np.log(comp.max(1)), rtol=1e-4, atol=1e-4)


def test_prior_gradient_pulls_toward_mode():
    """Gradient descent on the NLL from an implausible point ends near a component mean."""
    w, mu, cov, _ = _known_mixture(seed=5)
    prior = GmmPosePrior(GaussianMixture(weights=w, means=mu, covariances=cov))
    x = torch.tensor(mu[0] + 6.0, dtype=torch.float32)[None].requires_grad_(True)
    start = float(prior(x.detach()))
    opt = torch.optim.Adam([x], lr=0.1)
    for _ in range(400):
        opt.zero_grad()
        prior(x).sum().backward()
        opt.step()
    assert float(prior(x.detach())) < start - 10
    assert np.linalg.norm(mu - x.detach().numpy(), axis=1).min() < 0.3


def test_save_load_round_trip(tmp_path):
    w, mu, cov, rng = _known_mixture(seed=2)
    gmm = fit_pose_gmm(_draw(w, mu, cov, rng, 600), num_components=2, seed=0)
    path = save_pose_gmm(tmp_path / "gmm.npz", gmm, {"data": "test"})
    back, meta = load_pose_gmm(path)
    assert meta == {"data": "test"}
    np.testing.assert_array_equal(back.covariances, gmm.covariances)
    x = torch.randn(5, mu.shape[1])
    torch.testing.assert_close(load_pose_prior(path)(x), GmmPosePrior(gmm)(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="poses"):
        fit_pose_gmm(np.full((100, 3), np.nan))
    with pytest.raises(ValueError, match="poses"):
        fit_pose_gmm(np.zeros((5, 3)), num_components=8)
    with pytest.raises(ValueError, match="mode"):
        GmmPosePrior(GaussianMixture(np.ones(1), np.zeros((1, 2)), np.eye(2)[None]), mode="mean")
    prior = GmmPosePrior(GaussianMixture(np.ones(1), np.zeros((1, 69)), np.eye(69)[None]))
    with pytest.raises(ValueError, match="body_pose"):
        prior(torch.zeros(2, 68))
    assert prior(torch.zeros(2, 23, 3)).shape == (2,)
    with pytest.raises(FileNotFoundError, match="path"):
        load_pose_gmm("/nonexistent/gmm.npz")
