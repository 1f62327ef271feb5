"""Build the shipped default body ``hmr_neutral.npz``: an SMPL-format neutral body from anny.

Run (needs the optional ``anny`` package, ``pip install .[build]``; a first run takes a few minutes)::

    ANNY_CACHE_DIR=... WARP_CACHE_PATH=... \\
    python -m hmr_node.tools.build_body_model --out hmr_node/core/body/assets/hmr_neutral.npz

Source
    anny (NAVER, code Apache-2.0) drives MakeHuman's CC0 base mesh (13718 vertices) with phenotype
    blend shapes (gender, age, muscle, weight, height, proportions) and a 104-bone skeleton. Its
    rest pose is an A-pose, z-up, person's left towards +x, facing -y, root at the pelvis.

Method
    1. Sample ``--samples`` adult phenotypes with anny's WHO-calibrated ``SimpleShapeDistribution``
       (morphological age uniform in 18..70 years, gender uniform in [0, 1]; muscle, weight, height
       and proportions from its age-conditional Beta laws), seeded by ``--seed``.
    2. Pose every sample into SMPL's rest pose with anny's own forward kinematics
       (``world-orient`` parameterization, each bone given its world rotation): thighs and shins
       vertical, upper arms, forearms and hands horizontal with palms down and the elbow crease
       forward, fingers kept rigid with the hand; pelvis, spine, neck, head, clavicles and feet
       keep their rest orientation (upright, feet flat).
    3. Rotate z-up/facing -y to SMPL's y-up/facing +z frame and put each sample's pelvis (anny's
       root bone head) at the origin.
    4. PCA over the posed meshes: the mean is ``v_template``; the first 10 components, each scaled
       by its standard deviation, are ``shapedirs`` (betas ~ N(0, I) spans the sampled
       population); the sign of component 0 makes betas[0] increase stature.
    5. The 24 SMPL joints are placed at anny bone heads (hip = upperleg01 head, ankle = foot,
       shoulder = upperarm01, elbow = lowerarm01, wrist = wrist, ...; the knee 12 % down lowerleg01,
       see ``joint_bone_heads``). For each joint a
       sparse convex vertex combination (non-negative least squares with a sum-to-one row, over a
       few dozen vertices surrounding the joint) is fitted over all samples, so the joints follow
       shape changes. Left joints are fitted and mirrored to the right; centre joints symmetrised.
    6. Skinning weights: anny's 104 bone weights summed per SMPL joint (each bone mapped to the SMPL
       joint whose frame it moves with). ``posedirs`` are zero (anny has no pose correctives).
    7. COCO-17: anny's shipped COCO vertex regressor, made sparse by the same NNLS fit onto its most
       weighted vertices. smplx's 21 extra vertex ids are picked from the mesh.

The result is not SMPL, is not derived from SMPL data and carries no SMPL licence terms.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from hmr_node.core.body.skeleton import COCO17_NAMES, NUM_SMPL_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

NUM_BETAS = 10
NUM_POSE_BASIS = 207  # 23 joints x 9 rotation-matrix entries, SMPL's pose-corrective layout
ROOT_PARENT = 4294967295  # SMPL's kintree_table marks the root's parent with uint32 -1
SIDES = ("L", "R")
SIDE_NAME = {"L": "left", "R": "right"}
SIDE_SIGN = {"L": 1.0, "R": -1.0}  # the person's left is +x in both anny and SMPL frames

# anny's frame: z up, person's left +x, facing -y.
ANNY_UP = np.array([0.0, 0.0, 1.0])
ANNY_FORWARD = np.array([0.0, -1.0, 0.0])
ANNY_BACKWARD = -ANNY_FORWARD
# anny (x, y, z) -> SMPL (x, z, -y): y-up, facing +z, left still +x.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

KNUCKLE_BONES = ("finger2-1", "finger3-1", "finger4-1", "finger5-1")
TOE_BASE_BONES = ("toe1-1", "toe2-1", "toe3-1", "toe4-1", "toe5-1")
KNEE_DROP = 0.12  # fraction of the lowerleg01 bone between its head and the knee centre

LICENSE_TEXT = (
    "hmr_neutral v1: SMPL-format body built by hmr_node/tools/build_body_model.py from anny "
    "(NAVER, code and data Apache-2.0) and its MakeHuman base mesh and shape targets (CC0 1.0). "
    "Not SMPL: contains no SMPL data and no SMPL licence terms apply. Licence: Apache-2.0 "
    "(MakeHuman-derived geometry also CC0 1.0). See hmr_node/core/body/assets/LICENSE.md."
)


# ----------------------------------------------------------------------------- rig mapping


def joint_bone_heads() -> list[dict[str, float]]:
    """Each SMPL joint (in SMPL_JOINT_NAMES order) as a weighted mean of anny bone heads.

    Returns a list of 24 dicts {anny bone label: weight}, weights summing to 1.
    """
    recipe: dict[str, dict[str, float]] = {
        "pelvis": {"root": 1.0},
        "spine1": {"spine03": 1.0},
        "spine2": {"spine02": 1.0},
        "spine3": {"spine01": 1.0},
        "neck": {"neck01": 1.0},
        "head": {"head": 1.0},
    }
    for s in SIDES:
        side = SIDE_NAME[s]
        recipe[f"{side}_hip"] = {f"upperleg01.{s}": 1.0}
        # anny's lowerleg01 head sits ~2.5 cm above the knee's centre of rotation (its own COCO
        # knee keypoint, the middle of the thigh/shin skin-weight blend and anthropometric knee
        # height 0.285 x stature all lie lower): take the point 12 % down that bone instead
        recipe[f"{side}_knee"] = {f"lowerleg01.{s}": 1.0 - KNEE_DROP, f"lowerleg02.{s}": KNEE_DROP}
        recipe[f"{side}_ankle"] = {f"foot.{s}": 1.0}
        recipe[f"{side}_foot"] = {f"{b}.{s}": 1.0 / len(TOE_BASE_BONES) for b in TOE_BASE_BONES}
        recipe[f"{side}_collar"] = {f"clavicle.{s}": 0.5, f"shoulder01.{s}": 0.5}
        recipe[f"{side}_shoulder"] = {f"upperarm01.{s}": 1.0}
        recipe[f"{side}_elbow"] = {f"lowerarm01.{s}": 1.0}
        recipe[f"{side}_wrist"] = {f"wrist.{s}": 1.0}
        # middle of the hand: halfway between the wrist and the finger knuckles
        hand = {f"wrist.{s}": 0.5}
        hand.update({f"{b}.{s}": 0.5 / len(KNUCKLE_BONES) for b in KNUCKLE_BONES})
        recipe[f"{side}_hand"] = hand
    return [recipe[name] for name in SMPL_JOINT_NAMES]


def smpl_joint_of_bone(label: str) -> str:
    """The SMPL joint whose frame an anny bone moves with (for merging skinning weights)."""
    base, _, s = label.partition(".")
    side = SIDE_NAME.get(s, "")
    if base in ("root", "pelvis", "spine05", "spine04"):
        return "pelvis"
    table = {
        "spine03": "spine1", "spine02": "spine2", "spine01": "spine3",
        "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head", "eye": "head",
    }
    if base in table:
        return table[base]
    sided = {
        "upperleg01": "hip", "upperleg02": "hip", "lowerleg01": "knee", "lowerleg02": "knee",
        "foot": "ankle", "clavicle": "collar", "shoulder01": "collar",
        "upperarm01": "shoulder", "upperarm02": "shoulder",
        "lowerarm01": "elbow", "lowerarm02": "elbow", "wrist": "wrist",
    }
    if base in sided:
        return f"{side}_{sided[base]}"
    if base.startswith("toe"):
        return f"{side}_foot"
    if base.startswith("metacarpal"):
        return f"{side}_wrist"
    if base.startswith("finger"):
        return f"{side}_hand"
    raise KeyError(f"no SMPL joint for anny bone {label!r}")


def mean_of_heads(heads: np.ndarray, labels: list[str], recipe: dict[str, float]) -> np.ndarray:
    """Weighted mean of bone heads. heads (..., NB, 3) -> (..., 3)."""
    return sum(w * heads[..., labels.index(b), :] for b, w in recipe.items())


# ----------------------------------------------------------------------------- rotations


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation_aligning(a: np.ndarray, a2: np.ndarray, b: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Rotation R with R a ∥ b and R a2 in the half-plane (b, b2) (Gram-Schmidt frames).

    a, a2: (..., 3) source primary / secondary directions; b, b2: (..., 3) or (3,) targets.
    Returns (..., 3, 3).
    """
    def frame(p, q):
        e1 = _unit(p)
        e2 = _unit(q - (q * e1).sum(-1, keepdims=True) * e1)
        return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)

    a, a2 = np.broadcast_arrays(a, a2)
    b, b2 = np.broadcast_arrays(np.broadcast_to(b, a.shape), np.broadcast_to(b2, a.shape))
    return frame(b, b2) @ np.swapaxes(frame(a, a2), -1, -2)


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a to direction b. a (..., 3), b (3,) -> (..., 3, 3)."""
    b = np.broadcast_to(b, a.shape)
    axis = np.cross(a, b)
    small = np.linalg.norm(axis, axis=-1) < 1e-9 * np.linalg.norm(a, axis=-1)
    # any axis orthogonal to b keeps the rotation defined when a ∥ b (then R = I)
    axis = np.where(small[..., None], np.cross(b, np.roll(b, 1, axis=-1)), axis)
    return rotation_aligning(a, axis, b, axis)


def tpose_world_rotations(heads: np.ndarray, labels: list[str]) -> np.ndarray:
    """World rotations (rest -> SMPL T-pose) of every anny bone, in anny's frame.

    heads: (B, NB, 3) rest bone heads. Returns G (B, NB, 3, 3), identity for bones kept as they are.
    """
    B, NB, _ = heads.shape
    G = np.broadcast_to(np.eye(3), (B, NB, 3, 3)).copy()

    def head(name: str) -> np.ndarray:
        return heads[:, labels.index(name)]

    def assign(prefixes: tuple[str, ...], side: str, rot: np.ndarray):
        for i, label in enumerate(labels):
            base, _, s = label.partition(".")
            if s == side and base.startswith(prefixes):
                G[:, i] = rot

    for s in SIDES:
        out = SIDE_SIGN[s] * np.array([1.0, 0.0, 0.0])
        hip, knee, ankle = head(f"upperleg01.{s}"), head(f"lowerleg01.{s}"), head(f"foot.{s}")
        assign(("upperleg",), s, minimal_rotation(knee - hip, -ANNY_UP))
        assign(("lowerleg",), s, minimal_rotation(ankle - knee, -ANNY_UP))

        shoulder, elbow, wrist = head(f"upperarm01.{s}"), head(f"lowerarm01.{s}"), head(f"wrist.{s}")
        knuckles = np.mean([head(f"{b}.{s}") for b in KNUCKLE_BONES], axis=0)
        # index -> little finger knuckle line: points backwards once the palm faces down
        across = head(f"finger5-1.{s}") - head(f"finger2-1.{s}")
        # upper arm along +-x, elbow bending forwards
        assign(("upperarm",), s, rotation_aligning(elbow - shoulder, wrist - elbow, out, ANNY_FORWARD))
        # forearm and hand along +-x, palm down
        assign(("lowerarm",), s, rotation_aligning(wrist - elbow, across, out, ANNY_BACKWARD))
        assign(("wrist", "metacarpal", "finger"), s,
               rotation_aligning(knuckles - wrist, across, out, ANNY_BACKWARD))
    return G


# ----------------------------------------------------------------------------- anny


def load_anny():
    """anny's default full body (MakeHuman mesh, 104 bones), float64, dense LBS."""
    import anny

    return anny.Anny(skinning_method="lbs")


def sample_phenotypes(model, n: int, seed: int) -> dict[str, np.ndarray]:
    """n adult phenotypes from anny's WHO-calibrated distribution. Returns {label: (n,)}."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    ages = torch.distributions.Uniform(
        torch.tensor(18.0, dtype=model.dtype), torch.tensor(70.0, dtype=model.dtype))
    dist = SimpleShapeDistribution(model, morphological_age_distribution=ages)
    _, phen = dist.sample(n)
    return {k: v.numpy().astype(np.float64) for k, v in phen.items()}


def pose_batch_into_tpose(model, phenotypes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pose a batch of phenotypes into SMPL's T-pose with anny's forward kinematics.

    phenotypes: {label: (B,)}. Returns vertices (B, V, 3) and bone heads (B, NB, 3), anny frame.
    """
    import torch

    phen = {k: torch.as_tensor(v, dtype=model.dtype) for k, v in phenotypes.items()}
    with torch.no_grad():
        rest = model(phenotype_kwargs=phen)
        rest_poses = rest["rest_bone_poses"].numpy()
        G = tpose_world_rotations(rest_poses[..., :3, 3], list(model.bone_labels))
        D = rest_poses.copy()
        D[..., :3, :3] = G @ rest_poses[..., :3, :3]  # world orientation of each posed bone
        D[..., 1:, :3, 3] = 0.0  # only the root's translation is read: keep it in place
        posed = model(pose_parameters=torch.as_tensor(D), phenotype_kwargs=phen,
                      pose_parameterization="world-orient")
    return posed["vertices"].numpy(), posed["bone_poses"][..., :3, 3].numpy()


def pose_samples(model, phenotypes: dict[str, np.ndarray], batch: int = 32):
    """All samples posed, in SMPL's frame with each pelvis at the origin.

    Returns vertices (S, V, 3) float64 and bone heads (S, NB, 3).
    """
    from tqdm import tqdm

    n = len(next(iter(phenotypes.values())))
    verts, heads = [], []
    for start in tqdm(range(0, n, batch), desc="posing samples", unit="batch"):
        chunk = {k: v[start:start + batch] for k, v in phenotypes.items()}
        v, h = pose_batch_into_tpose(model, chunk)
        pelvis = h[:, list(model.bone_labels).index("root")][:, None]
        verts.append(to_smpl_frame(v - pelvis))
        heads.append(to_smpl_frame(h - pelvis))
    return np.concatenate(verts), np.concatenate(heads)


def to_smpl_frame(points: np.ndarray) -> np.ndarray:
    """anny frame (z up, facing -y) -> SMPL frame (y up, facing +z). (..., 3) -> (..., 3)."""
    return points @ ANNY_TO_SMPL.T


# ----------------------------------------------------------------------------- shape space


def principal_shape_space(verts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of posed meshes. verts (S, V, 3) -> mean (V, 3), dirs (V, 3, k) scaled by their
    standard deviations, explained variance ratio (k,)."""
    S, V, _ = verts.shape
    mean = verts.mean(0)
    X = (verts - mean).reshape(S, -1)
    gram = X @ X.T / (S - 1)  # (S, S): cheaper than the (3V, 3V) covariance
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1][:k]
    evals, evecs = evals[order], evecs[:, order]
    dirs = X.T @ evecs / np.sqrt(evals * (S - 1))  # unit principal directions (3V, k)
    for i in range(k):  # deterministic sign: largest-magnitude entry positive
        if dirs[np.argmax(np.abs(dirs[:, i])), i] < 0:
            dirs[:, i] *= -1
    dirs = dirs * np.sqrt(evals)
    ratio = evals / (np.einsum("ij,ij->", X, X) / (S - 1))
    return mean, dirs.reshape(V, 3, k), ratio


def stature(verts: np.ndarray) -> np.ndarray:
    """Standing height (extent along y). verts (..., V, 3) -> (...)."""
    return verts[..., 1].max(-1) - verts[..., 1].min(-1)


def orient_height_component(mean: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Flip shape direction 0 so that increasing betas[0] increases stature."""
    if stature(mean + dirs[..., 0]) < stature(mean - dirs[..., 0]):
        dirs = dirs.copy()
        dirs[..., 0] *= -1
    return dirs


# ----------------------------------------------------------------------------- mesh helpers


def main_component(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Boolean mask (V,) of the largest connected component (the skin, without eyeballs etc.)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rows, cols = faces.ravel(), np.roll(faces, 1, axis=1).ravel()
    adj = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(num_vertices, num_vertices))
    _, comp = connected_components(adj, directed=False)
    return comp == np.bincount(comp).argmax()


def mirror_map(verts: np.ndarray) -> tuple[np.ndarray, float]:
    """Index of each vertex's left/right mirror image. verts (V, 3) -> (V,), max mismatch (m)."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(verts).query(verts * np.array([-1.0, 1.0, 1.0]))
    return idx, float(dist.max())


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume of a closed triangle mesh (positive for outward normals), m^3."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)


def fibonacci_directions(n: int) -> np.ndarray:
    """n roughly uniform unit directions. Returns (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def surrounding_vertices(verts: np.ndarray, point: np.ndarray, allowed: np.ndarray,
                         n_dirs: int = 32, n_near: int = 16, cone_cos: float = 0.7) -> np.ndarray:
    """A local set of vertices enclosing a point: the nearest one in each of n_dirs directions plus
    the n_near nearest overall. verts (V, 3), point (3,), allowed (V,) bool -> sorted indices (K,)."""
    idx = np.flatnonzero(allowed)
    d = verts[idx] - point
    dist = np.linalg.norm(d, axis=1)
    cos = (d / dist[:, None]) @ fibonacci_directions(n_dirs).T  # (K, n_dirs)
    score = np.where(cos > cone_cos, dist[:, None] / np.maximum(cos, 1e-6), np.inf)
    picked = [idx[j] for j in np.argmin(score, axis=0)[np.isfinite(score.min(0))]]
    picked += list(idx[np.argsort(dist)[:n_near]])
    return np.unique(picked)


def vertices_within(verts: np.ndarray, point: np.ndarray, allowed: np.ndarray,
                    radius: float = 0.2, max_count: int = 800) -> np.ndarray:
    """The (at most max_count) nearest allowed vertices within radius of a point.
    verts (V, 3), point (3,), allowed (V,) bool -> sorted indices (K,)."""
    dist = np.where(allowed, np.linalg.norm(verts - point, axis=1), np.inf)
    near = np.argsort(dist)[:max_count]
    return np.sort(near[dist[near] < radius])


# ----------------------------------------------------------------------------- regressors


def fit_convex_combination(verts: np.ndarray, targets: np.ndarray, candidates: np.ndarray,
                           sum_weight: float = 30.0, ridge: float = 1e-7) -> np.ndarray:
    """Non-negative weights over candidate vertices, summing to 1, whose combination reproduces the
    targets over all samples. verts (S, V, 3), targets (S, 3), candidates (K,) -> weights (K,)."""
    S = verts.shape[0]
    A = verts[:, candidates, :].transpose(0, 2, 1).reshape(3 * S, -1)  # (3S, K)
    b = targets.reshape(3 * S)
    scale = 1.0 / np.sqrt(3 * S)
    K = len(candidates)
    A_aug = np.vstack([A * scale, sum_weight * np.ones((1, K)), np.sqrt(ridge) * np.eye(K)])
    b_aug = np.concatenate([b * scale, [sum_weight], np.zeros(K)])
    w, _ = nnls(A_aug, b_aug, maxiter=50 * K)
    return w / w.sum()


def fit_symmetric_regressor(verts: np.ndarray, targets: np.ndarray, names: tuple[str, ...],
                            candidates_of, mirror: np.ndarray, desc: str) -> np.ndarray:
    """Sparse convex vertex regressor for named points, symmetric under left/right mirroring.

    verts (S, V, 3), targets (S, P, 3) in SMPL frame; candidates_of(point (3,)) -> vertex indices
    to draw from. Left points are fitted and mirrored to the right ones; centre points are averaged
    with their mirror image. Returns (P, V) float64.
    """
    from tqdm import tqdm

    P, V = len(names), verts.shape[1]
    reg = np.zeros((P, V))
    mean = verts.mean(0)
    for p in tqdm(range(P), desc=desc, unit="point"):
        name = names[p]
        if name.startswith("right_"):
            continue
        cand = candidates_of(targets[:, p].mean(0))
        if not name.startswith("left_"):
            cand = np.union1d(cand, mirror[cand])
        reg[p, cand] = fit_convex_combination(verts, targets[:, p], cand)
        if name.startswith("left_"):
            reg[names.index("right_" + name[5:]), mirror] = reg[p]
        else:
            reg[p] = 0.5 * (reg[p] + reg[p, mirror])
    return reg


def anny_coco_targets(model, verts: np.ndarray) -> np.ndarray:
    """anny's own COCO-17 keypoints on the posed samples. verts (S, V, 3) -> (S, 17, 3)."""
    from anny.keypoints import KeypointsRegressor

    dense = KeypointsRegressor.coco(model, labels=list(COCO17_NAMES)).regression_weights.numpy()
    return np.einsum("kv,svd->skd", dense, verts)


def merge_skinning_weights(model) -> np.ndarray:
    """anny's per-bone skinning weights summed per SMPL joint. Returns (V, 24), rows sum to 1."""
    labels = list(model.bone_labels)
    w = model.vertex_bone_weights.numpy()
    idx = model.vertex_bone_indices.numpy().astype(np.int64)
    joint_of_bone = np.array([SMPL_JOINT_NAMES.index(smpl_joint_of_bone(b)) for b in labels])
    out = np.zeros((w.shape[0], NUM_SMPL_JOINTS))
    np.add.at(out, (np.repeat(np.arange(w.shape[0]), w.shape[1]), joint_of_bone[idx].ravel()), w.ravel())
    return out / out.sum(1, keepdims=True)


# ----------------------------------------------------------------------------- smplx vertex ids


def nearest_vertex(verts: np.ndarray, point: np.ndarray, allowed: np.ndarray) -> int:
    """Index of the allowed vertex nearest to a point. verts (V, 3), point (3,)."""
    idx = np.flatnonzero(allowed)
    return int(idx[np.argmin(np.linalg.norm(verts[idx] - point, axis=1))])


def fingertip_vertex(verts: np.ndarray, heads: np.ndarray, labels: list[str],
                     bone_weights: np.ndarray, bone: str) -> int:
    """The vertex of a finger's last bone farthest from that bone's head (the tip).

    verts (V, 3); heads (NB, 3); bone_weights (V, NB) dense anny weights.
    """
    b = labels.index(bone)
    mine = np.flatnonzero(bone_weights[:, b] > 0.5)
    return int(mine[np.argmax(np.linalg.norm(verts[mine] - heads[b], axis=1))])


def smplx_vertex_ids(model, verts: np.ndarray, heads: np.ndarray, coco_points: np.ndarray,
                     anny_points: dict[str, np.ndarray], allowed: np.ndarray,
                     mirror: np.ndarray) -> dict[str, int]:
    """Vertex ids for smplx's 21 extra joints, picked on the mean mesh (left picked, right mirrored).

    verts (V, 3) mean mesh, heads (NB, 3) mean bone heads, coco_points (17, 3) regressed COCO
    keypoints, anny_points {anny keypoint label: (3,)} for toes and heels.
    """
    import anny.skinning.skinning as skinning

    labels = list(model.bone_labels)
    dense = skinning.dense_bone_weights(model.vertex_bone_weights, model.vertex_bone_indices,
                                        len(labels)).numpy()
    ids = {
        "nose": nearest_vertex(verts, coco_points[COCO17_NAMES.index("nose")], allowed),
        "leye": nearest_vertex(verts, coco_points[COCO17_NAMES.index("left_eye")], allowed),
        "lear": nearest_vertex(verts, coco_points[COCO17_NAMES.index("left_ear")], allowed),
        "LBigToe": nearest_vertex(verts, anny_points["left_big_toe"], allowed),
        "LSmallToe": nearest_vertex(verts, anny_points["left_small_toe"], allowed),
        "LHeel": nearest_vertex(verts, anny_points["left_heel"], allowed),
    }
    for tip, finger in zip(("thumb", "index", "middle", "ring", "pinky"), range(1, 6)):
        ids["l" + tip] = fingertip_vertex(verts, heads, labels, dense, f"finger{finger}-3.L")
    mirrored = {"reye": "leye", "rear": "lear", "RBigToe": "LBigToe", "RSmallToe": "LSmallToe",
                "RHeel": "LHeel"}
    mirrored.update({"r" + t: "l" + t for t in ("thumb", "index", "middle", "ring", "pinky")})
    ids.update({right: int(mirror[ids[left]]) for right, left in mirrored.items()})
    order = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
             "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb",
             "rindex", "rmiddle", "rring", "rpinky")
    return {name: ids[name] for name in order}


def anny_foot_points(model, verts: np.ndarray) -> dict[str, np.ndarray]:
    """anny's toe and heel keypoints on a mesh. verts (V, 3) -> {label: (3,)}."""
    from anny.keypoints import KeypointsRegressor

    labels = ["left_big_toe", "left_small_toe", "left_heel"]
    reg = KeypointsRegressor.coco(model, labels=labels).regression_weights.numpy()
    return dict(zip(labels, reg @ verts))


# ----------------------------------------------------------------------------- assembly


def kintree_table() -> np.ndarray:
    """(2, 24) int64: parents (root = 4294967295) and joint ids, SMPL's layout."""
    parents = np.array(SMPL_PARENTS, dtype=np.int64)
    parents[0] = ROOT_PARENT
    return np.stack([parents, np.arange(NUM_SMPL_JOINTS, dtype=np.int64)])


def smpl_joint_targets(heads: np.ndarray, labels: list[str]) -> np.ndarray:
    """SMPL joint locations from posed bone heads. heads (S, NB, 3) -> (S, 24, 3)."""
    return np.stack([mean_of_heads(heads, labels, r) for r in joint_bone_heads()], axis=1)


def build(samples: int, seed: int, log=print) -> tuple[dict[str, np.ndarray], dict]:
    """Everything: returns the npz arrays and a dict of diagnostics."""
    import anny

    t0 = time.time()
    model = load_anny()
    labels = list(model.bone_labels)
    faces = model.faces.numpy().astype(np.int64)
    log(f"anny {anny.__version__} loaded in {time.time() - t0:.0f} s: "
        f"{len(model.template_vertices)} vertices, {len(faces)} faces, {len(labels)} bones")

    verts, heads = pose_samples(model, sample_phenotypes(model, samples, seed))
    log(f"posed {samples} samples; stature {stature(verts).min():.3f}..{stature(verts).max():.3f} m")

    mean, dirs, ratio = principal_shape_space(verts, NUM_BETAS)
    dirs = orient_height_component(mean, dirs)
    log("explained variance per component: " + " ".join(f"{r:.3f}" for r in ratio)
        + f" (total {ratio.sum():.4f})")

    skin = main_component(faces, len(mean))
    mirror, mirror_err = mirror_map(mean)
    log(f"mirror map max mismatch {mirror_err * 1000:.3f} mm")
    J, coco, joint_targets, coco_targets = fit_regressors(model, verts, heads, skin, mirror)

    offset = J[0] @ mean  # put the pelvis exactly at the origin at betas = 0
    mean, mean_heads = mean - offset, heads.mean(0) - offset
    vid = smplx_vertex_ids(model, mean, mean_heads, coco @ mean, anny_foot_points(model, mean),
                           skin, mirror)
    arrays = assemble_arrays(mean, dirs, J, merge_skinning_weights(model), faces, coco, vid)
    diag = {
        "explained_variance": ratio,
        "joint_fit_rms_mm": fit_rms_mm(J, verts, joint_targets),
        "coco_fit_rms_mm": fit_rms_mm(coco, verts, coco_targets),
        "mirror_mismatch_mm": 1000 * mirror_err,
        "stature_m": float(stature(mean)),
        "volume_m3": signed_volume(mean, faces),
        "seconds": time.time() - t0,
    }
    return arrays, diag


def fit_regressors(model, verts: np.ndarray, heads: np.ndarray, skin: np.ndarray,
                   mirror: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The joint and COCO-17 regressors fitted over all samples.

    verts (S, V, 3), heads (S, NB, 3). Returns J_regressor (24, V), coco (17, V) and their
    targets (S, 24, 3), (S, 17, 3).
    """
    mean = verts.mean(0)
    joint_targets = smpl_joint_targets(heads, list(model.bone_labels))
    # joints are regressed at rest only: draw on a wide neighbourhood for the best shape tracking
    J = fit_symmetric_regressor(verts, joint_targets, SMPL_JOINT_NAMES,
                                lambda p: vertices_within(mean, p, skin), mirror, "joint regressor")
    # keypoints are regressed from posed meshes too: keep them on a small local vertex set
    coco_targets = anny_coco_targets(model, verts)
    coco = fit_symmetric_regressor(verts, coco_targets, COCO17_NAMES,
                                   lambda p: surrounding_vertices(mean, p, skin), mirror,
                                   "COCO regressor")
    return J, coco, joint_targets, coco_targets


def fit_rms_mm(regressor: np.ndarray, verts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-point rms distance (mm) between regressed and target points. (P, V), (S, V, 3), (S, P, 3)."""
    err = np.einsum("pv,svd->spd", regressor, verts) - targets
    return 1000 * np.sqrt((err ** 2).sum(-1).mean(0))


def assemble_arrays(mean: np.ndarray, dirs: np.ndarray, J: np.ndarray, weights: np.ndarray,
                    faces: np.ndarray, coco: np.ndarray, vid: dict[str, int]) -> dict[str, np.ndarray]:
    """The npz contents, float32 where precision allows, no object arrays."""
    arrays = {
        "v_template": mean.astype(np.float32),
        "shapedirs": dirs.astype(np.float32),
        "posedirs": np.zeros((len(mean), 3, NUM_POSE_BASIS), dtype=np.float32),
        "J_regressor": J.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree_table(),
        "f": faces.astype(np.int64),
        "coco17_regressor": coco.astype(np.float32),
        "smplx_vertex_ids_names": np.array(list(vid.keys())),
        "smplx_vertex_ids": np.array(list(vid.values()), dtype=np.int64),
        "name": np.array("hmr_neutral"),
        "version": np.array("1"),
        "license": np.array(LICENSE_TEXT),
    }
    renormalise_rows(arrays)
    return arrays


def renormalise_rows(arrays: dict[str, np.ndarray]) -> None:
    """Make float32 rows of the convex weight matrices sum to 1 again after the cast (in place)."""
    for key, axis in (("J_regressor", 1), ("coco17_regressor", 1), ("weights", 1)):
        a = arrays[key].astype(np.float64)
        a[a < 1e-7] = 0.0
        arrays[key] = (a / a.sum(axis, keepdims=True)).astype(np.float32)


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays with np.savez_compressed (no object arrays: loads with allow_pickle=False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("hmr_node/core/body/assets/hmr_neutral.npz"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1000, help="phenotype samples for PCA and fits")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var, default in (("ANNY_CACHE_DIR", "~/.cache/anny"), ("WARP_CACHE_PATH", "~/.cache/warp")):
        os.environ.setdefault(var, os.path.expanduser(default))
    arrays, diag = build(args.samples, args.seed)
    save(args.out, arrays)
    np.set_printoptions(precision=2, suppress=True)
    print(f"template stature {diag['stature_m']:.3f} m, volume {diag['volume_m3']:.4f} m^3")
    print(f"joint fit rms (mm): {diag['joint_fit_rms_mm']}")
    print(f"COCO fit rms (mm): {diag['coco_fit_rms_mm']}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {diag['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
