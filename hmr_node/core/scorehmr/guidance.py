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

import torch

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model import BodyModel
from hmr_node.core.geometry.camera import project_points
from hmr_node.core.geometry.rotations import rot6d_to_matrix

__all__ = ["gmof", "ShapedKeypoints", "keypoint_loss", "reprojection_loss", "multiview_loss",
           "temporal_loss", "gauss_newton_translation", "BODY_POSE_SLICE"]

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


class ShapedKeypoints:
    """COCO-17 keypoints of B fixed bodies as a function of pose only (the fast guidance path).

    Equal to ``body_model.keypoints(betas, R[:, 0], R[:, 1:], transl)`` but organised for a
    cheap forward + backward pass (the guidance gradient is taken through it at every step):

    * everything that depends on betas only is computed once: rest joints, the bone offsets,
      and the shaped keypoint support vertices;
    * linear blend skinning followed by the keypoint regressor is linear in the joints' affine
      transforms ``A_j``, so ``kp_k = sum_j A_j q_kj`` with homogeneous points
      ``q_kj = sum_n kw_kn w_nj [v_n; 1]`` (kw: keypoint regressor, w: skinning weights, v_n the
      shaped and pose-corrected support vertex); ``q`` is its shape part plus a term linear in
      the pose correctives;
    * forward kinematics runs as one 4x4 matmul per tree level on homogeneous transforms.

    body_model: the BodyModel
    betas: (B, S) shape coefficients, held fixed
    """

    def __init__(self, body_model: BodyModel, betas: torch.Tensor):
        if not isinstance(body_model, BodyModel):
            raise TypeError(f"body_model: expected BodyModel, got {type(body_model).__name__}")
        if betas.dim() != 2 or betas.shape[1] > body_model.num_betas:
            raise ValueError(f"betas: expected (B, <= {body_model.num_betas}), got {tuple(betas.shape)}")
        self.body = body_model
        dt = body_model.J_template.dtype
        b = betas.to(dt)
        b = torch.cat((b, b.new_zeros(b.shape[0], body_model.num_betas - b.shape[1])), dim=1)
        B = b.shape[0]
        J = kin.blend_shapes(b, body_model.J_template, body_model.J_shapedirs)  # (B, 24, 3) rest joints
        parents = body_model.parents
        par = torch.tensor([max(p, 0) for p in parents])
        rel = J - J[:, par]
        rel[:, 0] = J[:, 0]  # the root rotates about its rest position, which stays in place
        self.rel = rel  # (B, 24, 3) bone offsets (root: its position)
        # M_kjn = kw_kn w_nj: keypoint k's weight on support vertex n through joint j
        self._M = torch.einsum("kn,nj->kjn", body_model.kp_weights, body_model.kp_skin_weights)  # (17, 24, S)
        rest_pts = kin.blend_shapes(b, body_model.kp_template, body_model.kp_shapedirs)  # (B, S, 3)
        # k: keypoint, j: joint, n: support vertex, c: xyz
        self.q_rest = torch.einsum("kjn,bnc->bkjc", self._M, rest_pts)  # (B, 17, 24, 3)
        self.q_one = self._M.sum(-1).expand(B, -1, -1)  # (B, 17, 24) homogeneous part
        # A_j = G_j [[I, -J_j], [0, 1]]: skinning transforms from the global ones
        unshift = torch.eye(4, dtype=dt).repeat(B, 24, 1, 1)
        unshift[..., :3, 3] = -J
        self.unshift = unshift  # (B, 24, 4, 4)
        self._levels = _level_plan(parents)

    def __len__(self) -> int:
        return self.rel.shape[0]

    def index(self, idx: torch.Tensor) -> "ShapedKeypoints":
        """A view on the samples ``idx`` (LongTensor) - used when converged samples drop out."""
        out = object.__new__(ShapedKeypoints)
        out.body, out._M, out._levels = self.body, self._M, self._levels
        out.rel, out.q_rest, out.q_one, out.unshift = self.rel[idx], self.q_rest[idx], self.q_one[idx], self.unshift[idx]
        return out

    def __call__(self, rotmats: torch.Tensor, transl: torch.Tensor | None = None) -> torch.Tensor:
        """rotmats: (B, 24, 3, 3) parent-relative rotations (joint 0 global)
        transl: (B, 3) metres or None
        returns: (B, 17, 3) COCO-17 keypoints
        """
        B = rotmats.shape[0]
        rotmats = rotmats.to(self.rel.dtype)
        # pose correctives of the support vertices, pushed through M: (B, 17, 24, 3)
        dv = (kin.pose_feature(rotmats) @ self.body.kp_posedirs).reshape(B, -1, 3)
        q = self.q_rest + torch.einsum("kjn,bnc->bkjc", self._M, dv)
        # local homogeneous transforms [R_j | rel_j; 0 0 0 1]
        bottom = rotmats.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(B, 24, 1, 4)
        local = torch.cat((torch.cat((rotmats, self.rel[..., None]), dim=-1), bottom), dim=-2)  # (B, 24, 4, 4)
        # forward kinematics, one tree level at a time (parents are all on the previous level)
        order, levels, parent_pos, inverse = self._levels
        G = [local[:, levels[0]]]
        for idx, ppos in zip(levels[1:], parent_pos):
            G.append(G[-1][:, ppos] @ local[:, idx])
        A = (torch.cat(G, dim=1)[:, inverse] @ self.unshift)[:, :, :3]  # (B, 24, 3, 4) joint order
        # kp_k = sum_j A_j [q_kj; q1_kj]; b: batch, k: keypoint, j: joint, r: row, c: column
        kp = torch.einsum("bjrc,bkjc->bkr", A[..., :3], q) + torch.einsum("bjr,bkj->bkr", A[..., 3], self.q_one)
        return kp if transl is None else kp + transl[:, None]

    def from_pose6d(self, pose6d: torch.Tensor, transl: torch.Tensor | None = None) -> torch.Tensor:
        """pose6d: (B, 144) -> (B, 17, 3) keypoints (see :meth:`__call__`)."""
        return self(rot6d_to_matrix(pose6d.reshape(-1, 24, 6)), transl)


def _level_plan(parents: tuple[int, ...]):
    """Index tensors for level-by-level forward kinematics.

    returns: (order, levels, parent_pos, inverse): levels[l] = joint ids at depth l;
        parent_pos[l - 1][i] = position of the parent of levels[l][i] within levels[l - 1];
        inverse maps the concatenated level order back to joint order
    """
    levels = kin.kinematic_levels(parents)
    pos = {}
    for lvl in levels:
        for i, j in enumerate(lvl):
            pos[j] = i
    parent_pos = [torch.tensor([pos[parents[j]] for j in lvl]) for lvl in levels[1:]]
    order = [j for lvl in levels for j in lvl]
    inverse = torch.argsort(torch.tensor(order))
    return order, [torch.tensor(lvl) for lvl in levels], parent_pos, inverse


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
    K2 = K[:, None, :2, :2]  # (B, 1, 2, 2)
    for _ in range(iterations):
        X = points + gamma[:, None]
        z = X[..., 2].clamp_min(MIN_DEPTH)
        xn = X[..., :2] / z[..., None]
        r = (K2 @ xn[..., None])[..., 0] + K[:, None, :2, 2] - uv  # (B, 17, 2) pixels
        r2 = (r ** 2).sum(-1)
        s2 = sigma * sigma
        w = conf * s2 * s2 / (s2 + r2) ** 2  # (B, 17)
        # d(xn)/dX = [[1/z, 0, -x/z^2], [0, 1/z, -y/z^2]]; dX/dgamma = I
        zeros = torch.zeros_like(z)
        dxn = torch.stack((torch.stack((1 / z, zeros, -xn[..., 0] / z), -1),
                           torch.stack((zeros, 1 / z, -xn[..., 1] / z), -1)), -2)  # (B, 17, 2, 3)
        J = K2 @ dxn  # (B, 17, 2, 3) d r / d gamma
        # b: batch, k: keypoint, i: pixel axis, p/q: gamma component
        JtJ = torch.einsum("bk,bkip,bkiq->bpq", w, J, J)
        Jtr = torch.einsum("bk,bkip,bki->bp", w, J, r)
        lam = damping * JtJ.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12) / 3
        A = JtJ + lam[:, None, None] * torch.eye(3, dtype=JtJ.dtype, device=JtJ.device)
        delta = -torch.linalg.solve(A, Jtr[..., None])[..., 0]
        norm = delta.norm(dim=-1, keepdim=True)
        delta = delta * (max_step / norm.clamp_min(max_step))
        ok = (w.sum(-1) > 0) & torch.isfinite(delta).all(-1)
        gamma = torch.where(ok[:, None], gamma + delta, gamma)
    return gamma
