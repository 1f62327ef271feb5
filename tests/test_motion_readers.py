"""CMU exp-map reader + FK, BVH parser/writer + FK, resampling."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmr_node.core.data import bvh as bvhmod
from hmr_node.core.data.cmu import (
    bone_lengths,
    clip_joint_positions,
    forward_kinematics,
    load_cmu_skeleton,
    local_rotations,
    read_cmu_clip,
)
from hmr_node.core.data.resample import resample_positions, resample_rotations, resample_times

CMU_DIR = Path(os.environ.get("HMR_CMU_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmu"))
needs_cmu = pytest.mark.skipif(not (CMU_DIR / "skeleton.json").is_file(), reason=f"CMU data not found at {CMU_DIR}")


# ----------------------------------------------------------------------------- resampling


def test_resample_times_and_positions_are_linear():
    assert np.allclose(resample_times(121, 120.0, 30.0), np.arange(31) * 4.0)
    s = resample_times(10, 30.0, 45.0)  # 0.3 s -> frames at 0, 1/45, ..., 13/45 (<= 0.3)
    assert s.shape == (14,) and np.allclose(s, np.arange(14) * 30.0 / 45.0)
    x = np.stack([np.arange(10.0) * 2.0 + 1.0, -np.arange(10.0)], axis=1)  # linear in time
    y = resample_positions(x, 30.0, 45.0)
    assert np.allclose(y[:, 0], s * 2.0 + 1.0) and np.allclose(y[:, 1], -s)


def test_resample_rotations_constant_velocity_is_exact():
    # a constant angular velocity about a fixed axis: slerp between samples is exact
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    t_in = np.arange(25) / 120.0
    w = 2.5  # rad/s, well below the Nyquist limit at 120 Hz
    R = Rotation.from_rotvec((w * t_in)[:, None] * axis).as_matrix()[:, None]  # (T, 1, 3, 3)
    out = resample_rotations(R, 120.0, 50.0)
    t_out = resample_times(25, 120.0, 50.0) / 120.0
    ref = Rotation.from_rotvec((w * t_out)[:, None] * axis).as_matrix()
    assert out.shape == (t_out.shape[0], 1, 3, 3)
    assert np.allclose(out[:, 0], ref, atol=1e-10)


def test_resample_rotations_takes_the_short_arc_across_pi():
    # 170 deg -> 190 deg about z (= -170 deg): the midpoint must be 180 deg, not 0 deg
    R = Rotation.from_euler("z", [[170.0], [190.0]], degrees=True).as_matrix()[:, None]
    mid = resample_rotations(R, 1.0, 2.0)[1, 0]
    assert np.allclose(mid, Rotation.from_euler("z", 180.0, degrees=True).as_matrix(), atol=1e-9)


# ----------------------------------------------------------------------------- CMU


@needs_cmu
def test_cmu_fk_matches_readme_checks():
    sk = load_cmu_skeleton(CMU_DIR)
    assert sk.num_joints == 38 and sk.units_to_metres == pytest.approx(0.056444)
    clip = read_cmu_clip(CMU_DIR / "train" / "walking" / "walking_1.txt", sk)
    assert clip.expmaps.shape == (clip.num_frames, 38, 3) and clip.num_frames == 344
    P = clip_joint_positions(clip, sk)
    bl = bone_lengths(sk, P)
    assert np.abs(bl - bl[0]).max() < 1e-12
    height = P[..., 1].max(1) - P[..., 1].min(1)
    assert 1.40 < height.min() and height.max() < 1.48
    # feet lowest, head end highest every frame
    feet = {sk.index(n) for n in ("LeftToeBase", "LeftToeEnd", "RightToeBase", "RightToeEnd", "LeftFoot", "RightFoot")}
    assert set(P[..., 1].argmin(1)) <= feet
    assert set(P[..., 1].argmax(1)) == {sk.index("HeadEnd")}
    # walks forward (+z here), facing the way it walks (left hip towards +x when facing +z)
    forward = np.cross(P[:, sk.index("LeftUpLeg")] - P[:, sk.index("RightUpLeg")], [0.0, 1.0, 0.0])
    travel = P[-1, 0] - P[0, 0]
    assert np.dot(forward.mean(0), travel) > 0
    speed = np.linalg.norm(travel[[0, 2]]) / (clip.num_frames / 120.0)
    assert 1.0 < speed < 1.4  # m/s, the README's walking speed


@needs_cmu
def test_cmu_fk_equals_row_vector_formula_of_the_readme():
    sk = load_cmu_skeleton(CMU_DIR)
    clip = read_cmu_clip(CMU_DIR / "eval" / "running" / "running_1.txt", sk)
    e, root = clip.expmaps[:5], clip.root_position[:5]
    P, _ = forward_kinematics(sk, root, local_rotations(e), metres=False)
    for t in range(5):  # the README's loop, literally, with row vectors
        G = [None] * sk.num_joints
        p = np.zeros((sk.num_joints, 3))
        for i in range(sk.num_joints):
            Ri = Rotation.from_rotvec(e[t, i]).as_matrix()
            if i == 0:
                G[0], p[0] = Ri, root[t]
            else:
                par = sk.parents[i]
                G[i] = Ri @ G[par]
                p[i] = sk.offsets[i] @ G[par] + p[par]
        assert np.allclose(P[t], p, atol=1e-12)


@needs_cmu
def test_cmu_resampled_fk_at_a_divisor_rate_equals_subsampling():
    sk = load_cmu_skeleton(CMU_DIR)
    clip = read_cmu_clip(CMU_DIR / "eval" / "running" / "running_1.txt", sk)
    P120 = clip_joint_positions(clip, sk)
    P30 = clip_joint_positions(clip, sk, fps=30.0)
    assert P30.shape[0] == (clip.num_frames - 1) // 4 + 1
    assert np.allclose(P30, P120[::4], atol=1e-9)
    P40 = clip_joint_positions(clip, sk, fps=40.0)  # 3 source frames per target frame
    assert np.allclose(P40, P120[::3][: P40.shape[0]], atol=1e-9)


@needs_cmu
def test_cmu_reader_rejects_bad_rows(tmp_path):
    sk = load_cmu_skeleton(CMU_DIR)
    bad = tmp_path / "bad.txt"
    bad.write_text(",".join(["0"] * 117) + "\n" + ",".join(["0"] * 116) + "\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 117 values, got 116"):
        read_cmu_clip(bad, sk)


# ----------------------------------------------------------------------------- BVH

SMALL_BVH = """HIERARCHY
ROOT Hips
{
\tOFFSET 0.0 0.0 0.0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
\tJOINT Chest
\t{
\t\tOFFSET 0.0 2.0 0.0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0.0 1.0 0.0
\t\t}
\t}
\tJOINT Leg
\t{
\t\tOFFSET 1.0 0.0 0.0
\t\tCHANNELS 3 Yrotation Xrotation Zrotation
\t\tJOINT Foot
\t\t{
\t\t\tOFFSET 0.0 -3.0 0.0
\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0.0 0.0 1.0
\t\t\t}
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.0333333
1.0 2.0 3.0 90.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0
1.0 2.0 3.0 0.0 0.0 0.0 90.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0
"""


def test_bvh_small_file_analytic_fk():
    m = bvhmod.parse_bvh(SMALL_BVH, "small.bvh")
    sk = m.skeleton
    assert sk.names == ("Hips", "Chest", "Chest_End", "Leg", "Foot", "Foot_End")
    assert sk.parents == (-1, 0, 1, 0, 3, 4)
    assert sk.num_channels == 15 and m.num_frames == 2 and m.fps == pytest.approx(30.0, rel=1e-5)
    P, _ = bvhmod.bvh_forward_kinematics(m)
    # frame 0: root at (1,2,3) turned 90 deg about z: local +x -> +y, local +y -> -x
    assert np.allclose(P[0, sk.index("Chest")], [1 - 2, 2, 3])
    assert np.allclose(P[0, sk.index("Leg")], [1, 2 + 1, 3])
    assert np.allclose(P[0, sk.index("Foot")], [1 + 3, 3, 3])
    # frame 1: Chest turned 90 deg about x: its End Site (0,1,0) -> (0,0,1)
    assert np.allclose(P[1, sk.index("Chest_End")], [1, 4, 4])


def test_bvh_write_parse_round_trip_any_channel_order(tmp_path):
    base = bvhmod.parse_bvh(SMALL_BVH, "small.bvh")
    rng = np.random.default_rng(7)
    T, J = 6, base.skeleton.num_joints
    # keep the middle Euler angle away from +-90 deg so the writer's angles are well conditioned
    R = Rotation.from_euler("xyz", rng.uniform(-1.2, 1.2, size=(T * J, 3))).as_matrix().reshape(T, J, 3, 3)
    R[:, [2, 5]] = np.eye(3)  # End Sites carry no rotation
    trans = np.broadcast_to(base.skeleton.offsets, (T, J, 3)).copy()
    trans[:, 0] = rng.normal(size=(T, 3)) * 10
    path = tmp_path / "rt.bvh"
    bvhmod.write_bvh(path, base.skeleton, R, trans, 1 / 120.0, precision=10)
    back = bvhmod.read_bvh(path)
    assert back.skeleton.names == base.skeleton.names and back.skeleton.channels == base.skeleton.channels
    assert np.allclose(back.local_rotations, R, atol=1e-9)
    assert np.allclose(back.translations, trans, atol=1e-9)
    P0 = bvhmod.bvh_forward_kinematics(bvhmod.BvhMotion(base.skeleton, R, trans, 1 / 120.0))[0]
    assert np.allclose(bvhmod.bvh_forward_kinematics(back)[0], P0, atol=1e-8)
    # skipping the first frame drops exactly that frame
    skipped = bvhmod.read_bvh(path, skip_first_frame=True)
    assert np.allclose(skipped.local_rotations, R[1:], atol=1e-9)


@needs_cmu
def test_bvh_real_cmu_file_fk_bone_lengths_constant():
    m = bvhmod.read_bvh(CMU_DIR / "bvh" / "07_01.bvh", skip_first_frame=True)
    assert m.skeleton.num_joints == 38 and m.skeleton.num_channels == 96
    assert m.num_frames == 316 and m.fps == pytest.approx(120.0, rel=1e-4)
    P, _ = bvhmod.bvh_forward_kinematics(m, scale=0.056444)
    par = np.array([max(p, 0) for p in m.skeleton.parents])
    bl = np.linalg.norm(P - P[:, par], axis=-1)
    assert np.abs(bl - bl[0]).max() < 1e-10
    # same skeleton layout as the exp-map data: T-pose rest, y up, head end highest, walks forward
    sk = m.skeleton
    assert set(P[..., 1].argmax(1)) == {sk.index("Head_End")}
    height = P[..., 1].max(1) - P[..., 1].min(1)
    assert 1.3 < np.median(height) < 1.6
    fwd = np.cross(P[:, sk.index("LeftUpLeg")] - P[:, sk.index("RightUpLeg")], [0.0, 1.0, 0.0]).mean(0)
    assert np.dot(fwd, P[-1, 0] - P[0, 0]) > 0


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda s: s.replace("HIERARCHY\n", ""), r"bad.bvh:1: missing HIERARCHY"),
        (lambda s: s.split("MOTION")[0], r"bad.bvh:\d+: missing MOTION"),
        (lambda s: s.replace("1.0 2.0 3.0 0.0 0.0 0.0 90.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0",
                             "1.0 2.0 3.0 0.0 0.0 0.0 90.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0"),
         r"bad.bvh:34: motion line has 14 values, the hierarchy has 15 channels"),
        (lambda s: s.replace("Frames: 2", "Frames: 3"), r"bad.bvh:\d+: truncated motion: header says 3 frames, file has 2"),
        (lambda s: s.replace("1.0 2.0 3.0 0.0 0.0 0.0 90.0", "1.0 2.0 3.0 abc 0.0 0.0 90.0"),
         r"bad.bvh:34: non-numeric value on motion line"),
        (lambda s: s.replace("OFFSET 1.0 0.0 0.0", "OFFSET 1.0 x 0.0"), r"bad.bvh:17: non-numeric OFFSET value 'x'"),
        (lambda s: s.replace("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 3 Xrotation Yrotation Wrotation"),
         r"bad.bvh:9: unknown channel 'Wrotation'"),
        (lambda s: s.replace("Frame Time: 0.0333333", "Frame Time: fast"), r"bad.bvh:32: non-numeric frame time 'fast'"),
        (lambda s: s.replace("\t}\n}\nMOTION", "\t}\nMOTION"), r"bad.bvh:\d+: unexpected end of HIERARCHY"),
    ],
    ids=["no-hierarchy", "no-motion", "channel-count", "truncated", "non-numeric-motion", "non-numeric-offset",
         "unknown-channel", "bad-frame-time", "unclosed-brace"],
)
def test_bvh_malformed_files_name_file_line_and_problem(tmp_path, mutate, pattern):
    bad = mutate(SMALL_BVH)
    assert bad != SMALL_BVH
    path = tmp_path / "bad.bvh"
    path.write_text(bad)
    with pytest.raises(ValueError, match=pattern):
        bvhmod.read_bvh(path)
