"""Gaussian mixture pose prior over SMPL's 69-D body pose (axis-angle), as SMPLify's (Bogo et al.
2016, fitted on CMU mocap).

Fitting: our own expectation-maximisation with full covariances in float64 (k-means++ seeds,
a few Lloyd iterations, then EM; a small diagonal regulariser ``reg * I`` is added to every
covariance in each M-step so no component collapses; an emptied component is re-seeded).

Density: ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)``. :class:`GmmPosePrior` returns the negative
log-density per sample (natural log, *including* the Gaussian normalisers, so values can be
negative in 69-D) in one of two forms:

* ``'max'`` (SMPLify's approximation): ``-max_k [log w_k + log N(x; mu_k, Sigma_k)]`` — the
  best component only, which gives a sharper gradient toward one mode;
* ``'sum'``: the exact mixture, ``-logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)]``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SHIPPED_POSE_GMM = str(Path(__file__).resolve().parents[2] / "models" / "priors" / "pose_gmm.npz")


@dataclass(frozen=True)
class GaussianMixture:
    """A fitted mixture.

    weights: (K,) mixing weights, sum 1
    means: (K, D)
    covariances: (K, D, D) full, symmetric positive definite
    log_likelihood: mean log-likelihood per sample of the fitting data at the end
    iterations: EM iterations run
    converged: whether the relative change of the log-likelihood fell below tol
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: float = float("nan")
    iterations: int = 0
    converged: bool = False

    @property
    def num_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])


def _component_log_prob(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    """x: (N, D); means: (K, D); covs: (K, D, D) -> (N, K) log N(x_n; mu_k, Sigma_k)."""
    L = torch.linalg.cholesky(covs)                                     # (K, D, D)
    diff = (x[None] - means[:, None]).transpose(1, 2)                   # (K, D, N)
    sol = torch.linalg.solve_triangular(L, diff, upper=False)           # L^-1 (x - mu)
    maha = (sol ** 2).sum(dim=1)                                        # (K, N)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    D = x.shape[1]
    return (-0.5 * (maha + logdet[:, None] + D * math.log(2 * math.pi))).T


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator, lloyd_iters: int = 10) -> torch.Tensor:
    """k-means++ seeding followed by a few Lloyd iterations: (k, D) centres."""
    N = x.shape[0]
    centres = [x[torch.randint(N, (1,), generator=gen)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / N)
        idx = torch.multinomial(probs, 1, generator=gen)
        centres.append(x[idx].squeeze(0))
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = torch.stack(centres)
    for _ in range(lloyd_iters):
        assign = torch.cdist(x, c).argmin(1)
        for j in range(k):
            members = x[assign == j]
            if members.shape[0] > 0:
                c[j] = members.mean(0)
    return c


def fit_pose_gmm(poses, num_components: int = 8, seed: int = 0, max_iter: int = 300, tol: float = 1e-7,
                 reg: float = 1e-4, progress: bool = False) -> GaussianMixture:
    """Fit a full-covariance Gaussian mixture by EM.

    poses: (N, D) samples, e.g. (N, 69) SMPL body poses (axis-angle); numpy or torch
    num_components: K
    seed: seeds the k-means++ initialisation
    max_iter: EM iterations at most
    tol: stop when the relative change of the mean log-likelihood is below this
    reg: added to the covariance diagonals (units of the data squared)
    progress: show a tqdm bar
    returns: the :class:`GaussianMixture`
    """
    x = torch.as_tensor(np.asarray(poses, dtype=np.float64))
    if x.dim() != 2:
        raise ValueError(f"poses: expected (N, D), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("poses: contains NaN or inf")
    if not isinstance(num_components, int) or num_components < 1:
        raise ValueError(f"num_components: expected a positive int, got {num_components!r}")
    N, D = x.shape
    if N < num_components * 2:
        raise ValueError(f"poses: need at least {2 * num_components} samples for {num_components} components, got {N}")
    if not reg > 0:
        raise ValueError(f"reg: expected > 0, got {reg}")
    gen = torch.Generator().manual_seed(int(seed))
    eye = torch.eye(D, dtype=x.dtype)
    means = _kmeans_pp(x, num_components, gen)
    cov0 = torch.cov(x.T).reshape(D, D) + reg * eye
    covs = cov0.repeat(num_components, 1, 1)
    log_w = torch.full((num_components,), -math.log(num_components), dtype=x.dtype)
    prev, ll, converged, it = -math.inf, -math.inf, False, 0
    from tqdm import tqdm

    for it in tqdm(range(1, max_iter + 1), desc="fit GMM", disable=not progress, mininterval=1.0):
        # E-step: responsibilities r_nk proportional to w_k N(x_n; mu_k, Sigma_k)
        joint = _component_log_prob(x, means, covs) + log_w
        norm = torch.logsumexp(joint, dim=1, keepdim=True)
        resp = torch.exp(joint - norm)
        ll = float(norm.mean())
        # M-step
        Nk = resp.sum(0)
        for j in torch.nonzero(Nk < 1e-6 * N).flatten().tolist():  # re-seed an emptied component
            means[j] = x[torch.randint(N, (1,), generator=gen)].squeeze(0)
            covs[j] = cov0
            resp[:, j] = 0.0
        Nk = resp.sum(0).clamp_min(1e-12)
        means = (resp.T @ x) / Nk[:, None]
        diff = x[None] - means[:, None]                                # (K, N, D)
        covs = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / Nk[:, None, None] + reg * eye
        covs = 0.5 * (covs + covs.transpose(1, 2))
        log_w = torch.log(Nk / Nk.sum())
        if abs(ll - prev) <= tol * max(1.0, abs(ll)):
            converged = True
            break
        prev = ll
    return GaussianMixture(weights=torch.exp(log_w).numpy(), means=means.numpy(), covariances=covs.numpy(),
                           log_likelihood=ll, iterations=it, converged=converged)


class GmmPosePrior(nn.Module):
    """Negative log-density of body poses under a Gaussian mixture (see module docstring).

    mixture: the fitted :class:`GaussianMixture` (D = 69 for SMPL body poses)
    mode: 'max' (SMPLify's best-component approximation) or 'sum' (exact mixture)
    """

    def __init__(self, mixture: GaussianMixture, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "sum"):
            raise ValueError(f"mode: expected 'max' or 'sum', got {mode!r}")
        self.mode = mode
        covs = torch.as_tensor(mixture.covariances, dtype=torch.float64)
        # precision Cholesky factor: Sigma^-1 = P P^T with P = L^-T (L = chol(Sigma))
        L = torch.linalg.cholesky(covs)
        eye = torch.eye(covs.shape[-1], dtype=torch.float64).expand_as(covs)
        P = torch.linalg.solve_triangular(L, eye, upper=False).transpose(-1, -2)
        D = covs.shape[-1]
        log_norm = (torch.log(torch.as_tensor(mixture.weights, dtype=torch.float64))
                    - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) - 0.5 * D * math.log(2 * math.pi))
        self.register_buffer("means", torch.as_tensor(mixture.means, dtype=torch.float32))
        self.register_buffer("precision_chol", P.float())
        self.register_buffer("log_norm", log_norm.float())
        self.mixture = mixture

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def component_log_prob(self, body_pose: torch.Tensor) -> torch.Tensor:
        """body_pose: (B, 69) or (B, 23, 3) axis-angle -> (B, K) log(w_k N(x; mu_k, Sigma_k))."""
        x = body_pose.reshape(body_pose.shape[0], -1)
        if x.shape[1] != self.dim:
            raise ValueError(f"body_pose: expected (B, {self.dim}) or (B, {self.dim // 3}, 3), got {tuple(body_pose.shape)}")
        diff = x[:, None, :].to(self.means.dtype) - self.means[None]            # (B, K, D)
        y = torch.einsum("bkd,kde->bke", diff, self.precision_chol)             # P^T (x - mu)
        return self.log_norm[None] - 0.5 * (y ** 2).sum(-1)

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        """body_pose: (B, 69) or (B, 23, 3) axis-angle -> (B,) negative log-density."""
        lp = self.component_log_prob(body_pose)
        if self.mode == "max":
            return -lp.max(dim=1).values
        return -torch.logsumexp(lp, dim=1)


def save_pose_gmm(path: str | os.PathLike, mixture: GaussianMixture, metadata: dict | None = None) -> Path:
    """Write a mixture as .npz (weights, means, covariances, fit stats, metadata as JSON text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, weights=mixture.weights.astype(np.float64), means=mixture.means.astype(np.float64),
                 covariances=mixture.covariances.astype(np.float64),
                 log_likelihood=np.float64(mixture.log_likelihood), iterations=np.int64(mixture.iterations),
                 converged=np.bool_(mixture.converged), metadata=np.array(json.dumps(metadata or {})))
    return path


def load_pose_gmm(path: str | os.PathLike | None = None) -> tuple[GaussianMixture, dict]:
    """Read a mixture written by :func:`save_pose_gmm` (None = the shipped CMU prior) -> (mixture, metadata)."""
    path = Path(SHIPPED_POSE_GMM if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no pose GMM at {path}"
                                + (" (fit one with `hmr train gmm`)" if str(path) == SHIPPED_POSE_GMM else ""))
    with np.load(path, allow_pickle=False) as z:
        for key in ("weights", "means", "covariances"):
            if key not in z:
                raise ValueError(f"path: {path} has no '{key}' array; not a pose GMM file")
        mixture = GaussianMixture(weights=z["weights"], means=z["means"], covariances=z["covariances"],
                                  log_likelihood=float(z["log_likelihood"]) if "log_likelihood" in z else float("nan"),
                                  iterations=int(z["iterations"]) if "iterations" in z else 0,
                                  converged=bool(z["converged"]) if "converged" in z else False)
        metadata = json.loads(str(z["metadata"])) if "metadata" in z else {}
    return mixture, metadata


def load_pose_prior(path: str | os.PathLike | None = None, mode: str = "max") -> GmmPosePrior:
    """:class:`GmmPosePrior` from a saved mixture (None = the shipped CMU prior)."""
    mixture, metadata = load_pose_gmm(path)
    prior = GmmPosePrior(mixture, mode=mode)
    prior.metadata = metadata
    return prior


__all__ = ["GaussianMixture", "fit_pose_gmm", "GmmPosePrior", "save_pose_gmm", "load_pose_gmm", "load_pose_prior",
           "SHIPPED_POSE_GMM"]
