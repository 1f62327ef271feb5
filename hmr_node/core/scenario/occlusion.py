"""Occlusion between people: which keypoints of a person are hidden by someone closer.

Every body is approximated by capsules (line segments with a radius), one per bone, fitted once
to the body model's rest mesh for the person's shape: for the bone from joint ``p`` to its child
``c``, the vertices whose dominant skinning joint is ``p`` and that lie closest to that bone give
the radius (their median distance to the segment). Leaf joints (head, hands, feet) get a
segment from the joint to the centroid of their vertices. A keypoint ``P`` (camera frame) of
person ``i`` is occluded when the line of sight from the camera centre to ``P`` passes within
``occlusion * radius`` of a capsule of another person ``j`` at a point at least ``margin`` metres in
front of ``P``. ``occlusion`` scales every radius: 0 = no occlusion, 1 = body-sized
capsules, > 1 = fatter occluders (detectors also fail near an occluder's silhouette).
Self-occlusion is not modelled (2D detectors usually still localise a person's own hidden
joints).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmr_node.core.body.skeleton import NUM_SMPL_JOINTS, SMPL_PARENTS


@dataclass(frozen=True)
class OcclusionConfig:
    """margin: an occluder must be at least this far in front of the keypoint along the line of
    sight, metres; scale: multiplier on the capsule radii (0 = off)."""

    margin: float = 0.10
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("margin", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"OcclusionConfig.{name} must be a finite number >= 0, "
                                 f"got {value!r}")


@dataclass(frozen=True)
class CapsuleBody:
    """Capsules of one body, attached to its joints.

    start: (C,) index of the joint at each capsule's start.
    end: (C,) index of the joint at each capsule's end, or -1 for a leaf capsule.
    leaf_offset: (C, 3) for leaf capsules, the end point in the start joint's frame at rest
        (the vertex centroid minus the joint), metres; zeros otherwise.
    radius: (C,) radii, metres.
    """

    start: np.ndarray
    end: np.ndarray
    leaf_offset: np.ndarray
    radius: np.ndarray

    def segments(self, joints: np.ndarray, joint_rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed capsule end points.

        joints: (..., 24, 3) posed joint positions.
        joint_rotations: (..., 24, 3, 3) global (accumulated) joint rotations.
        Returns ``a`` (..., C, 3) and ``b`` (..., C, 3).
        """
        a = joints[..., self.start, :]
        leaf = np.einsum("...cij,cj->...ci", joint_rotations[..., self.start, :, :], self.leaf_offset)
        b = np.where((self.end >= 0)[:, None], joints[..., np.maximum(self.end, 0), :], a + leaf)
        return a, b


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points to segments: p, a, b (..., 3) -> (...,)."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def capsules_from_rest(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray
                       ) -> CapsuleBody:
    """Fit one capsule per bone (and per leaf joint) to a rest mesh.

    vertices: (V, 3) rest-pose vertices of the shaped body, metres.
    joints: (24, 3) rest-pose joints, metres.
    weights: (V, 24) skinning weights.
    """
    children = {j: [c for c in range(NUM_SMPL_JOINTS) if SMPL_PARENTS[c] == j]
                for j in range(NUM_SMPL_JOINTS)}
    owner = np.argmax(weights, axis=1)
    start, end, offset, radius = [], [], [], []
    for j in range(NUM_SMPL_JOINTS):
        verts = vertices[owner == j]
        if children[j]:
            a = np.repeat(joints[j][None], len(children[j]), 0)
            b = joints[children[j]]
            if len(verts):
                d = point_segment_distance(verts[:, None], a[None], b[None])  # (n, children)
                nearest = np.argmin(d, axis=1)
            for k, c in enumerate(children[j]):
                mine = d[nearest == k, k] if len(verts) else np.zeros(0)
                start.append(j)
                end.append(c)
                offset.append(np.zeros(3))
                radius.append(float(np.median(mine)) if len(mine) else 0.0)
        elif len(verts):
            centroid = verts.mean(axis=0)
            start.append(j)
            end.append(-1)
            offset.append(centroid - joints[j])
            radius.append(float(np.median(point_segment_distance(verts, joints[j], centroid))))
    return CapsuleBody(np.array(start), np.array(end), np.array(offset).reshape(-1, 3),
                       np.array(radius))


def ray_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Closest approach between the sight line segments [0, p] (from the camera centre) and
    segments [a, b].

    p: (..., 3) points, camera frame.
    a, b: (..., 3) segment end points (broadcast against p).
    Returns ``dist`` (...,) and ``s`` (...,) in [0, 1], the closest point's fraction along [0, p].
    """
    # minimise |s p - (a + u (b - a))|^2 over s, u in [0, 1] (closest points of two segments)
    d1, d2, r = p, b - a, -a
    aa = np.sum(d1 * d1, -1)
    ee = np.sum(d2 * d2, -1)
    ff = np.sum(d2 * r, -1)
    cc = np.sum(d1 * r, -1)
    bb = np.sum(d1 * d2, -1)
    denom = aa * ee - bb * bb
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12, np.clip((bb * ff - cc * ee) / denom, 0.0, 1.0), 0.0)
        u = np.where(ee > 1e-12, (bb * s + ff) / ee, 0.0)
        # u out of [0, 1]: clamp it and recompute s
        u_c = np.clip(u, 0.0, 1.0)
        s = np.where(u != u_c, np.clip((bb * u_c - cc) / np.maximum(aa, 1e-12), 0.0, 1.0), s)
    u = u_c
    diff = s[..., None] * d1 - (a + u[..., None] * d2)
    return np.linalg.norm(diff, axis=-1), s


def occluded_keypoints(keypoints: np.ndarray, active: np.ndarray, capsule_a: np.ndarray,
                       capsule_b: np.ndarray, capsule_radius: np.ndarray,
                       config: OcclusionConfig) -> np.ndarray:
    """Which keypoints are hidden behind other people, for one frame.

    keypoints: (P, K, 3) keypoints of P people in the camera optical frame, metres.
    active: (P,) bool, people present in this frame (inactive ones neither occlude nor are tested).
    capsule_a, capsule_b: (P, C, 3) capsule end points of every person, camera frame.
    capsule_radius: (P, C) capsule radii, metres (before ``config.scale``).
    config: occlusion model.
    Returns (P, K) bool, True = occluded by another person.
    """
    P, K = keypoints.shape[:2]
    occluded = np.zeros((P, K), bool)
    if config.scale == 0 or P < 2:
        return occluded
    for i in range(P):
        if not active[i]:
            continue
        depth = np.linalg.norm(keypoints[i], axis=-1)                      # (K,)
        for j in range(P):
            if j == i or not active[j]:
                continue
            dist, s = ray_segment_distance(keypoints[i][:, None], capsule_a[j][None],
                                           capsule_b[j][None])            # (K, C)
            hit = (dist < config.scale * capsule_radius[j][None]) \
                & (s * depth[:, None] < depth[:, None] - config.margin)
            occluded[i] |= hit.any(axis=1)
    return occluded
