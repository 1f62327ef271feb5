"""Mirroring, AMASS import, procedural motion and floor placement (bodies built in the test)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr_node.core.body.model import BodyModel
from hmr_node.core.body.skeleton import SMPL_FLIP_PERMUTATION, SMPL_PARENTS
from hmr_node.core.data.amass import load_amass, yup_to_amass
from hmr_node.core.data.ground import foot_heights, place_on_floor
from hmr_node.core.data.mirror import mirror_clip, mirror_smpl_params
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.data.procedural import (
    JOINT_LIMITS,
    PROCEDURAL_KINDS,
    ProceduralConfig,
    generate_motion,
    within_joint_limits,
)
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL

REFLECT_X = np.diag([-1.0, 1.0, 1.0])


def symmetric_body_arrays(seed: int = 0, half: int = 300, num_betas: int = 10) -> dict:
    """A random SMPL-format body that is exactly left/right symmetric about x = 0.

    Vertex i of the first half mirrors to vertex i + half; joint j to SMPL_FLIP_PERMUTATION[j].
    """
    rng = np.random.default_rng(seed)
    flip = np.array(SMPL_FLIP_PERMUTATION)
    vflip = np.concatenate([np.arange(half, 2 * half), np.arange(half)])
    V = 2 * half
    vh = rng.normal(scale=0.3, size=(half, 3))
    v = np.concatenate([vh, vh @ REFLECT_X])
    sdh = rng.normal(scale=0.02, size=(half, 3, num_betas))
    sd = np.concatenate([sdh, np.einsum("ab,nbs->nas", REFLECT_X, sdh)])
    J_reg = np.zeros((24, V))
    for j in range(24):
        if flip[j] < j:
            continue
        idx = rng.choice(V, size=10, replace=False)
        w = rng.random(10)
        J_reg[j, idx] = w / w.sum()
        if flip[j] == j:  # centre joint: symmetrise
            J_reg[j] = 0.5 * (J_reg[j] + J_reg[j, vflip])
        else:
            J_reg[flip[j]] = J_reg[j, vflip]
    wh = rng.random((half, 24)) ** 4
    weights = np.concatenate([wh, wh[:, flip]])
    weights /= weights.sum(1, keepdims=True)
    return {
        "v_template": v, "shapedirs": sd, "posedirs": np.zeros((V, 3, 207)), "J_regressor": J_reg,
        "weights": weights, "parents": np.array(SMPL_PARENTS), "f": rng.integers(0, V, size=(100, 3)),
        "coco17_regressor": J_reg[:17],
    }, vflip


@pytest.fixture(scope="module")
def sym_body():
    arrays, vflip = symmetric_body_arrays()
    return BodyModel(arrays, dtype=torch.float64), vflip


def _random_params(T: int, seed: int):
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=0.8, size=(T, 3)), rng.normal(scale=0.5, size=(T, 23, 3)),
            rng.normal(scale=1.0, size=(T, 3)), rng.normal(size=10))


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


# ----------------------------------------------------------------------------- mirror


def test_mirror_gives_the_mirror_image_of_joints_and_vertices(sym_body):
    body, vflip = sym_body
    go, bp, tr, betas = _random_params(6, seed=1)
    B = _t(np.repeat(betas[None], 6, 0))
    out = body(B, _t(go), _t(bp), _t(tr))
    mgo, mbp, mtr = mirror_smpl_params(go, bp, tr)
    mout = body(B, _t(mgo), _t(mbp), _t(mtr))
    flip = list(SMPL_FLIP_PERMUTATION)
    expect_j = out.joints.numpy()[:, flip] @ REFLECT_X
    expect_v = out.vertices.numpy()[:, vflip] @ REFLECT_X
    assert np.abs(mout.joints.numpy() - expect_j).max() < 1e-10
    assert np.abs(mout.vertices.numpy() - expect_v).max() < 1e-10
    # a non-trivial test: the mirrored pose is not the original pose
    assert np.abs(mout.joints.numpy() - out.joints.numpy()).max() > 0.1


def test_mirror_with_off_plane_rest_pelvis_reflects_points():
    # body whose rest pelvis is off the plane: only the joints that the mirror maps exactly
    # (pelvis position) are checked, against the point reflection of the transform
    go, bp, tr, _ = _random_params(4, seed=2)
    j0 = np.array([0.07, -0.2, 0.03])
    mgo, _, mtr = mirror_smpl_params(go, bp, tr, pelvis_rest=j0)
    # pelvis world position = transl + J0
    assert np.allclose(mtr + j0, (tr + j0) @ REFLECT_X)
    assert np.allclose(Rotation.from_rotvec(mgo).as_matrix(), REFLECT_X @ Rotation.from_rotvec(go).as_matrix() @ REFLECT_X)


def test_mirror_twice_is_identity():
    go, bp, tr, betas = _random_params(5, seed=3)
    clip = MotionClip("cmu/train/x", 30.0, go, bp, tr, betas, source="cmu", synthetic=False, attribution="a")
    once = mirror_clip(clip)
    twice = mirror_clip(once)
    assert once.name == "cmu/train/x/mirrored" and once.attribution == "a" and twice.name == clip.name
    assert not np.allclose(once.body_pose, clip.body_pose)
    for key in ("global_orient", "body_pose", "transl"):
        assert np.array_equal(getattr(twice, key), getattr(clip, key))


# ----------------------------------------------------------------------------- AMASS


def test_amass_round_trip_and_z_up_conversion(tmp_path, sym_body):
    body, _ = sym_body
    T = 11
    go, bp, tr, betas = _random_params(T, seed=4)
    bp[:, 21:] = 0.0  # SMPL-H files have no SMPL hand joints
    j0 = body.rest_joints(_t(betas[None]))[0, 0].numpy()
    zgo, ztr = yup_to_amass(go, tr, pelvis_rest=j0)
    poses = np.zeros((T, 156))
    poses[:, :3] = zgo
    poses[:, 3:66] = bp[:, :21].reshape(T, 63)
    poses[:, 66:] = np.random.default_rng(0).normal(size=(T, 90))  # hand articulation, dropped
    path = tmp_path / "clip_poses.npz"
    np.savez(path, poses=poses, trans=ztr, betas=np.concatenate([betas, np.ones(6)]), mocap_framerate=60.0,
             gender="neutral")
    clip = load_amass(path, fps=60.0, pelvis_rest=j0)
    assert clip.name == "amass/clip_poses" and clip.source == "amass" and not clip.synthetic
    assert clip.attribution and np.allclose(clip.betas, betas)
    assert np.allclose(Rotation.from_rotvec(clip.global_orient).as_matrix(), Rotation.from_rotvec(go).as_matrix())
    assert np.allclose(clip.body_pose, bp) and np.allclose(clip.transl, tr)
    # the z-up file's joints are R_ZUP_FROM_SMPL times the y-up clip's joints
    B = _t(np.repeat(betas[None], T, 0))
    zup = body.joints(B, _t(zgo), _t(bp), _t(ztr)).numpy()
    yup = body.joints(B, _t(clip.global_orient), _t(clip.body_pose), _t(clip.transl)).numpy()
    assert np.abs(zup - yup @ R_ZUP_FROM_SMPL.T).max() < 1e-10
    # resampled to half the rate: every other frame
    half = load_amass(path, fps=30.0, pelvis_rest=j0)
    assert half.num_frames == 6
    assert np.allclose(half.transl, tr[::2]) and np.allclose(half.body_pose, bp[::2], atol=1e-9)


def test_amass_missing_key_is_named(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, poses=np.zeros((3, 72)), mocap_framerate=30.0)
    with pytest.raises(ValueError, match="'trans'"):
        load_amass(path)


# ----------------------------------------------------------------------------- floor and procedural


def test_place_on_floor_matches_full_mesh(sym_body):
    body, _ = sym_body
    go, bp, tr, betas = _random_params(7, seed=5)
    clip = MotionClip("x", 30.0, go, bp, tr, betas)
    verts = body(_t(np.repeat(betas[None], 7, 0)), _t(go), _t(bp), _t(tr)).vertices.numpy()
    dominant = body.weights.argmax(1).numpy()
    feet = np.isin(dominant, [7, 8, 10, 11])
    ref = verts[:, feet, 1].min(1)
    assert np.allclose(foot_heights(body, betas, go, bp, tr, chunk=3), ref, atol=1e-10)
    placed = place_on_floor(clip, body)
    h = foot_heights(body, betas, placed.global_orient, placed.body_pose, placed.transl)
    assert h.min() == pytest.approx(0.0, abs=1e-10) and np.allclose(placed.transl[:, [0, 2]], tr[:, [0, 2]])
    assert np.allclose(foot_heights(body, betas, go, bp, place_on_floor(clip, body, per_frame=True).transl), 0.0,
                       atol=1e-10)


@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_procedural_clips_are_labelled_synthetic_within_limits_and_seeded(kind, sym_body):
    body, _ = sym_body
    cfg = ProceduralConfig(duration_s=4.0, fps=30.0)
    clip = generate_motion(kind, seed=3, body=body, config=cfg)
    assert clip.name == f"synthetic/{kind}" and clip.synthetic and clip.source == "synthetic"
    assert "synthetic" in clip.attribution and "seed=3" in clip.attribution
    assert clip.num_frames == 120 and clip.fps == 30.0
    assert within_joint_limits(clip.body_pose).all()
    # it moves: some joint varies by more than 0.2 rad over the clip
    assert np.ptp(clip.body_pose, axis=0).max() > 0.2
    # every frame stands on the floor
    h = foot_heights(body, clip.betas, clip.global_orient, clip.body_pose, clip.transl)
    assert np.allclose(h, 0.0, atol=1e-9)
    again = generate_motion(kind, seed=3, body=body, config=cfg)
    other = generate_motion(kind, seed=4, body=body, config=cfg)
    assert np.array_equal(again.body_pose, clip.body_pose)
    assert not np.allclose(other.body_pose, clip.body_pose)


def test_joint_limits_reject_a_hyperextended_knee():
    bp = np.zeros((2, 23, 3))
    bp[1, 3, 0] = -0.5  # left knee (joint 4 -> body_pose index 3) bent backwards
    ok = within_joint_limits(bp)
    assert ok[0].all() and not ok[1, 3] and ok[1, np.arange(23) != 3].all()
    assert np.all(JOINT_LIMITS[4, 0] == JOINT_LIMITS[5, 0])  # knees flex the same way on both sides


def test_walk_moves_forward_at_walking_speed(sym_body):
    body, _ = sym_body
    clip = generate_motion("walk", seed=0, body=body, config=ProceduralConfig(duration_s=4.0))
    dist = np.linalg.norm(np.diff(clip.transl[:, [0, 2]], axis=0), axis=1).sum()
    assert 0.8 < dist / clip.duration < 1.7
    # facing the direction of travel: body +z axis rotated by the root vs displacement
    fwd = Rotation.from_rotvec(clip.global_orient).apply([0.0, 0.0, 1.0])
    step = np.gradient(clip.transl, axis=0)
    assert np.all(np.sum(fwd[:, [0, 2]] * step[:, [0, 2]], axis=1) > 0)


def test_mirror_on_the_shipped_body_within_its_symmetry():
    from hmr_node.core.body.model import load_body_model

    body = load_body_model(dtype=torch.float64)  # the shipped body (committed; must load)
    go, bp, tr, betas = _random_params(5, seed=6)
    rest = body.rest_joints(_t(betas[None]))[0].numpy()
    asym = np.abs(rest[list(SMPL_FLIP_PERMUTATION)] @ REFLECT_X - rest).max()  # the body's own asymmetry
    B = _t(np.repeat(betas[None], 5, 0))
    J = body.joints(B, _t(go), _t(bp), _t(tr)).numpy()
    mJ = body.joints(B, *map(_t, mirror_smpl_params(go, bp, tr))).numpy()
    err = np.abs(mJ - J[:, list(SMPL_FLIP_PERMUTATION)] @ REFLECT_X).max()
    assert err < 1e-6 + 4 * asym and err < 2e-3
