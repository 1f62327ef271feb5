"""SMPLify-style fitting of the body model to 2D keypoints, initialised from the regressor.

The baseline ScoreHMR is compared against (Bogo et al. 2016, in the two-stage form of SPIN's
re-implementation), with the real intrinsics instead of a fixed 5000 px focal length:

Stage 1 (camera), ``camera_iters`` steps on the SMPL ``transl`` (the camera translation
gamma) and the global orientation only, torso keypoints only::

    E_cam = sum_{k in torso} conf_k rho(s (Pi_K(X_k) - y_k)) + w_depth (t_z - t_z_init)^2

Stage 2 (body), ``num_iters`` steps on global orientation, body pose, betas and transl::

    E = sum_k conf_k rho(s (Pi_K(X_k) - y_k))                          data (GMoF, all COCO-17)
        + w_pose * (-log p_GMM(theta))                                  pose prior
        + w_angle * sum exp(sign * theta_bend)^2                        elbows / knees
        + w_shape * |beta|^2                                           shape prior
        [+ w_temporal * sum_t |J_{t+1} - 2 J_t + J_{t-1}|^2]            window mode only

``X = BodyModel.keypoints(...)`` in the camera optical frame and ``Pi_K`` the pinhole
projection with the real K. Residuals are measured in the pixels of a 224-px square crop
around the person's keypoints (``s = 224 / (1.2 * box side)``), the setting SPIN's weights
and the GMoF scale of 100 px were chosen for, so the balance of the terms does not depend on
image resolution or distance. Everything is batched over people (or frames of a window);
the problems are independent, so the summed energy is minimised jointly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hmr_node.core.body.model import BodyModel
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from hmr_node.core.priors.gmm import GmmPosePrior
from hmr_node.core.regressor.model import valid_intrinsics
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.regressor.synthetic_samples import project_with_K
from hmr_node.core.smplify.losses import angle_prior, reprojection_energy, second_difference_energy, shape_prior

# COCO-17 shoulders and hips
TORSO_KEYPOINTS: tuple[int, ...] = (5, 6, 11, 12)


@dataclass(frozen=True)
class SmplifyConfig:
    """Parameters of :class:`Smplify`.

    Pose and shape weights are SPIN's (4.78^2, 5^2). The angle-prior weight and the iteration
    count were chosen on held-out *train*-split synthetic samples (detector noise as in
    training, initialised from the shipped regressor): SPIN's angle weight 15.2^2 = 231
    over-bends elbows and knees along the viewing ray, and 40 instead of 100 body steps keeps
    the fit from chasing keypoint noise. Check on a fresh set of 256 such people (shipped
    regressor, shipped GMM): PA-MPJPE 55.4 mm (regressor) -> 52.9 mm (these defaults) vs
    59.7 mm with SPIN's angle weight and 100 steps.

    camera_iters: stage-1 steps (transl + global orientation on torso keypoints).
    num_iters: stage-2 steps (all parameters).
    optimizer: 'adam' or 'lbfgs'.
    lr: Adam learning rate (LBFGS uses lr 1 with a strong-Wolfe line search).
    lbfgs_inner: LBFGS inner iterations per step.
    sigma: GMoF scale in crop pixels.
    crop_size: the virtual crop residuals are measured in (pixels).
    w_pose: weight of the GMM pose prior (negative log-density).
    w_angle: weight of the elbow/knee angle prior.
    w_shape: weight of the |betas|^2 shape prior.
    w_depth: stage-1 weight keeping t_z near its initial value (m^-2).
    w_temporal: window mode: weight of the joints' second differences (m^-2).
    min_keypoints: a person with fewer confident keypoints is not fitted.
    min_conf: keypoints below this confidence are ignored.
    """

    camera_iters: int = 30
    num_iters: int = 40
    optimizer: str = "adam"
    lr: float = 0.02
    lbfgs_inner: int = 10
    sigma: float = 100.0
    crop_size: float = 224.0
    w_pose: float = 4.78 ** 2
    w_angle: float = 2.31
    w_shape: float = 5.0 ** 2
    w_depth: float = 100.0
    w_temporal: float = 1e5
    min_keypoints: int = 4
    min_conf: float = 0.1

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"SmplifyConfig.optimizer: expected 'adam' or 'lbfgs', got {self.optimizer!r}")
        for name in ("camera_iters", "num_iters", "lbfgs_inner", "min_keypoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"SmplifyConfig.{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("lr", "sigma", "crop_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SmplifyConfig.{name}: expected > 0, got {getattr(self, name)}")


@dataclass
class SmplifyResult:
    """Fitted (or returned-unchanged) parameters of B people / frames.

    global_orient: (B, 3, 3) in the camera optical frame
    body_pose: (B, 23, 3, 3)
    betas: (B, 10)
    transl: (B, 3) SMPL transl in the optical frame, metres
    fitted: (B,) bool, False = the initial estimate returned unchanged
    reason: per sample, why it was not fitted ('' when fitted)
    reprojection_px: (B,) confidence-weighted mean keypoint error in pixels, before and after
    energy: (B,) final stage-2 energy (NaN where not fitted)
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    fitted: torch.Tensor
    reason: list[str]
    reprojection_px_init: torch.Tensor
    reprojection_px: torch.Tensor
    energy: torch.Tensor

    @property
    def pose6d(self) -> torch.Tensor:
        """(B, 144) 6D of the 24 rotations (RegressorOutput layout)."""
        R = torch.cat((self.global_orient[:, None], self.body_pose), dim=1)
        return matrix_to_rot6d(R).flatten(1)

    def to_output(self, features: torch.Tensor) -> RegressorOutput:
        """As a :class:`RegressorOutput` (features passed through, e.g. the regressor's)."""
        return RegressorOutput(pose6d=self.pose6d, betas=self.betas, transl=self.transl, features=features)


def _observation_checks(obs: KeypointObservation, init: RegressorOutput, min_conf: float, min_keypoints: int
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Clean confidences and decide who can be fitted -> (uv, conf, K_safe, reasons)."""
    uv, conf, K = obs.uv, obs.conf, obs.K
    B = uv.shape[0]
    if uv.shape != (B, 17, 2) or conf.shape != (B, 17) or K.shape != (B, 3, 3):
        raise ValueError(f"obs: expected uv (B, 17, 2), conf (B, 17), K (B, 3, 3); got {tuple(uv.shape)}, "
                         f"{tuple(conf.shape)}, {tuple(K.shape)}")
    if init.pose6d.shape != (B, 144) or init.transl.shape != (B, 3) or init.betas.shape[0] != B:
        raise ValueError(f"init: expected pose6d (B={B}, 144), transl (B, 3), betas (B, S); got "
                         f"{tuple(init.pose6d.shape)}, {tuple(init.transl.shape)}, {tuple(init.betas.shape)}")
    reasons = [""] * B
    finite = torch.isfinite(uv).all(-1) & torch.isfinite(conf)
    conf = torch.where(finite, conf.nan_to_num(0.0).clamp(0, 1), torch.zeros_like(conf))
    uv = torch.where(finite[..., None], uv, torch.zeros_like(uv))
    size = obs.image_size.to(uv.dtype) if obs.image_size is not None else None
    if size is not None and size.shape == (B, 2):
        inside = ((uv[..., 0] >= 0) & (uv[..., 0] <= size[:, None, 0]) & (uv[..., 1] >= 0)
                  & (uv[..., 1] <= size[:, None, 1]))
        conf = torch.where(inside, conf, torch.zeros_like(conf))
    conf = torch.where(conf >= min_conf, conf, torch.zeros_like(conf))
    k_ok = valid_intrinsics(K)
    init_ok = (torch.isfinite(init.pose6d).all(1) & torch.isfinite(init.transl).all(1)
               & torch.isfinite(init.betas).all(1) & (init.transl[:, 2] > 0))
    n_kp = (conf > 0).sum(1)
    for b in range(B):
        if not bool(k_ok[b]):
            reasons[b] = "invalid intrinsics K (non-finite, singular or not upper-triangular)"
        elif not bool(init_ok[b]):
            reasons[b] = "initial estimate is not finite or behind the camera"
        elif int(n_kp[b]) < min_keypoints:
            reasons[b] = (f"only {int(n_kp[b])} usable keypoints (need {min_keypoints}; NaN, zero-confidence or "
                          "outside the image)")
    nominal = torch.eye(3, dtype=K.dtype, device=K.device)
    K = torch.where(k_ok[:, None, None], K.nan_to_num(0.0), nominal)
    return uv, conf, K, reasons


class Smplify:
    """SMPLify-style optimiser (see the module docstring).

    body_model: SMPL-format body (its keypoints are fitted)
    prior: GMM pose prior
    config: weights and iterations
    """

    def __init__(self, body_model: BodyModel, prior: GmmPosePrior, config: SmplifyConfig = SmplifyConfig()):
        if not isinstance(config, SmplifyConfig):
            raise TypeError(f"config: expected SmplifyConfig, got {type(config).__name__}")
        if not isinstance(prior, GmmPosePrior):
            raise TypeError(f"prior: expected GmmPosePrior, got {type(prior).__name__}")
        self.body, self.prior, self.config = body_model, prior, config
        for p in self.prior.parameters():
            p.requires_grad_(False)

    # ------------------------------------------------------------------ energies
    def _crop_scale(self, uv: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
        """(B,) pixels -> crop pixels factor 224 / (1.2 * side of the confident keypoints' box)."""
        m = conf > 0
        big = 1e9
        lo = torch.where(m[..., None], uv, uv.new_tensor(big)).amin(1)
        hi = torch.where(m[..., None], uv, uv.new_tensor(-big)).amax(1)
        side = (hi - lo).amax(-1).clamp_min(8.0)
        return self.config.crop_size / (1.2 * side)

    def _project(self, go, bp, betas, transl, K):
        kp = self.body.keypoints(betas, axis_angle_to_matrix(go), axis_angle_to_matrix(bp.reshape(-1, 23, 3)), transl)
        return project_with_K(kp, K, min_depth=1e-2), kp

    def _mean_px(self, uv_pred, uv, conf):
        w = (conf > 0).to(uv.dtype)
        return ((uv_pred - uv).norm(dim=-1) * w).sum(1) / w.sum(1).clamp_min(1)

    def _run(self, params, energy_fn, iters):
        cfg = self.config
        if iters == 0:
            return
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr)
            for _ in range(iters):
                opt.zero_grad(set_to_none=True)
                energy_fn().sum().backward()
                opt.step()
        else:
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_inner, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad(set_to_none=True)
                e = energy_fn().sum()
                e.backward()
                return e

            for _ in range(iters):
                opt.step(closure)

    # ------------------------------------------------------------------ fitting
    def _fit(self, init: RegressorOutput, obs: KeypointObservation, window: bool) -> SmplifyResult:
        cfg = self.config
        dtype = self.body.v_template.dtype
        uv, conf, K, reasons = _observation_checks(obs, init, cfg.min_conf, cfg.min_keypoints)
        uv, conf, K = uv.to(dtype), conf.to(dtype), K.to(dtype)
        B = uv.shape[0]
        R0 = rot6d_to_matrix(init.pose6d.detach().to(dtype).nan_to_num(0.0).reshape(B, 24, 6))
        go0 = matrix_to_axis_angle(R0[:, 0])
        bp0 = matrix_to_axis_angle(R0[:, 1:]).reshape(B, 69)
        betas0 = init.betas.detach().to(dtype).nan_to_num(0.0)
        transl0 = init.transl.detach().to(dtype).nan_to_num(0.0)
        ok = torch.tensor([r == "" for r in reasons], dtype=torch.bool)
        with torch.no_grad():
            px0 = self._mean_px(self._project(go0, bp0, betas0, transl0, K)[0], uv, conf)
        go, bp, betas, transl = go0.clone(), bp0.clone(), betas0.clone(), transl0.clone()
        energy = torch.full((B,), float("nan"), dtype=dtype)
        idx = torch.nonzero(ok).flatten()
        if idx.numel() > 0:
            e_idx, fit = self._optimise(go0[idx], bp0[idx], betas0[idx], transl0[idx], uv[idx], conf[idx], K[idx],
                                        frame_index=idx if window else None)
            finite = torch.isfinite(torch.cat([f.flatten(1) for f in fit], dim=1)).all(1) & torch.isfinite(e_idx)
            for j, b in enumerate(idx.tolist()):
                if bool(finite[j]):
                    go[b], bp[b], betas[b], transl[b] = (f[j] for f in fit)
                    energy[b] = e_idx[j]
                else:
                    reasons[b] = "optimisation diverged (non-finite); initial estimate returned"
        fitted = torch.tensor([r == "" for r in reasons], dtype=torch.bool)
        with torch.no_grad():
            px = self._mean_px(self._project(go, bp, betas, transl, K)[0], uv, conf)
        return SmplifyResult(global_orient=axis_angle_to_matrix(go), body_pose=axis_angle_to_matrix(bp.reshape(B, 23, 3)),
                             betas=betas, transl=transl, fitted=fitted, reason=reasons, reprojection_px_init=px0,
                             reprojection_px=px, energy=energy)

    def _optimise(self, go0, bp0, betas0, transl0, uv, conf, K, frame_index: torch.Tensor | None):
        cfg = self.config
        window = frame_index is not None
        scale = self._crop_scale(uv, conf)
        go = go0.clone().requires_grad_(True)
        transl = transl0.clone().requires_grad_(True)
        bp = bp0.clone()
        if window:  # one person: a single shape for the window
            betas = betas0.mean(0, keepdim=True).clone()
        else:
            betas = betas0.clone()

        def full_betas(b):
            return b.expand(go.shape[0], -1) if window else b

        torso = torch.zeros_like(conf)
        torso[:, list(TORSO_KEYPOINTS)] = conf[:, list(TORSO_KEYPOINTS)]
        use_torso = (torso > 0).sum(1) >= 2
        cam_conf = torch.where(use_torso[:, None], torso, conf)

        def camera_energy():
            uv_pred, _ = self._project(go, bp, full_betas(betas), transl, K)
            return (reprojection_energy(uv_pred, uv, cam_conf, cfg.sigma, scale)
                    + cfg.w_depth * (transl[:, 2] - transl0[:, 2]) ** 2)

        self._run([go, transl], camera_energy, cfg.camera_iters)
        bp.requires_grad_(True)
        betas.requires_grad_(True)

        def body_energy():
            b = full_betas(betas)
            uv_pred, _ = self._project(go, bp, b, transl, K)
            e = (reprojection_energy(uv_pred, uv, conf, cfg.sigma, scale) + cfg.w_pose * self.prior(bp)
                 + cfg.w_angle * angle_prior(bp) + cfg.w_shape * shape_prior(b))
            if window and cfg.w_temporal > 0:
                joints = self.body.joints(b, axis_angle_to_matrix(go), axis_angle_to_matrix(bp.reshape(-1, 23, 3)),
                                          transl)
                e = e + cfg.w_temporal * second_difference_energy(joints, frame_index) / e.shape[0]
            return e

        self._run([go, bp, betas, transl], body_energy, cfg.num_iters)
        with torch.no_grad():
            e = body_energy()
        return e, (go.detach(), bp.detach(), full_betas(betas).detach(), transl.detach())

    def fit(self, init: RegressorOutput, obs: KeypointObservation) -> SmplifyResult:
        """Fit B independent people (single-frame mode).

        init: regressor estimate (pose6d with global orientation in the optical frame, betas,
            transl in the optical frame)
        obs: their keypoints, intrinsics and image size
        returns: :class:`SmplifyResult`; people with bad input come back unchanged with
            ``fitted=False`` and a reason
        """
        return self._fit(init, obs, window=False)

    def fit_window(self, init: RegressorOutput, obs: KeypointObservation) -> SmplifyResult:
        """Fit T consecutive frames of one person (video mode): shared betas and a temporal
        smoothness term on the 24 joints (second differences between frames whose
        keypoints are usable). Frames with bad input are returned unchanged, unfitted.

        init: (T, ...) regressor estimates in frame order
        obs: (T, ...) observations in the same order
        """
        if init.pose6d.shape[0] == 0:
            raise ValueError("init: empty window (0 frames)")
        return self._fit(init, obs, window=True)


__all__ = ["SmplifyConfig", "Smplify", "SmplifyResult", "TORSO_KEYPOINTS"]
