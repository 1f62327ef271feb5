"""Retargeting: exact recovery when the source skeleton is the body's own, BVH and z-up paths,
and the error on a short real CMU clip with the shipped body."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr_node.core.body import kinematics as kin
from hmr_node.core.body.model import BodyModel, load_body_model
from hmr_node.core.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from hmr_node.core.data import bvh as bvhmod
from hmr_node.core.data import cmu
from hmr_node.core.data.ground import foot_heights
from hmr_node.core.data.retarget import (
    CMU_JOINT_MAP,
    JointMap,
    RetargetConfig,
    Retargeter,
    SourceMotion,
    bvh_source,
    joint_map_from_dict,
    retarget_cmu_file,
)
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL

from conftest import make_random_smpl_arrays

CMU_DIR = Path(os.environ.get("HMR_CMU_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmu"))
needs_cmu = pytest.mark.skipif(not (CMU_DIR / "skeleton.json").is_file(), reason=f"CMU data not found at {CMU_DIR}")
SELF_MAP = joint_map_from_dict({n: n for n in SMPL_JOINT_NAMES})


@pytest.fixture(scope="module")
def random_body(tmp_path_factory):
    path = tmp_path_factory.mktemp("body") / "SMPL_NEUTRAL.npz"
    np.savez(path, **make_random_smpl_arrays(seed=3))
    return load_body_model(path, dtype=torch.float64)


def smpl_source(body: BodyModel, T: int = 12, seed: int = 0, scale: float = 1.0) -> tuple[SourceMotion, np.ndarray]:
    """The body's own skeleton moving with random poses, as a source; returns (source, joints)."""
    rng = np.random.default_rng(seed)
    go = rng.normal(scale=0.5, size=(T, 3))
    bp = rng.normal(scale=0.35, size=(T, 23, 3))
    tr = rng.normal(scale=0.5, size=(T, 3))
    R = kin.pose_to_rotmats(torch.as_tensor(go), torch.as_tensor(bp))
    J_rest = body.rest_joints(torch.zeros(T, 10, dtype=torch.float64))
    G, P = kin.forward_kinematics(R, J_rest, body.parents)
    P = (P + torch.as_tensor(tr)[:, None]).numpy() * scale
    rest = J_rest[0].numpy()
    offsets = np.array([rest[j] - rest[p] if p >= 0 else np.zeros(3) for j, p in enumerate(SMPL_PARENTS)]) * scale
    src = SourceMotion("test/self", SMPL_JOINT_NAMES, SMPL_PARENTS, offsets, P, G.numpy(), 30.0, "bvh", "test")
    return src, P / scale


def _joints(body, clip):
    T = clip.num_frames
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=body.v_template.dtype)  # noqa: E731
    with torch.no_grad():
        return body.joints(t(np.tile(clip.betas, (T, 1))), t(clip.global_orient), t(clip.body_pose),
                           t(clip.transl)).double().numpy()


def test_own_skeleton_is_recovered_exactly_by_the_analytic_initialisation(random_body):
    src, P = smpl_source(random_body)
    cfg = RetargetConfig(iterations=0, fit_betas=False, floor=False)
    res = Retargeter(random_body, SELF_MAP, cfg).retarget(src)
    assert res.scale == pytest.approx(1.0, abs=1e-9)
    assert res.errors_mm.max() < 1e-6
    assert np.abs(_joints(random_body, res.clip) - P).max() < 1e-9
    assert res.joints_used == SMPL_JOINT_NAMES


def test_refinement_recovers_poses_from_a_perturbed_start(random_body):
    # start the refinement 0.2 rad away from the truth: it must come back (errors near 0)
    src, P = smpl_source(random_body, T=8, seed=1)
    rng = np.random.default_rng(5)
    noisy = src.rotations @ Rotation.from_rotvec(rng.normal(scale=0.2, size=(8 * 24, 3))).as_matrix().reshape(8, 24, 3, 3)
    rt = Retargeter(random_body, SELF_MAP, RetargetConfig(iterations=0, fit_betas=False, floor=False))
    start = rt.retarget(dataclasses.replace(src, rotations=noisy))
    assert start.mean_error_mm > 20.0
    # positions are the truth, rotations perturbed: the refinement fits the positions
    rt = Retargeter(random_body, SELF_MAP, RetargetConfig(iterations=30, fit_betas=False, floor=False, init_weight=1e-9,
                                                            free_joint_weight=1e-9, smooth_weight=0.0))
    res = rt.retarget(dataclasses.replace(src, rotations=noisy))
    assert res.mean_error_mm < 0.5


def test_scaled_source_is_scaled_back_and_z_up_source_is_turned_upright(random_body):
    src, P = smpl_source(random_body, T=6, seed=2, scale=0.5)
    res = Retargeter(random_body, SELF_MAP, RetargetConfig(iterations=0, fit_betas=False, floor=False)).retarget(src)
    assert res.scale == pytest.approx(2.0, rel=1e-9) and res.errors_mm.max() < 1e-6
    # the same motion recorded in a z-up world (x forward, y left, z up)
    src, P = smpl_source(random_body, T=6, seed=2)
    zsrc = dataclasses.replace(src, positions=src.positions @ R_ZUP_FROM_SMPL.T, rotations=R_ZUP_FROM_SMPL @ src.rotations)
    cfg = RetargetConfig(iterations=0, fit_betas=False, floor=False, source_up="z")
    res = Retargeter(random_body, SELF_MAP, cfg).retarget(zsrc)
    assert np.abs(_joints(random_body, res.clip) - P).max() < 1e-9


def test_bvh_written_from_the_body_retargets_exactly(random_body, tmp_path):
    src, P = smpl_source(random_body, T=5, seed=4)
    # local rotations of the body skeleton -> a BVH with ZYX channels (root with positions)
    G = src.rotations
    local = G.copy()
    for j, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            local[:, j] = np.swapaxes(G[:, p], -1, -2) @ G[:, j]
    chans = tuple(("Xposition", "Yposition", "Zposition") * (j == 0) + ("Zrotation", "Yrotation", "Xrotation")
                  for j in range(24))
    skel = bvhmod.BvhSkeleton(SMPL_JOINT_NAMES, SMPL_PARENTS, src.offsets, chans)
    trans = np.broadcast_to(src.offsets, (5, 24, 3)).copy()
    trans[:, 0] = P[:, 0]
    path = tmp_path / "self.bvh"
    bvhmod.write_bvh(path, skel, local, trans, 1 / 30.0, precision=10)
    motion = bvhmod.read_bvh(path)
    res = Retargeter(random_body, SELF_MAP, RetargetConfig(iterations=0, fit_betas=False, floor=False)).retarget(
        bvh_source(motion, 30.0, despike_deg=None))
    assert np.abs(_joints(random_body, res.clip) - P).max() < 1e-7
    assert res.clip.name == "bvh/self" and res.clip.source == "bvh"


def test_joint_map_validation():
    with pytest.raises(ValueError, match="'pelvic' is not an SMPL joint"):
        JointMap((("pelvic", "Hips", 1.0),))
    with pytest.raises(ValueError, match="mapped twice"):
        JointMap((("head", "Head", 1.0), ("head", "Neck", 1.0)))
    with pytest.raises(TypeError, match="mapping"):
        joint_map_from_dict([("head", "Head")])
    # the CMU metric covers the joints the brief requires and leaves out the loosely defined ones
    required = {f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")}
    assert required | {"head"} <= set(CMU_JOINT_MAP.metric_joints)
    assert not {"pelvis", "spine1", "spine2", "spine3", "neck", "left_collar", "left_hand"} & set(CMU_JOINT_MAP.metric_joints)


@needs_cmu
def test_missing_source_joint_is_named(random_body):
    sk = cmu.load_cmu_skeleton(CMU_DIR)
    rt = Retargeter(random_body, joint_map_from_dict({"head": "Skull"}), RetargetConfig(iterations=0))
    with pytest.raises(ValueError, match="'Skull' is not in"):
        retarget_cmu_file(CMU_DIR / "eval" / "running" / "running_1.txt", sk, rt, max_frames=3)


@needs_cmu
def test_real_cmu_clip_retargets_under_threshold_with_the_shipped_body():
    torch.set_num_threads(1)
    body = load_body_model()
    sk = cmu.load_cmu_skeleton(CMU_DIR)
    res = retarget_cmu_file(CMU_DIR / "eval" / "running" / "running_1.txt", sk, Retargeter(body),
                            name="cmu/eval/running_1", max_frames=30)
    clip = res.clip
    assert clip.num_frames == 30 and clip.fps == 30.0 and clip.source == "cmu" and not clip.synthetic
    assert "mocap.cs.cmu.edu" in clip.attribution
    # measured 24-25 mm on this clip (mean over 15 joints); proportions differ, so not ~0
    assert res.mean_error_mm < 32.0
    assert np.abs(clip.betas).max() < 3.0 and 0.9 < res.scale < 1.3
    # feet on the floor, and the bones point where the source bones point
    h = foot_heights(body, clip.betas, clip.global_orient, clip.body_pose, clip.transl)
    assert h.min() == pytest.approx(0.0, abs=1e-5)
    J = _joints(body, clip)
    src = cmu.clip_joint_positions(cmu.trim_rest_frames(cmu.read_cmu_clip(CMU_DIR / "eval" / "running" / "running_1.txt",
                                                                          sk)), sk, 30.0)[:30]
    for a, b, sa, sb in [("left_hip", "left_knee", "LeftUpLeg", "LeftLeg"), ("right_knee", "right_ankle", "RightLeg", "RightFoot"),
                         ("left_shoulder", "left_elbow", "LeftArm", "LeftForeArm")]:
        u = J[:, SMPL_JOINT_NAMES.index(b)] - J[:, SMPL_JOINT_NAMES.index(a)]
        v = src[:, sk.index(sb)] - src[:, sk.index(sa)]
        cos = np.sum(u * v, 1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 8.0
    # runs forward in the source's direction: the root travels along the source root
    travel = J[-1, 0] - J[0, 0]
    src_travel = src[-1, 0] - src[0, 0]
    assert np.dot(travel, src_travel) / np.linalg.norm(travel) / np.linalg.norm(src_travel) > 0.99
