"""Guidance losses of ScoreHMR (paper Sec. 4.3), evaluated on the predicted clean pose x0_hat.

Every loss returns one value per sample, (B,), so the refiner can apply the paper's per-sample
stopping rule and drop converged samples. Poses are 144-D 6D vectors (24 joints x the first
two columns of R, :mod:`hmr_node.core.geometry.rotations`); joint 0 is the global orientation
in the camera optical frame.

* Eq. 12 :func:`reprojection_loss` - ``sum_k conf_k GMoF(|Pi_K(J_k(x0, beta) + gamma) - y_k|)``
  with the real intrinsics K and the Geman-McClure penalty
  ``GMoF(r) = sigma^2 r^2 / (sigma^2 + r^2)`` (SMPLify's robust function), pixels^2;
* Eq. 13 :func:`multiview_loss` - ``sum_n |x0_b^(n) - mean_n x0_b^(n)|^2`` on the body pose
  only (joints 1..23, global orientation excluded);
* Eq. 14 :func:`temporal_loss` - ``sum_n |x0^(n) - x0^(n-1)|^2`` over a window (optionally the
  second difference).

The camera translation gamma of Eq. 12 is optimised alongside the pose by
:func:`gauss_newton_translation`: Gauss-Newton on the same robust loss (iteratively
reweighted least squares with the GMoF weights), 3 unknowns per sample, solved in closed form.
"""
from __future__ import annotations

import weakref

import torch

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model import BodyModel
from hmr_node.core.geometry.camera import project_points
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, rot6d_to_matrix

__all__ = ["gmof", "ShapedKeypoints", "keypoint_loss", "reprojection_loss", "multiview_loss",
           "temporal_loss", "gauss_newton_translation", "keypoint_gauss_newton_step", "keypoint_gauss_newton_system",
           "shared_body_gauss_newton_step", "rotation_update_6d", "temporal_prox",
           "multiview_prox", "BODY_POSE_SLICE"]

# 6D entries of joints 1..23 (the body pose, without global orientation) inside the 144-D pose
BODY_POSE_SLICE = slice(6, 144)
# points closer to the camera than this are clamped when projecting (metres)
MIN_DEPTH = 0.05


def gmof(sq_residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure penalty of a squared residual: sigma^2 r^2 / (sigma^2 + r^2).

    sq_residual: (...) squared residual norms r^2 (pixels^2)
    sigma: scale (pixels); quadratic below sigma, saturating at sigma^2 above
    returns: (...) same shape
    """
    s2 = sigma * sigma
    return s2 * sq_residual / (s2 + sq_residual)


class _BodyPlan:
    """Pose- and betas-independent tensors of a body for :class:`ShapedKeypoints`.

    M[k, j, n] = kw_kn w_nj is keypoint k's weight on support vertex n through joint j; only
    the P (keypoint, joint) pairs with a non-zero total weight are kept (49 of 17 x 24 for the
    shipped body), so ``kp_k = sum_{pairs (k, j)} A_j q~_kj`` is exact.
    Mp: (P, S) the kept rows of M; pair_joint: (P,) j of each pair; pair_to_kp: (17, P) 0/1
    Q: (207, P * 4) pose feature -> change of the homogeneous pair points q~ (4th entry 0)
    levels / parent index tensors for level-by-level forward kinematics
    """

    def __init__(self, body: BodyModel):
        dt = body.J_template.dtype
        M = torch.einsum("kn,nj->kjn", body.kp_weights, body.kp_skin_weights)  # (17, 24, S)
        S = M.shape[-1]
        k_idx, j_idx = torch.nonzero(M.abs().sum(-1) > 0, as_tuple=True)
        self.Mp = M[k_idx, j_idx]  # (P, S)
        self.pair_joint = j_idx
        P = j_idx.numel()
        self.pair_to_kp = torch.zeros(17, P, dtype=dt)
        self.pair_to_kp[k_idx, torch.arange(P)] = 1.0
        posedirs = body.kp_posedirs.reshape(207, S, 3)
        # f: pose feature, p: pair, n: support vertex, c: xyz
        Q = torch.einsum("pn,fnc->fpc", self.Mp, posedirs)
        self.Q = torch.cat((Q, Q.new_zeros(207, P, 1)), dim=-1).reshape(207, P * 4).contiguous()
        self.QT = self.Q.T.contiguous()
        levels = kin.kinematic_levels(body.parents)
        pos = {j: i for lvl in levels for i, j in enumerate(lvl)}
        self.levels = [torch.tensor(lvl) for lvl in levels]
        self.parent_pos = [torch.tensor([pos[body.parents[j]] for j in lvl]) for lvl in levels[1:]]
        self.parent_joint = [torch.tensor([body.parents[j] for j in lvl]) for lvl in levels[1:]]
        self.inverse = torch.argsort(torch.tensor([j for lvl in levels for j in lvl]))
        # downstream[j, k] = 1 when keypoint k moves with the rotation of joint j
        anc = torch.eye(24, dtype=torch.bool)
        for j in range(1, 24):  # parents precede children
            anc[j] |= anc[body.parents[j]]  # anc[j, a]: a is j or an ancestor of j
        touches = torch.zeros(24, 17, dtype=torch.bool)
        touches[self.pair_joint, k_idx] = True  # joint j skins part of keypoint k
        self.downstream = (anc.T.to(dt) @ touches.to(dt) > 0).to(dt)  # (24, 17)
        # subtree[k, j, p] = 1 when pair p belongs to keypoint k and its joint is j or below j
        self.subtree = (self.pair_to_kp[:, None, :] * anc[j_idx].T.to(dt)[None]).contiguous()  # (17, 24, P)
        self.parent_of = torch.tensor([max(p, 0) for p in body.parents])
        self.bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=dt)
        self.eye = torch.eye(3, dtype=dt)


_PLANS: "weakref.WeakKeyDictionary[BodyModel, _BodyPlan]" = weakref.WeakKeyDictionary()


def _plan(body: BodyModel) -> _BodyPlan:
    plan = _PLANS.get(body)
    if plan is None or plan.Q.dtype != body.J_template.dtype:
        plan = _PLANS[body] = _BodyPlan(body)
    return plan


class ShapedKeypoints:
    """COCO-17 keypoints of B fixed bodies as a function of pose only (the fast guidance path).

    Equal to ``body_model.keypoints(betas, R[:, 0], R[:, 1:], transl)`` but organised for a
    cheap forward + backward pass (the guidance gradient is taken through it at every step):

    * linear blend skinning followed by the keypoint regressor is linear in the joints' affine
      transforms ``A_j``: ``kp_k = sum_j A_j q~_kj`` with homogeneous points
      ``q~_kj = sum_n kw_kn w_nj [v_n; 1]`` (kw: keypoint regressor, w: skinning weights, v_n the
      shaped and pose-corrected support vertex); ``q~`` = its betas part (computed once here)
      + a matrix times the pose-corrective feature;
    * forward kinematics runs as one 4x4 matmul per tree level on homogeneous transforms;
    * the backward pass is written by hand (:class:`_KeypointsFromRotations`).

    body_model: the BodyModel
    betas: (B, S) shape coefficients, held fixed
    """

    def __init__(self, body_model: BodyModel, betas: torch.Tensor):
        if not isinstance(body_model, BodyModel):
            raise TypeError(f"body_model: expected BodyModel, got {type(body_model).__name__}")
        if betas.dim() != 2 or betas.shape[1] > body_model.num_betas:
            raise ValueError(f"betas: expected (B, <= {body_model.num_betas}), got {tuple(betas.shape)}")
        self.body = body_model
        self.plan = plan = _plan(body_model)
        self.precondition: torch.Tensor | None = None
        self.precondition_damping = 1e-2
        dt = body_model.J_template.dtype
        b = betas.to(dt)
        b = torch.cat((b, b.new_zeros(b.shape[0], body_model.num_betas - b.shape[1])), dim=1)
        B = b.shape[0]
        J = kin.blend_shapes(b, body_model.J_template, body_model.J_shapedirs)  # (B, 24, 3) rest joints
        par = torch.tensor([max(p, 0) for p in body_model.parents])
        rel = J - J[:, par]
        rel[:, 0] = J[:, 0]  # the root rotates about its rest position, which stays in place
        self.rel = rel  # (B, 24, 3) bone offsets (root: its position)
        rest_pts = kin.blend_shapes(b, body_model.kp_template, body_model.kp_shapedirs)  # (B, S, 3)
        rest_h = torch.cat((rest_pts, rest_pts.new_ones(B, rest_pts.shape[1], 1)), dim=-1)
        # p: (keypoint, joint) pair, n: support vertex, c: homogeneous xyz1
        self.q_rest = torch.einsum("pn,bnc->bpc", plan.Mp, rest_h).reshape(B, -1)  # (B, P * 4)
        # A_j = G_j [[I, -J_j], [0, 1]]: skinning transforms from the global ones
        unshift = torch.eye(4, dtype=dt).repeat(B, 24, 1, 1)
        unshift[..., :3, 3] = -J
        self.unshift = unshift  # (B, 24, 4, 4)

    def __len__(self) -> int:
        return self.rel.shape[0]

    def index(self, idx: torch.Tensor) -> "ShapedKeypoints":
        """A view on the samples ``idx`` (LongTensor) - used when converged samples drop out."""
        out = object.__new__(ShapedKeypoints)
        out.body, out.plan, out.precondition_damping = self.body, self.plan, self.precondition_damping
        out.rel, out.q_rest, out.unshift = self.rel[idx], self.q_rest[idx], self.unshift[idx]
        out.precondition = None if self.precondition is None else self.precondition[idx]
        return out

    def __call__(self, rotmats: torch.Tensor, transl: torch.Tensor | None = None) -> torch.Tensor:
        """rotmats: (B, 24, 3, 3) parent-relative rotations (joint 0 global)
        transl: (B, 3) metres or None
        returns: (B, 17, 3) COCO-17 keypoints; differentiable in rotmats and transl
        """
        kp = _KeypointsFromRotations.apply(rotmats.to(self.rel.dtype), self)
        return kp if transl is None else kp + transl[:, None]

    def _forward(self, rotmats: torch.Tensor):
        """The map itself; returns keypoints and what the backward pass needs."""
        plan, B = self.plan, rotmats.shape[0]
        # q~ = betas part + Q . pose feature (SMPL's (R_j - I) of joints 1..23): (B, P, 4, 1)
        q = torch.addmm(self.q_rest, (rotmats[:, 1:] - plan.eye).reshape(B, 207), plan.Q).reshape(B, -1, 4, 1)
        # local homogeneous transforms [R_j | rel_j; 0 0 0 1]
        local = torch.cat((torch.cat((rotmats, self.rel[..., None]), dim=-1), plan.bottom.expand(B, 24, 1, 4)), dim=-2)
        # forward kinematics, one tree level at a time (parents are all on the previous level)
        G = [local[:, plan.levels[0]]]
        for idx, ppos in zip(plan.levels[1:], plan.parent_pos):
            G.append(G[-1][:, ppos] @ local[:, idx])
        G = torch.cat(G, dim=1)[:, plan.inverse]  # (B, 24, 4, 4) global transforms, joint order
        Ap = (G @ self.unshift)[:, plan.pair_joint, :3]  # (B, P, 3, 4) skinning transform of each pair
        contrib = (Ap @ q)[..., 0]  # (B, P, 3) = A_j q~_kj
        kp = plan.pair_to_kp @ contrib  # kp_k = sum over k's pairs
        return kp, (q, local, G, Ap, kp, contrib)

    def _backward(self, grad_kp: torch.Tensor, saved) -> torch.Tensor:
        """Reverse pass of :meth:`_forward`: (B, 17, 3) dL/dkp -> (B, 24, 3, 3) dL/dR."""
        q, local, G, Ap, kp, _ = saved
        plan, B = self.plan, grad_kp.shape[0]
        d_contrib = (plan.pair_to_kp.T @ grad_kp)[..., None]  # (B, P, 3, 1)
        dA = torch.zeros(B, 24, 4, 4, dtype=grad_kp.dtype)
        dA[:, :, :3].index_add_(1, plan.pair_joint, d_contrib @ q.transpose(-1, -2))
        dq = (Ap.transpose(-1, -2) @ d_contrib).reshape(B, -1)  # (B, P * 4)
        # through A = (G U)[:3]: dG = [dA; 0] U^T
        dG = dA @ self.unshift.transpose(-1, -2)
        # through G_c = G_p L_c, deepest level first: dL_c = G_p^T dG_c, dG_p += dG_c L_c^T
        dL = torch.empty_like(local)
        levels = plan.levels
        for lvl in range(len(levels) - 1, 0, -1):
            idx, par = levels[lvl], plan.parent_joint[lvl - 1]
            dG_c = dG[:, idx]
            dL[:, idx] = G[:, par].transpose(-1, -2) @ dG_c
            dG.index_add_(1, par, dG_c @ local[:, idx].transpose(-1, -2))
        dL[:, levels[0]] = dG[:, levels[0]]
        dR = dL[..., :3, :3].clone()
        # through the pose correctives
        dR[:, 1:] += (dq @ plan.QT).reshape(B, 23, 3, 3)
        if self.precondition is not None:  # Gauss-Newton diagonal per joint, see set_preconditioner
            d2 = ((kp[:, None] - G[:, :, None, :3, 3]) ** 2).sum(-1)  # (B, 24, 17) |kp_k - p_j|^2
            H = 2.0 * (plan.downstream * d2 * self.precondition[:, None]).sum(-1)  # (B, 24)
            dR = dR / (H + self.precondition_damping)[..., None, None]
        return dR

    def set_preconditioner(self, weight: torch.Tensor | None, damping: float = 1e-2) -> None:
        """Scale the gradient reaching each joint's rotation by 1 / (H_j + damping), with
        ``H_j = 2 sum_k weight_k |kp_k - p_j|^2`` over the keypoints downstream of joint j: the
        Gauss-Newton curvature of ``sum_k weight_k |kp_k - y_k|^2`` for a rotation of joint j
        (p_j its position). Turns a gradient step into an approximate per-joint Newton step,
        so joints with short lever arms (wrists, ankles) move as fast as the root.

        weight: (B, 17) per-keypoint weights of the quadratic loss in metres^2, or None = off
        damping: metres^2 added to H_j
        """
        self.precondition = None if weight is None else weight.detach().to(self.rel.dtype)
        self.precondition_damping = float(damping)

    def keypoints_autograd(self, rotmats: torch.Tensor) -> torch.Tensor:
        """The same map differentiated by autograd (a reference for tests)."""
        return self._forward(rotmats.to(self.rel.dtype))[0]

    def from_pose6d(self, pose6d: torch.Tensor, transl: torch.Tensor | None = None) -> torch.Tensor:
        """pose6d: (B, 144) -> (B, 17, 3) keypoints (see :meth:`__call__`)."""
        return self(rot6d_to_matrix(pose6d.reshape(-1, 24, 6)), transl)


class _KeypointsFromRotations(torch.autograd.Function):
    """kp = ShapedKeypoints(R) with a hand-written backward pass: the guidance gradient is
    needed at every sampling step, and autograd's bookkeeping over the many small ops of
    forward kinematics costs more than the arithmetic (checked against autograd in the tests)."""

    @staticmethod
    def forward(ctx, rotmats, shaped):
        kp, saved = shaped._forward(rotmats)
        kp = kp.clone() if shaped.precondition is not None else kp
        ctx.shaped, ctx.saved = shaped, saved
        return kp

    @staticmethod
    def backward(ctx, grad_kp):
        return ctx.shaped._backward(grad_kp.contiguous(), ctx.saved), None


def keypoint_loss(keypoints3d: torch.Tensor, uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor,
                  sigma: float) -> torch.Tensor:
    """The data term of Eq. 12 for given 3D keypoints in the camera frame.

    keypoints3d: (B, 17, 3) camera optical frame, metres (translation gamma already added)
    uv: (B, 17, 2) detected keypoints, undistorted pixels (entries with conf 0 are ignored)
    conf: (B, 17) confidences in [0, 1]
    K: (B, 3, 3) intrinsics
    sigma: GMoF scale, pixels
    returns: (B,) sum_k conf_k GMoF(|Pi_K(X_k) - y_k|^2), pixels^2
    """
    z = keypoints3d[..., 2:].clamp_min(MIN_DEPTH)
    proj = project_points(torch.cat((keypoints3d[..., :2], z), dim=-1), K[:, None])
    r2 = ((proj - uv) ** 2).sum(-1)
    return (conf * gmof(r2, sigma)).sum(-1)


def reprojection_loss(pose6d: torch.Tensor, betas: torch.Tensor, gamma: torch.Tensor, uv: torch.Tensor,
                      conf: torch.Tensor, K: torch.Tensor, body_model: BodyModel, sigma: float = 100.0) -> torch.Tensor:
    """Eq. 12: confidence-weighted robust reprojection error of the body's COCO-17 keypoints.

    pose6d: (B, 144) pose x0_hat, joint 0 = global orientation in the optical frame
    betas: (B, 10) shape
    gamma: (B, 3) camera translation (SMPL ``transl``) in the optical frame, metres
    uv: (B, 17, 2) detected keypoints, undistorted pixels
    conf: (B, 17) confidences in [0, 1]
    K: (B, 3, 3) intrinsics
    body_model: the BodyModel (its ``keypoints`` path is used)
    sigma: GMoF scale, pixels
    returns: (B,) pixels^2
    """
    if pose6d.dim() != 2 or pose6d.shape[1] != 144:
        raise ValueError(f"pose6d: expected (B, 144), got {tuple(pose6d.shape)}")
    R = rot6d_to_matrix(pose6d.reshape(-1, 24, 6))
    kp = body_model.keypoints(betas, R[:, 0], R[:, 1:], gamma)
    return keypoint_loss(kp, uv, conf, K, sigma)


def multiview_loss(pose6d: torch.Tensor, view_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 13: cross-view consistency of the body pose of one person seen in N views.

    pose6d: (B, N, 144) x0_hat of each of N views of B people
    view_weight: (B, N) 1 for views that take part, 0 for those that do not (None = all)
    returns: (B,) sum over views of |x0_b^(n) - mean_b|^2 (mean over taking-part views);
        equivalently (1 / N) sum over all pairs |x0_b^(n) - x0_b^(m)|^2
    """
    if pose6d.dim() != 3 or pose6d.shape[-1] != 144:
        raise ValueError(f"pose6d: expected (B, N, 144), got {tuple(pose6d.shape)}")
    body = pose6d[..., BODY_POSE_SLICE]
    w = torch.ones(pose6d.shape[:2], dtype=pose6d.dtype, device=pose6d.device) if view_weight is None \
        else view_weight.to(pose6d.dtype)
    mean = (w[..., None] * body).sum(1) / w.sum(1).clamp_min(1e-12)[:, None]
    return (w * ((body - mean[:, None]) ** 2).sum(-1)).sum(1)


def temporal_loss(pose6d: torch.Tensor, pair_weight: torch.Tensor | None = None, order: int = 1) -> torch.Tensor:
    """Eq. 14: temporal consistency of a window of W consecutive frames of one person.

    pose6d: (B, W, 144) x0_hat of W consecutive frames (B windows)
    pair_weight: (B, W - order) weight of each difference term (0 removes it, e.g. across a
        missing frame); None = all 1
    order: 1 = first differences |x^(n) - x^(n-1)|^2 (Eq. 14); 2 = second differences
        |x^(n+1) - 2 x^(n) + x^(n-1)|^2 (penalises acceleration, keeps constant velocity)
    returns: (B,) zero for W <= order
    """
    if pose6d.dim() != 3 or pose6d.shape[-1] != 144:
        raise ValueError(f"pose6d: expected (B, W, 144), got {tuple(pose6d.shape)}")
    if order not in (1, 2):
        raise ValueError(f"order: expected 1 or 2, got {order}")
    d = pose6d
    for _ in range(order):
        d = d[:, 1:] - d[:, :-1]
    sq = (d ** 2).sum(-1)  # (B, W - order)
    if pair_weight is not None:
        sq = sq * pair_weight.to(sq.dtype)
    return sq.sum(-1)


def _prox_solve(x0: torch.Tensor, free: torch.Tensor, L: torch.Tensor, kappa: float) -> torch.Tensor:
    """argmin_x 1/2 |x - x0|^2 + kappa/2 x^T L x per group, non-free members held at x0.

    x0: (g, M, D); free: (g, M) bool; L: (g, M, M) symmetric PSD; returns (g, M, D)
    """
    M = x0.shape[1]
    eye = torch.eye(M, dtype=x0.dtype)
    A = eye + kappa * L
    # fixed members: identity rows, so they keep their value and act as boundary conditions
    A = torch.where(free[..., None], A, eye.expand_as(A))
    return torch.linalg.solve(A, x0)


def temporal_prox(pose6d: torch.Tensor, free: torch.Tensor, pair_weight: torch.Tensor, kappa: float,
                  order: int = 1) -> torch.Tensor:
    """Implicit (proximal) step of Eq. 14: argmin_x 1/2 |x - pose6d|^2 + kappa L_temp(x).

    For small kappa it equals the gradient step ``pose6d - kappa grad L_temp``; unlike it, it
    is stable for any kappa (the loss is quadratic, so this is its exact Newton step).

    pose6d: (g, W, 144) x0_hat of W consecutive frames of g windows
    free: (g, W) bool, frames that may move (context frames stay fixed)
    pair_weight: (g, W - order) weights of the difference terms
    kappa: step size (rho_temporal (1 - a_t) / a_t in the refiner)
    order: 1 (Eq. 14) or 2 (second differences)
    returns: (g, W, 144)
    """
    g, W, _ = pose6d.shape
    if W <= order or kappa <= 0:
        return pose6d
    D = torch.eye(W, dtype=pose6d.dtype)
    for _ in range(order):
        D = D[1:] - D[:-1]  # (W - order, W) difference operator
    L = 2.0 * torch.einsum("pi,gp,pj->gij", D, pair_weight.to(pose6d.dtype), D)  # grad of L_temp = L x
    return _prox_solve(pose6d, free, L, kappa)


def multiview_prox(pose6d: torch.Tensor, free: torch.Tensor, view_weight: torch.Tensor, kappa: float) -> torch.Tensor:
    """Implicit (proximal) step of Eq. 13 on the body pose: argmin 1/2 |x - pose6d|^2 + kappa L_MV(x).

    pose6d: (g, N, 144) x0_hat of N views of g people
    free: (g, N) bool, views that may move
    view_weight: (g, N) 1 = the view takes part in the consistency term
    kappa: step size
    returns: (g, N, 144), global orientations unchanged
    """
    if pose6d.shape[1] < 2 or kappa <= 0:
        return pose6d
    w = view_weight.to(pose6d.dtype)
    # sum_n w_n |x_n - mean_w|^2 = x^T (diag(w) - w w^T / sum w) x
    L = 2.0 * (torch.diag_embed(w) - w[:, :, None] * w[:, None, :] / w.sum(1).clamp_min(1e-12)[:, None, None])
    body = _prox_solve(pose6d[..., BODY_POSE_SLICE], free, L, kappa)
    return torch.cat((pose6d[..., :6], body), dim=-1)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """v: (..., 3) -> (..., 3, 3) with skew(v) w = v x w."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), dim=-1).reshape(*v.shape, 3)


def keypoint_gauss_newton_system(shaped: ShapedKeypoints, rotmats: torch.Tensor, gamma: torch.Tensor,
                                 uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor, sigma: float,
                                 weight_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted, linearised Eq. 12 around (rotmats, gamma): ``r(d) ~ r + J d``.

    Unknowns d (75): a small rotation of each of the 24 joints in its *parent's* frame
    (``R_j <- exp(w_j) R_j``; the root's parent frame is the camera frame) and the translation
    gamma. Rotating joint j by ``w`` (camera frame) turns the skinning transforms of j's subtree
    about the joint, which moves keypoint k by ``w x S_kj`` (``S_kj = kp_k - p_j`` for a
    keypoint skinned to the subtree only; blended skinning handled exactly, pose correctives
    neglected), and a parent-frame rotation ``w_j`` is ``G_parent w_j`` in the camera frame,
    so the Jacobian is analytic. Rows are scaled by the square roots of the GMoF IRLS weights
    ``conf_k sigma^4 / (sigma^2 + r_k^2)^2`` times ``weight_scale``.

    shaped: ShapedKeypoints of the B bodies
    rotmats: (B, 24, 3, 3) parent-relative rotations (from x0_hat)
    gamma: (B, 3) translation, metres
    uv: (B, 17, 2) detections, pixels; conf: (B, 17); K: (B, 3, 3)
    sigma: GMoF scale, pixels
    weight_scale: (B,) factor on every residual weight (e.g. (z / f)^2: metres at the person)
    returns: (J (B, 34, 75), r (B, 34)), both weighted
    """
    B = rotmats.shape[0]
    plan = shaped.plan
    with torch.no_grad():
        kp, (q, _, G, _, _, contrib) = shaped._forward(rotmats.to(shaped.rel.dtype))
        X = kp + gamma[:, None]  # (B, 17, 3) camera frame
        iz = 1.0 / X[..., 2].clamp_min(MIN_DEPTH)
        xn, yn = X[..., 0] * iz, X[..., 1] * iz
        fx, fy, s_, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
        r = torch.stack((fx * xn + s_ * yn + cx - uv[..., 0], fy * yn + cy - uv[..., 1]), dim=-1)  # (B, 17, 2)
        s2 = sigma * sigma
        w = conf * s2 * s2 / (s2 + (r ** 2).sum(-1)) ** 2 * weight_scale[:, None]  # (B, 17)
        zero = torch.zeros_like(iz)
        P = torch.stack((fx * iz, s_ * iz, -(fx * xn + s_ * yn) * iz,
                         zero, fy * iz, -fy * yn * iz), dim=-1).reshape(B, 17, 2, 3)  # d pixel / d X
        # turning joint j by w (camera frame) turns the skinning transforms of its subtree about
        # p_j: kp_k moves by w x S_kj, S_kj = sum over k's pairs (k, i), i in subtree(j), of
        # (A_i q~_ki - m_ki p_j) (m_ki: the pair's weight); = kp_k - p_j for a rigidly attached k
        # k: keypoint, j: joint, p: (keypoint, joint) pair, c: xyz
        C = torch.einsum("kjp,bpc->bkjc", plan.subtree, contrib)
        m = torch.einsum("kjp,bp->bkj", plan.subtree, q[:, :, 3, 0])
        S = C - m[..., None] * G[:, None, :, :3, 3]  # (B, 17, 24, 3)
        Gp = torch.cat((torch.eye(3, dtype=G.dtype).expand(B, 1, 3, 3), G[:, plan.parent_of[1:], :3, :3]), dim=1)
        # a parent-frame rotation w_j is G_parent w_j in the camera frame: d X_k / d w_j = -skew(S_kj) G_parent
        Jw = -(P[:, :, None] @ (_skew(S) @ Gp[:, None]))  # (B, 17, 24, 2, 3)
        J = torch.cat((Jw.permute(0, 1, 3, 2, 4).reshape(B, 34, 72), P.reshape(B, 34, 3)), dim=-1)  # (B, 34, 75)
        sw = w.sqrt().repeat_interleave(2, dim=1)[..., None]  # (B, 34, 1)
        return J * sw, (r.reshape(B, 34, 1) * sw)[..., 0]


def rotation_update_6d(rotmats: torch.Tensor, w_local: torch.Tensor) -> torch.Tensor:
    """Change of the 6D pose when each joint turns by ``R_j <- exp(w_j) R_j``.

    rotmats: (B, 24, 3, 3); w_local: (B, 24, 3) parent-frame axis-angle -> (B, 144)
    """
    R_new = axis_angle_to_matrix(w_local) @ rotmats
    return (R_new[..., :2] - rotmats[..., :2]).reshape(rotmats.shape[0], 144)


def keypoint_gauss_newton_step(shaped: ShapedKeypoints, rotmats: torch.Tensor, gamma: torch.Tensor,
                               uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor, sigma: float,
                               weight_scale: torch.Tensor, damping: float):
    """One damped Gauss-Newton (Levenberg-Marquardt) step on Eq. 12 over pose and translation.

    Solves ``(J^T J + damping I) d = -J^T r`` (75 unknowns, see
    :func:`keypoint_gauss_newton_system`) per sample. The system is under-determined (34
    residuals), so the damping picks the smallest change that explains the keypoints - the
    solution plain gradient descent from the current pose converges to (the paper's Eq. 10
    loop run for many steps), in one step.

    arguments: as :func:`keypoint_gauss_newton_system`; damping: Levenberg damping in the units
        of the weighted residuals (metres^2 with weight_scale = (z / f)^2)
    returns: (delta_pose6d (B, 144) change of the 6D pose for the full step, delta_gamma (B, 3))
    """
    J, r = keypoint_gauss_newton_system(shaped, rotmats, gamma, uv, conf, K, sigma, weight_scale)
    A = J.transpose(1, 2) @ J + damping * torch.eye(75, dtype=J.dtype)
    delta = -torch.linalg.solve(A, (J.transpose(1, 2) @ r[..., None]))[..., 0]  # (B, 75)
    ok = torch.isfinite(delta).all(-1, keepdim=True)
    delta = torch.where(ok, delta, torch.zeros_like(delta))
    return rotation_update_6d(rotmats, delta[:, :72].reshape(-1, 24, 3)), delta[:, 72:]


def shared_body_gauss_newton_step(shaped: ShapedKeypoints, rotmats: torch.Tensor, gamma: torch.Tensor,
                                  uv: torch.Tensor, conf: torch.Tensor, K: torch.Tensor, sigma: float,
                                  weight_scale: torch.Tensor, damping: float, views: int):
    """Multi-view Gauss-Newton step on Eq. 12: one body-pose change for all views of a person.

    The N views of a person share the parent-relative body pose (joints 1..23), not the root
    rotation or the translation (the cameras are uncalibrated). The normal equations of the
    views are summed over the shared 69 unknowns, each view keeping its own root rotation and
    translation: a (69 + 6 N)-unknown system per person, so a joint well seen in one view and
    ambiguous in another is fixed by the view that sees it.

    rotmats, gamma, uv, conf, K, weight_scale: rows ordered person-major (person g, view n at
        row g * N + n), shapes as in :func:`keypoint_gauss_newton_system`
    views: N
    returns: (delta_pose6d (g * N, 144), delta_gamma (g * N, 3))
    """
    J, r = keypoint_gauss_newton_system(shaped, rotmats, gamma, uv, conf, K, sigma, weight_scale)
    BN, N = J.shape[0], views
    g = BN // N
    J = J.reshape(g, N, 34, 75)
    r = r.reshape(g, N, 34)
    body = torch.arange(3, 72)
    own = torch.cat((torch.arange(3), torch.arange(72, 75)))  # root rotation + translation
    Jb, Jo = J[..., body], J[..., own]  # (g, N, 34, 69), (g, N, 34, 6)
    n_unk = 69 + 6 * N
    A = torch.zeros(g, n_unk, n_unk, dtype=J.dtype)
    b = torch.zeros(g, n_unk, dtype=J.dtype)
    A[:, :69, :69] = (Jb.transpose(-1, -2) @ Jb).sum(1)
    b[:, :69] = (Jb.transpose(-1, -2) @ r[..., None])[..., 0].sum(1)
    for n in range(N):
        sl = slice(69 + 6 * n, 75 + 6 * n)
        cross = Jb[:, n].transpose(-1, -2) @ Jo[:, n]  # (g, 69, 6)
        A[:, :69, sl] = cross
        A[:, sl, :69] = cross.transpose(-1, -2)
        A[:, sl, sl] = Jo[:, n].transpose(-1, -2) @ Jo[:, n]
        b[:, sl] = (Jo[:, n].transpose(-1, -2) @ r[:, n, :, None])[..., 0]
    A = A + damping * torch.eye(n_unk, dtype=J.dtype)
    delta = -torch.linalg.solve(A, b[..., None])[..., 0]  # (g, 69 + 6N)
    delta = torch.where(torch.isfinite(delta).all(-1, keepdim=True), delta, torch.zeros_like(delta))
    own_d = delta[:, 69:].reshape(g, N, 6)
    w = torch.cat((own_d[..., :3], delta[:, None, :69].expand(g, N, 69)), dim=-1).reshape(BN, 24, 3)
    return rotation_update_6d(rotmats, w), own_d[..., 3:].reshape(BN, 3)


def gauss_newton_translation(points: torch.Tensor, gamma: torch.Tensor, uv: torch.Tensor, conf: torch.Tensor,
                             K: torch.Tensor, sigma: float, iterations: int = 1, damping: float = 1e-3,
                             max_step: float = 0.5) -> torch.Tensor:
    """Optimise the camera translation gamma of Eq. 12 with the pose held fixed.

    Iteratively reweighted Gauss-Newton on ``sum_k conf_k GMoF(r_k^2)``: each residual gets the
    weight ``conf_k dGMoF/d(r^2) = conf_k sigma^4 / (sigma^2 + r_k^2)^2`` and the 3x3 normal
    equations ``(J^T W J + lambda diag) delta = -J^T W r`` are solved per sample (Levenberg
    damping ``lambda = damping * trace / 3``).

    points: (B, 17, 3) body keypoints without translation (optical frame, metres), no grad
    gamma: (B, 3) current translation, metres
    uv: (B, 17, 2) detected keypoints, pixels
    conf: (B, 17) confidences (0 = ignored)
    K: (B, 3, 3) intrinsics
    sigma: GMoF scale, pixels
    iterations: Gauss-Newton iterations
    damping: relative Levenberg damping
    max_step: largest change of gamma per iteration, metres
    returns: (B, 3) updated gamma (samples whose weights are all zero keep theirs)
    """
    points = points.detach()
    gamma = gamma.detach().clone()
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # (B, 1)
    s2 = sigma * sigma
    eye = torch.eye(3, dtype=gamma.dtype)
    for _ in range(iterations):
        X = points + gamma[:, None]
        iz = 1.0 / X[..., 2].clamp_min(MIN_DEPTH)  # (B, 17)
        xn, yn = X[..., 0] * iz, X[..., 1] * iz
        ru = fx * xn + K[:, 0, 1, None] * yn + K[:, 0, 2, None] - uv[..., 0]  # pixel residuals
        rv = fy * yn + K[:, 1, 2, None] - uv[..., 1]
        w = conf * s2 * s2 / (s2 + ru * ru + rv * rv) ** 2  # IRLS weights of GMoF
        # Jacobian rows (skew neglected): du/dg = fx iz (1, 0, -xn), dv/dg = fy iz (0, 1, -yn)
        a, b = w * (fx * iz) ** 2, w * (fy * iz) ** 2
        Jxx, Jyy = a.sum(-1), b.sum(-1)
        Jxz, Jyz = -(a * xn).sum(-1), -(b * yn).sum(-1)
        Jzz = (a * xn * xn + b * yn * yn).sum(-1)
        gu, gv = w * fx * iz * ru, w * fy * iz * rv
        Jtr = torch.stack((gu.sum(-1), gv.sum(-1), -(gu * xn + gv * yn).sum(-1)), dim=-1)  # (B, 3)
        zero = torch.zeros_like(Jxx)
        JtJ = torch.stack((Jxx, zero, Jxz, zero, Jyy, Jyz, Jxz, Jyz, Jzz), dim=-1).reshape(-1, 3, 3)
        lam = damping * (Jxx + Jyy + Jzz).clamp_min(1e-12) / 3
        delta = -torch.linalg.solve(JtJ + lam[:, None, None] * eye, Jtr[..., None])[..., 0]
        norm = delta.norm(dim=-1, keepdim=True)
        delta = delta * (max_step / norm.clamp_min(max_step))
        ok = (w.sum(-1) > 0) & torch.isfinite(delta).all(-1)
        gamma = torch.where(ok[:, None], gamma + delta, gamma)
    return gamma
