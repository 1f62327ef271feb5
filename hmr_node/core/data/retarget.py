"""Retargeting skeleton motion capture (CMU, any BVH) to an SMPL-format body.

Method, per clip
    1. **Source**: joint positions ``P`` (T, J, 3), global rotations ``G`` (T, J, 3, 3) and the
       rest pose (all local rotations identity) of the source skeleton, resampled to the
       target rate (slerp / linear) before forward kinematics.
    2. **Scale and shape** (per source skeleton, from the rest poses; all CMU exp-map clips
       share one skeleton, each BVH file has its own): a uniform scale ``s``
       that matches the source's bone lengths to the body's (``s = sum|b_smpl| / sum|b_src|``
       over the bones between fitted joints), then optionally the body's ``betas`` fitted to
       the remaining length differences (least squares on bone lengths + a small prior).
    3. **Analytic initialisation** by bone directions: ``A`` aligns the body's rest joints to
       the source's rest joints (Kabsch). For SMPL joint ``j`` whose bone to its (nearest
       mapped) child ``c`` corresponds to the source offset ``o`` of joint ``m(c)`` from its
       parent ``k``, the body's global rotation is ``G_j = G_src[k] @ C_j @ A`` where ``C_j``
       is the smallest rotation taking the body's rest bone ``A (J_c - J_j)`` to ``o``: the
       bone then points exactly where the source bone points, and its twist follows the
       source joint's own rotation (mocap rotations carry twist). Joints with several mapped
       branches (pelvis: both hips and the spine; spine3: neck and both shoulders) take the
       per-frame Kabsch rotation of all their posed branch directions. Leaf joints (head,
       feet, hands) use the source joint's rotation and its first child's offset.
    4. **Refinement**: ``R_j = R_init_j @ exp(delta_j)`` and the root translation minimise, per
       frame, ``sum_m w_m |J_m - s P_m|^2 / sum w + sum_j reg_j |delta_j|^2`` plus a small
       temporal term ``|delta_t - (delta_{t-1} + delta_{t+1}) / 2|^2`` (neighbours held fixed
       within an iteration), by batched Levenberg-Marquardt with the analytic joint Jacobian
       (every frame a 3 x (active joints + 1)-variable problem, solved together). ``reg_j``
       is small for joints whose rotation moves a position target and larger for the others
       (spine, neck, collars, leaves), which therefore stay close to step 3.
    5. **Floor**: the clip is shifted vertically so its lowest foot vertex over the clip is
       on y = 0 (:func:`hmr_node.core.data.ground.place_on_floor`).

Quality: the mean distance (mm) between the body's joints and the scaled source joints they
correspond to, over the joints with a fit weight (``JointMap.metric_joints``). With the
shipped body at 30 fps (``hmr bench data``): 23.5 mm on CMU eval (clips 22.3-25.6 mm),
26.7 mm on the BVH clips; most of it is skeleton proportions (CMU's torso is short and its
thighs long for the body: hips ~53 mm, shoulders/elbows ~35 mm, wrists/feet < 7 mm), and
fitting the skeleton's own T-pose already leaves 32.6 mm.

CMU correspondence (:data:`CMU_JOINT_MAP`) and why
    * hips, knees, ankles = ``LeftUpLeg``, ``LeftLeg``, ``LeftFoot`` (joint centres in both);
      feet = ``LeftToeBase`` (ball of the foot in both);
    * shoulders, elbows, wrists = ``LeftArm``, ``LeftForeArm``, ``LeftHand``; hands =
      ``LeftHandIndex1`` (knuckles; SMPL's hand joint sits there) - fitted with a low weight
      for wrist orientation and not in the metric, its position is only roughly defined;
    * head = ``Head`` (top of the neck chain, where the head pivots, as SMPL's head joint);
    * **not** position targets (init only, not in the metric): CMU's ``Hips`` is 10 cm above
      its hip joints, ``LowerBack``/``Spine``/``Spine1`` form a short two-bone spine whose
      joints do not sit where SMPL's spine1-3 do, CMU's neck chain starts at ``Spine1`` below
      shoulder height (SMPL's neck is above it), and CMU's ``LeftShoulder`` has zero length
      (SMPL's collar is a real bone). Their rotations come from step 3 and are kept close to it.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model import BodyModel, load_body_model
from hmr_node.core.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from hmr_node.core.data import bvh as bvhmod
from hmr_node.core.data import cmu
from hmr_node.core.data.ground import place_on_floor
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.resample import resample_positions, resample_rotations
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

# bump when the retargeting maths or defaults change: cached clips are keyed by it
RETARGET_VERSION = 2


@dataclass(frozen=True)
class JointMap:
    """Correspondence between SMPL joints and source joints.

    pairs: (smpl joint name, source joint name, fit weight); weight 0 = used for the
        initialisation only (no position target, not in the metric)
    metric_excluded: SMPL joints that are fitted but left out of the reported error
    """

    pairs: tuple[tuple[str, str, float], ...]
    metric_excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for smpl_name, _, w in self.pairs:
            if smpl_name not in SMPL_JOINT_NAMES:
                raise ValueError(f"joint map: {smpl_name!r} is not an SMPL joint name ({', '.join(SMPL_JOINT_NAMES)})")
            if w < 0:
                raise ValueError(f"joint map: weight of {smpl_name!r} must be >= 0, got {w}")
        names = [p[0] for p in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"joint map: SMPL joints mapped twice: {sorted({n for n in names if names.count(n) > 1})}")

    @property
    def metric_joints(self) -> tuple[str, ...]:
        """SMPL joints in the reported error, in SMPL order."""
        fitted = {s for s, _, w in self.pairs if w > 0} - set(self.metric_excluded)
        return tuple(n for n in SMPL_JOINT_NAMES if n in fitted)

    def source_of(self, smpl_name: str) -> str | None:
        return next((src for s, src, _ in self.pairs if s == smpl_name), None)


def joint_map_from_dict(mapping: dict[str, str], weights: dict[str, float] | None = None) -> JointMap:
    """A :class:`JointMap` from ``{smpl joint name: source joint name}`` (weight 1 unless given)."""
    if not isinstance(mapping, dict):
        raise TypeError(f"mapping: expected dict of SMPL joint name -> source joint name, got {type(mapping).__name__}")
    weights = weights or {}
    return JointMap(tuple((s, src, float(weights.get(s, 1.0))) for s, src in mapping.items()))


def _sided(left: str, right: str, w: float) -> list[tuple[str, str, float]]:
    return [(f"left_{left}", f"Left{right}", w), (f"right_{left}", f"Right{right}", w)]


CMU_JOINT_MAP = JointMap(
    pairs=tuple(
        [("pelvis", "Hips", 0.0), ("spine1", "Spine", 0.0), ("spine2", "Spine1", 0.0), ("neck", "Neck1", 0.0),
         ("head", "Head", 1.0)]
        + _sided("hip", "UpLeg", 1.0) + _sided("knee", "Leg", 1.0) + _sided("ankle", "Foot", 1.0)
        + _sided("foot", "ToeBase", 1.0) + _sided("shoulder", "Arm", 1.0) + _sided("elbow", "ForeArm", 1.0)
        + _sided("wrist", "Hand", 1.0) + _sided("hand", "HandIndex1", 0.2)
    ),
    metric_excluded=("left_hand", "right_hand"),
)


@dataclass(frozen=True)
class RetargetConfig:
    """fps: output rate, Hz
    fit_betas: fit the body's shape to the source's bone lengths (else betas = 0)
    betas_prior: weight of |betas|^2 in the shape fit (bone-length residuals in metres)
    iterations: Levenberg-Marquardt iterations of the refinement (0 = analytic initialisation only)
    init_weight: weight of |delta_j|^2 (rad^2, against squared metres of the position term)
        for joints whose rotation moves a position target
    free_joint_weight: the same for the other joints (their rotations stay near step 3)
    smooth_weight: weight of |delta_t - (delta_{t-1} + delta_{t+1}) / 2|^2
    source_up: 'y' (CMU, most BVH) or 'z' (z-up sources: x forward, y left, z up)
    floor: shift the clip so its lowest foot vertex over the clip touches y = 0
    """

    fps: float = 30.0
    fit_betas: bool = True
    betas_prior: float = 2e-3
    iterations: int = 20
    init_weight: float = 1e-4
    free_joint_weight: float = 1e-2
    smooth_weight: float = 1e-3
    source_up: str = "y"
    floor: bool = True


@dataclass(frozen=True)
class SourceMotion:
    """Skeleton motion in any format, ready to retarget (positions in metres).

    name: clip name for the output, e.g. 'cmu/eval/walking_1'
    names: (J,) source joint names
    parents: (J,) parent indices (-1 root), parents first
    offsets: (J, 3) rest offsets from the parent (parent frame), metres
    positions: (T, J, 3) world joint positions, metres
    rotations: (T, J, 3, 3) world (global) joint rotations, column vectors
    fps: frame rate, Hz
    source: 'cmu' or 'bvh'
    attribution: text that must travel with the data
    """

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray
    fps: float
    source: str
    attribution: str

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"joint map: source joint {name!r} is not in {self.name!r} "
                             f"(joints: {', '.join(self.names)})") from None

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions with every local rotation identity, root at the origin."""
        P = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            if p >= 0:
                P[j] = P[p] + self.offsets[j]
        return P


def cmu_source(clip: cmu.CmuClip, skeleton: cmu.CmuSkeleton, fps: float, name: str | None = None) -> SourceMotion:
    """A CMU exp-map clip as a :class:`SourceMotion` at ``fps`` (leading start-pose frame dropped)."""
    root, R = cmu.resample_clip(cmu.trim_rest_frames(clip), fps)
    P, G = cmu.forward_kinematics(skeleton, root, R)
    return SourceMotion(name or f"cmu/{clip.name}", skeleton.names, skeleton.parents,
                        skeleton.offsets * skeleton.units_to_metres, P, G, float(fps), "cmu", cmu.CMU_ATTRIBUTION)


def rest_pose_source(names: tuple[str, ...], parents: tuple[int, ...], offsets: np.ndarray, fps: float = 30.0,
                     name: str = "rest_pose") -> SourceMotion:
    """One frame of a skeleton's rest pose (all rotations identity) as a source: retargeting it
    measures how far the body's proportions are from the skeleton's.

    names, parents: the skeleton; offsets: (J, 3) metres
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    P = np.zeros((1, len(names), 3))
    for j, p in enumerate(parents):
        if p >= 0:
            P[0, j] = P[0, p] + offsets[j]
    G = np.broadcast_to(np.eye(3), (1, len(names), 3, 3)).copy()
    return SourceMotion(name, tuple(names), tuple(parents), offsets, P, G, float(fps), "rest", "")


def bvh_source(motion: bvhmod.BvhMotion, fps: float, scale: float = 1.0, name: str | None = None,
               attribution: str = "", despike_deg: float | None = 20.0) -> SourceMotion:
    """A parsed BVH file as a :class:`SourceMotion` at ``fps``.

    motion: from :func:`hmr_node.core.data.bvh.read_bvh`
    fps: output rate, Hz
    scale: file units -> metres (CMU BVH: 0.056444)
    name: clip name (None = 'bvh/<file stem>')
    attribution: text that must travel with the data
    despike_deg: remove one-frame rotation spikes above this angle before resampling (None = keep)
    """
    R = motion.local_rotations
    if despike_deg is not None:
        R, _ = bvhmod.despike_rotations(R, despike_deg)
    t = motion.translations
    if abs(fps / motion.fps - 1.0) > 1e-4:  # frame times in files are rounded
        R = resample_rotations(R, motion.fps, fps)
        t = resample_positions(t, motion.fps, fps)
    m = bvhmod.BvhMotion(motion.skeleton, R, t, 1.0 / fps, motion.source)
    P, G = bvhmod.bvh_forward_kinematics(m, scale)
    sk = motion.skeleton
    return SourceMotion(name or f"bvh/{Path(motion.source).stem}", sk.names, sk.parents, sk.offsets * scale, P, G,
                        float(fps), "bvh", attribution)


# ----------------------------------------------------------------------------- small rotation helpers


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum |R src_i - dst_i|^2 (both (N, 3), centred inside)."""
    a = src - src.mean(0)
    b = dst - dst.mean(0)
    U, _, Vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(U @ Vt))
    return U @ np.diag([1.0, 1.0, d]) @ Vt


def _kabsch_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-frame rotation R_t minimising sum_i |R_t src_i - dst_ti|^2 (directions, not centred).

    src: (N, 3); dst: (T, N, 3) -> (T, 3, 3)
    """
    H = np.einsum("tni,nj->tij", dst, src)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.broadcast_to(np.eye(3), H.shape).copy()
    D[:, 2, 2] = d
    return U @ D @ Vt


def _align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction u to direction v (both (3,))."""
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    w = np.cross(u, v)
    c = float(np.dot(u, v))
    if c < -1.0 + 1e-9:  # opposite: half turn about any axis perpendicular to u
        axis = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    K = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    return np.eye(3) + K + K @ K / (1.0 + c)


# ----------------------------------------------------------------------------- the retargeter


@dataclass(frozen=True)
class RetargetResult:
    """clip: the SMPL motion; errors_mm: (T, K) distance per frame and metric joint (mm);
    joints_used: the K metric SMPL joints; scale: source -> body scale; seconds: time taken."""

    clip: MotionClip
    errors_mm: np.ndarray
    joints_used: tuple[str, ...]
    scale: float
    seconds: float

    @property
    def mean_error_mm(self) -> float:
        return float(self.errors_mm.mean())


class Retargeter:
    """Retargets :class:`SourceMotion` clips to one SMPL-format body.

    body: the body model (None = the shipped default, :func:`load_body_model`)
    joint_map: SMPL <-> source correspondence (:data:`CMU_JOINT_MAP` for CMU skeletons)
    config: see :class:`RetargetConfig`
    """

    def __init__(self, body: BodyModel | None = None, joint_map: JointMap = CMU_JOINT_MAP,
                 config: RetargetConfig = RetargetConfig()):
        if config.source_up not in ("y", "z"):
            raise ValueError(f"config.source_up: expected 'y' or 'z', got {config.source_up!r}")
        if not config.fps > 0:
            raise ValueError(f"config.fps: must be > 0, got {config.fps}")
        self.body = body if body is not None else load_body_model()
        self.joint_map = joint_map
        self.config = config
        self._shape_cache: dict[tuple, tuple[float, np.ndarray]] = {}
        self.smpl_idx = [SMPL_JOINT_NAMES.index(s) for s, _, _ in joint_map.pairs]
        self.weights = np.array([w for _, _, w in joint_map.pairs])
        self.metric_idx = [SMPL_JOINT_NAMES.index(n) for n in joint_map.metric_joints]

    # --------------------------------------------------------------- shape
    def _rest_joints(self, betas: np.ndarray) -> np.ndarray:
        b = torch.as_tensor(betas[None], dtype=self.body.v_template.dtype)
        with torch.no_grad():
            return self.body.rest_joints(b)[0].double().numpy()

    def _bone_pairs(self) -> list[tuple[int, int]]:
        """Pairs of positions in ``joint_map.pairs`` (both fitted) whose distance is a bone length:
        each fitted joint with its nearest fitted SMPL ancestor, and the fitted joints without
        one (hips, shoulders, head) with each other."""
        fitted = {self.smpl_idx[i]: i for i in range(len(self.smpl_idx)) if self.weights[i] > 0}
        pairs, tops = [], []
        for j, i in fitted.items():
            a = SMPL_PARENTS[j]
            while a >= 0 and a not in fitted:
                a = SMPL_PARENTS[a]
            if a >= 0:
                pairs.append((fitted[a], i))
            else:
                tops.append(i)
        pairs += [(tops[a], tops[b]) for a in range(len(tops)) for b in range(a + 1, len(tops))]
        return pairs

    def fit_shape(self, source: SourceMotion) -> tuple[float, np.ndarray]:
        """Uniform scale of the source and the body's betas, from rest-pose bone lengths.

        returns: (scale s: source metres -> body metres, betas (num_betas,))
        """
        key = (source.names, source.parents, source.offsets.round(9).tobytes())
        if key in self._shape_cache:
            return self._shape_cache[key]
        src_rest = source.rest_positions()[[source.index(n) for _, n, _ in self.joint_map.pairs]]
        pairs = self._bone_pairs()
        if not pairs:
            raise ValueError("joint map: needs at least two joints with a fit weight > 0")
        ia, ib = np.array(pairs).T
        src_len = np.linalg.norm(src_rest[ia] - src_rest[ib], axis=1)
        nb = self.body.num_betas

        def body_len(betas):
            J = self._rest_joints(betas)[self.smpl_idx]
            return np.linalg.norm(J[ia] - J[ib], axis=1)

        betas = np.zeros(nb)
        scale = float(body_len(betas).sum() / src_len.sum())
        if self.config.fit_betas:
            # bone lengths are nearly linear in betas: a few Gauss-Newton steps with a ridge prior
            for _ in range(5):
                r = body_len(betas) - scale * src_len
                eps = 1e-4
                Jac = np.stack([(body_len(betas + eps * e) - body_len(betas - eps * e)) / (2 * eps) for e in np.eye(nb)], 1)
                A = Jac.T @ Jac + self.config.betas_prior * np.eye(nb)
                betas = betas - np.linalg.solve(A, Jac.T @ r + self.config.betas_prior * betas)
        self._shape_cache[key] = (scale, betas)
        return scale, betas

    # --------------------------------------------------------------- initialisation
    def _world_rotation(self) -> np.ndarray:
        """R_yup_from_source."""
        return np.eye(3) if self.config.source_up == "y" else R_ZUP_FROM_SMPL.T

    def initial_rotations(self, source: SourceMotion, betas: np.ndarray) -> np.ndarray:
        """Analytic global rotations of the 24 SMPL joints (source world frame), step 3.

        returns: (T, 24, 3, 3)
        """
        J_rest = self._rest_joints(betas)
        src_rest = source.rest_positions()
        fitted = [i for i in range(len(self.smpl_idx)) if self.weights[i] > 0]
        src_of = {self.smpl_idx[i]: source.index(self.joint_map.pairs[i][1]) for i in range(len(self.smpl_idx))}
        A = _kabsch(J_rest[[self.smpl_idx[i] for i in fitted]],
                    src_rest[[src_of[self.smpl_idx[i]] for i in fitted]])
        T = source.positions.shape[0]
        G = np.empty((T, 24, 3, 3))
        children = {j: [c for c in range(24) if SMPL_PARENTS[c] == j] for j in range(24)}

        def mapped_descendant(j):
            todo = list(children[j])
            while todo:
                c = todo.pop(0)
                if c in src_of:
                    return c
                todo = children[c] + todo
            return None

        src_children = {k: [c for c, p in enumerate(source.parents) if p == k] for k in range(len(source.names))}
        for j in range(24):
            # one (u: body rest bone, k: source joint whose rotation drives it, o: source rest bone) per branch
            branches = []
            for ch in children[j]:
                c = ch if ch in src_of else mapped_descendant(ch)
                if c is None:
                    continue
                mc = src_of[c]
                u, k, o = A @ (J_rest[c] - J_rest[j]), source.parents[mc], source.offsets[mc]
                if k >= 0 and np.linalg.norm(u) > 1e-9 and np.linalg.norm(o) > 1e-9:
                    branches.append((u, k, o))
            if not branches and j in src_of and src_children[src_of[j]] and j > 0:
                # leaf (head, feet, hands): the source joint's own first bone
                k = src_of[j]
                o = source.offsets[src_children[k][0]]
                u = A @ (J_rest[j] - J_rest[SMPL_PARENTS[j]])
                if np.linalg.norm(o) > 1e-9:
                    branches.append((u, k, o))
            if not branches:  # nothing to follow: rigid with the parent
                G[:, j] = G[:, SMPL_PARENTS[j]] if j > 0 else source.rotations[:, 0] @ A
            elif len(branches) == 1:  # bone direction exact, twist from the source joint
                u, k, o = branches[0]
                G[:, j] = source.rotations[:, k] @ (_align(u, o) @ A)
            else:  # several bones (pelvis, spine3): per-frame Kabsch on the posed bone directions
                rest = np.stack([A.T @ (u / np.linalg.norm(u)) for u, _, _ in branches])  # (N, 3) body rest
                posed = np.stack([source.rotations[:, k] @ (_align(u, o) @ (u / np.linalg.norm(u)))
                                  for u, k, o in branches], axis=1)  # (T, N, 3)
                G[:, j] = _kabsch_batch(rest, posed)
        return G

    # --------------------------------------------------------------- refinement
    def _regularisation(self) -> torch.Tensor:
        """(24,) weight of |delta_j|^2: small where a joint's rotation moves a fitted joint."""
        fitted = {self.smpl_idx[i] for i in range(len(self.smpl_idx)) if self.weights[i] > 0}
        reg = torch.full((24,), self.config.free_joint_weight, dtype=torch.float64)
        for j in range(24):
            if any(SMPL_PARENTS[c] == j for c in fitted):
                reg[j] = self.config.init_weight
        return reg

    @torch.no_grad()
    def _refine(self, R_init: np.ndarray, target: np.ndarray, betas: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 4: batched Levenberg-Marquardt, every frame its own 75-variable least squares.

        Residuals per frame: ``sqrt(w_m / sum w) (J_m - target_m)`` for the fitted joints and
        ``sqrt(reg_j) log(R_init_j^T R_j)``. Jacobian of a joint position for a right
        perturbation ``R_j <- R_j exp(d)`` of an ancestor ``j`` (exact, first order):
        ``dJ_i = (G_j d) x (J_i - J_j) = -[J_i - J_j]_x G_j d``; for ``transl`` it is I.

        R_init: (T, 24, 3, 3) local rotations; target: (T, M, 3); betas: (S,)
        returns: local rotations (T, 24, 3, 3) and transl (T, 3), float64
        """
        T = R_init.shape[0]
        f64 = torch.float64
        parents = self.body.parents
        J_rest = torch.as_tensor(self._rest_joints(betas), dtype=f64).expand(T, 24, 3)
        R0 = torch.as_tensor(R_init, dtype=f64)
        tgt = torch.as_tensor(target, dtype=f64)
        fit = [i for i in range(len(self.smpl_idx)) if self.weights[i] > 0]
        idx = torch.as_tensor([self.smpl_idx[i] for i in fit])
        tgt = tgt[:, fit]
        M = len(fit)
        sw = torch.as_tensor(np.sqrt(self.weights[fit] / self.weights[fit].sum()), dtype=f64)
        # active joints: strict ancestors of a fitted joint (the others only move leaf-side mesh and stay at init)
        pairs = []  # (m, j): joint j's rotation moves fitted joint m
        for m, i in enumerate(idx.tolist()):
            a = parents[i]
            while a >= 0:
                pairs.append((m, a))
                a = parents[a]
        active = sorted({j for _, j in pairs})
        col = {j: k for k, j in enumerate(active)}
        pm = torch.as_tensor([m for m, _ in pairs])
        pj = torch.as_tensor([j for _, j in pairs])
        pc = torch.as_tensor([col[j] for _, j in pairs])
        A = len(active)
        act = torch.as_tensor(active)
        reg = self._regularisation()
        reg3 = reg[act].repeat_interleave(3)

        sm = self.config.smooth_weight if T > 2 else 0.0

        def neighbours(delta):
            """(T, A, 3) mean of each frame's two neighbours (an end frame: its one neighbour)."""
            return torch.cat((delta[1:2], 0.5 * (delta[:-2] + delta[2:]), delta[-2:-1])) if T > 2 else delta

        def evaluate(R, transl):
            """Frame costs without the temporal term, and what the next step needs."""
            G, Jp = kin.forward_kinematics(R, J_rest, parents, self.body.levels)
            r_pos = sw[None, :, None] * (Jp[:, idx] + transl[:, None] - tgt)  # (T, M, 3)
            delta = matrix_to_axis_angle(R0[:, act].transpose(-1, -2) @ R[:, act])  # (T, A, 3)
            cost = (r_pos ** 2).sum((1, 2)) + (reg[act][None, :, None] * delta ** 2).sum((1, 2))
            return cost, G, Jp, r_pos, delta

        Jp0 = kin.forward_kinematics(R0, J_rest, parents, self.body.levels)[1]
        transl = (tgt - Jp0[:, idx]).mean(1)
        R = R0.clone()
        cost, G, Jp, r_pos, delta = evaluate(R, transl)
        mu = torch.full((T,), 1e-4, dtype=f64)
        Jtr = (sw[:, None, None] * torch.eye(3, dtype=f64)).reshape(3 * M, 3)
        eye_a = torch.eye(3 * A, dtype=f64)
        for _ in range(self.config.iterations):
            # temporal term, Jacobi style: sm |delta_t - mean of its neighbours|^2, neighbours held fixed
            nb = neighbours(delta)
            total = cost + sm * ((delta - nb) ** 2).sum((1, 2))
            d = Jp[:, idx[pm]] - Jp[:, pj]  # (T, P, 3): J_m - J_j per (m, j) pair
            # -[d]_x G_j e = (G_j e) x d: column b of the block is G_j[:, b] x d
            blk = torch.cross(G[:, pj].transpose(-1, -2), d[:, :, None, :].expand(-1, -1, 3, -1), dim=-1)
            blk = blk.transpose(-1, -2) * sw[pm][None, :, None, None]  # (T, P, 3 a, 3 b)
            Jac = torch.zeros(T, M, A + 1, 3, 3, dtype=f64)
            Jac[:, pm, pc] = blk
            Jac = Jac.permute(0, 1, 3, 2, 4).reshape(T, 3 * M, 3 * A + 3)
            Jac[:, :, 3 * A:] = Jtr
            Jt = Jac.transpose(1, 2)
            H = Jt @ Jac
            H[:, : 3 * A, : 3 * A] += torch.diag(reg3) + sm * eye_a
            g = (Jt @ r_pos.reshape(T, 3 * M, 1))[..., 0]
            g[:, : 3 * A] += (reg3 * delta.reshape(T, 3 * A)) + sm * (delta - nb).reshape(T, 3 * A)
            H = H + torch.diag_embed(mu[:, None] * (torch.diagonal(H, dim1=1, dim2=2) + 1e-6))
            L, _ = torch.linalg.cholesky_ex(H)  # H is symmetric positive definite (damped normal equations)
            step = -torch.cholesky_solve(g[..., None], L)[..., 0]
            upd = torch.eye(3, dtype=f64).repeat(T, 24, 1, 1)
            upd[:, act] = axis_angle_to_matrix(step[:, : 3 * A].reshape(T, A, 3))
            R_new = R @ upd
            t_new = transl + step[:, 3 * A:]
            c_new, G_n, Jp_n, r_n, d_n = evaluate(R_new, t_new)
            new_total = c_new + sm * ((d_n - nb) ** 2).sum((1, 2))
            ok = new_total < total
            # stop when no frame still improves and no rejected frame can retry with more damping
            if not bool(((ok & (total - new_total > 1e-9 * total)) | (~ok & (mu < 1e5))).any()):
                break
            R = torch.where(ok[:, None, None, None], R_new, R)
            transl = torch.where(ok[:, None], t_new, transl)
            G = torch.where(ok[:, None, None, None], G_n, G)
            Jp = torch.where(ok[:, None, None], Jp_n, Jp)
            r_pos = torch.where(ok[:, None, None], r_n, r_pos)
            delta = torch.where(ok[:, None, None], d_n, delta)
            cost = torch.where(ok, c_new, cost)
            mu = torch.where(ok, mu / 3.0, mu * 4.0).clamp(1e-9, 1e6)
        return R, transl

    # --------------------------------------------------------------- full retarget
    def retarget(self, source: SourceMotion, name: str | None = None) -> RetargetResult:
        """Retarget one clip (rate of ``source``; build it at ``config.fps``).

        Runs on one torch thread (restored afterwards): the work is many small batched
        tensors, and several threads are slower, much slower on a busy machine.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._retarget(source, name)
        finally:
            torch.set_num_threads(threads)

    def _retarget(self, source: SourceMotion, name: str | None) -> RetargetResult:
        t0 = time.perf_counter()
        cfg = self.config
        scale, betas = self.fit_shape(source)
        W = self._world_rotation()
        Gw = W @ self.initial_rotations(source, betas)  # (T, 24, 3, 3) in the y-up world
        T = Gw.shape[0]
        R_init = np.empty_like(Gw)
        R_init[:, 0] = Gw[:, 0]
        for j in range(1, 24):
            R_init[:, j] = np.swapaxes(Gw[:, SMPL_PARENTS[j]], -1, -2) @ Gw[:, j]
        src_idx = [source.index(n) for _, n, _ in self.joint_map.pairs]
        target = scale * (source.positions[:, src_idx] @ W.T)  # (T, M, 3) body metres, y-up

        R, transl = self._refine(R_init, target, betas)
        with torch.no_grad():
            aa = matrix_to_axis_angle(R).numpy()
            Bt = torch.as_tensor(np.tile(betas, (T, 1)), dtype=self.body.v_template.dtype)
            Jall = self.body.joints(Bt, R[:, 0].to(Bt.dtype), R[:, 1:].to(Bt.dtype), transl.to(Bt.dtype)).double().numpy()
        tr = transl.numpy()
        metric_pos = [self.smpl_idx.index(j) for j in self.metric_idx]
        errors = np.linalg.norm(Jall[:, self.metric_idx] - target[:, metric_pos], axis=-1) * 1000.0
        clip = MotionClip(
            name=name or source.name, fps=source.fps, global_orient=aa[:, 0], body_pose=aa[:, 1:], transl=tr,
            betas=np.pad(betas, (0, max(0, 10 - betas.shape[0])))[:10], source=source.source, synthetic=False,
            attribution=source.attribution,
        )
        if cfg.floor:
            clip = place_on_floor(clip, self.body)
        return RetargetResult(clip, errors, self.joint_map.metric_joints, scale, time.perf_counter() - t0)


def retarget_cmu_file(path: str | os.PathLike, skeleton: cmu.CmuSkeleton, retargeter: Retargeter,
                      name: str | None = None, max_frames: int | None = None) -> RetargetResult:
    """Read, resample and retarget one CMU exp-map clip.

    path: the ``.txt`` clip
    skeleton: from :func:`hmr_node.core.data.cmu.load_cmu_skeleton`
    retargeter: holds the body, joint map (CMU) and config (its fps is used)
    name: clip name (None = 'cmu/<stem>')
    max_frames: keep only the first frames of the source (after resampling), for quick checks
    """
    clip = cmu.read_cmu_clip(path, skeleton)
    src = cmu_source(clip, skeleton, retargeter.config.fps, name)
    if max_frames is not None:
        src = dataclasses.replace(src, positions=src.positions[:max_frames], rotations=src.rotations[:max_frames])
    return retargeter.retarget(src)
