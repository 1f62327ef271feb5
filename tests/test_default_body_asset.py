"""The shipped default body (hmr_node/core/body/assets/hmr_neutral.npz), checked with numpy and
smplx only (building it needs anny; checking it must not)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hmr_node.core.body.skeleton import (
    COCO17_NAMES,
    NUM_COCO17,
    NUM_SMPL_JOINTS,
    SMPL_FLIP_PERMUTATION,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)

ASSET = Path(os.environ.get(
    "HMR_NEUTRAL_NPZ",
    Path(__file__).resolve().parents[1] / "hmr_node" / "core" / "body" / "assets" / "hmr_neutral.npz",
))
SMPLX_EXTRA_NAMES = (
    "nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe",
    "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb", "rindex", "rmiddle", "rring",
    "rpinky",
)
J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
K = {name: i for i, name in enumerate(COCO17_NAMES)}


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(ASSET, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def joints(arrays) -> np.ndarray:
    """(24, 3) rest joints at betas = 0."""
    return arrays["J_regressor"].astype(np.float64) @ arrays["v_template"].astype(np.float64)


def shaped(arrays, betas) -> np.ndarray:
    """(V, 3) rest mesh for a (10,) betas vector."""
    return (arrays["v_template"].astype(np.float64)
            + arrays["shapedirs"].astype(np.float64) @ np.asarray(betas, dtype=np.float64))


def stature(verts: np.ndarray) -> float:
    return float(verts[:, 1].max() - verts[:, 1].min())


def test_file_size():
    assert ASSET.stat().st_size <= 10 * 1024 * 1024


def test_keys_shapes_dtypes(arrays):
    V = arrays["v_template"].shape[0]
    F = arrays["f"].shape[0]
    assert V > 6000 and F > 10000
    expected = {
        "v_template": (V, 3), "shapedirs": (V, 3, 10), "posedirs": (V, 3, 207),
        "J_regressor": (NUM_SMPL_JOINTS, V), "weights": (V, NUM_SMPL_JOINTS), "kintree_table": (2, 24),
        "f": (F, 3), "coco17_regressor": (NUM_COCO17, V), "smplx_vertex_ids_names": (21,),
        "smplx_vertex_ids": (21,), "name": (), "version": (), "license": (),
    }
    assert set(arrays) == set(expected)
    for key, shape in expected.items():
        assert arrays[key].shape == shape, key
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "coco17_regressor"):
        assert arrays[key].dtype.kind == "f", key
        assert np.isfinite(arrays[key]).all(), key
    for key in ("kintree_table", "f", "smplx_vertex_ids"):
        assert arrays[key].dtype == np.int64, key
    for key in ("smplx_vertex_ids_names", "name", "version", "license"):
        assert arrays[key].dtype.kind == "U", key
    assert str(arrays["name"]) == "hmr_neutral"
    assert str(arrays["version"]) == "1"
    assert "SMPL" in str(arrays["license"]) and "CC0" in str(arrays["license"])


def test_topology_and_tree(arrays):
    V = arrays["v_template"].shape[0]
    f = arrays["f"]
    assert f.min() >= 0 and f.max() < V
    assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all() and (f[:, 0] != f[:, 2]).all()
    parents = arrays["kintree_table"][0]
    assert parents[0] == 4294967295
    assert tuple(parents[1:]) == SMPL_PARENTS[1:]
    assert (arrays["kintree_table"][1] == np.arange(24)).all()
    assert not arrays["posedirs"].any()  # anny has no pose correctives


@pytest.mark.parametrize("key", ["weights", "J_regressor", "coco17_regressor"])
def test_convex_rows(arrays, key):
    a = arrays[key].astype(np.float64)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
    if key != "weights":  # regressors are local: a sparse set of vertices per row
        assert ((a > 0).sum(1) <= 1000).all()


def test_smplx_vertex_ids(arrays):
    assert tuple(str(n) for n in arrays["smplx_vertex_ids_names"]) == SMPLX_EXTRA_NAMES
    ids = arrays["smplx_vertex_ids"]
    assert ids.min() >= 0 and ids.max() < arrays["v_template"].shape[0]
    v = arrays["v_template"][ids]
    pos = {str(n): p for n, p in zip(arrays["smplx_vertex_ids_names"], v)}
    for left, right in (("leye", "reye"), ("lear", "rear"), ("LBigToe", "RBigToe"), ("LHeel", "RHeel"),
                        ("lthumb", "rthumb"), ("lpinky", "rpinky")):
        assert pos[left][0] > 0 > pos[right][0], left
        np.testing.assert_allclose(pos[left] * [-1, 1, 1], pos[right], atol=0.01)
    assert pos["LBigToe"][2] > pos["LHeel"][2] + 0.15  # toes in front of the heel
    assert pos["lmiddle"][0] > pos["lthumb"][0]  # T-pose: fingertips far out along +x


def test_height_and_origin(arrays, joints):
    assert 1.6 <= stature(arrays["v_template"]) <= 1.9
    np.testing.assert_allclose(joints[J["pelvis"]], 0.0, atol=0.01)


def test_axes_y_up_facing_z(arrays, joints):
    assert joints[J["head"], 1] > joints[J["pelvis"], 1] > joints[J["left_ankle"], 1]
    assert joints[J["pelvis"], 1] > joints[J["right_ankle"], 1]
    nose = arrays["coco17_regressor"].astype(np.float64) @ arrays["v_template"].astype(np.float64)
    assert nose[K["nose"], 2] > joints[J["head"], 2] + 0.05
    assert joints[J["left_shoulder"], 0] > 0.1 and joints[J["right_shoulder"], 0] < -0.1
    assert joints[J["left_foot"], 2] > joints[J["left_ankle"], 2] + 0.05  # toes point forward


def test_left_right_symmetry(arrays, joints):
    mirrored = joints[list(SMPL_FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - joints).max() < 0.015
    coco = arrays["coco17_regressor"].astype(np.float64) @ arrays["v_template"].astype(np.float64)
    flip = [COCO17_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
            for n in COCO17_NAMES]
    assert np.abs(coco[flip] * np.array([-1.0, 1.0, 1.0]) - coco).max() < 0.015


def test_t_pose(arrays, joints):
    for side in ("left", "right"):
        sh, el, wr = (joints[J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
        assert abs(wr[1] - sh[1]) < 0.05 and abs(el[1] - sh[1]) < 0.05  # arms horizontal
        assert abs(wr[2] - sh[2]) < 0.05  # ... and sideways, not forwards
        hip, knee, ankle = (joints[J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        assert np.linalg.norm((ankle - hip)[[0, 2]]) < 0.05  # legs straight down


def test_limb_proportions(arrays, joints):
    def length(a, b):
        return float(np.linalg.norm(joints[J[a]] - joints[J[b]]))

    for side in ("left", "right"):
        thigh, shin = length(f"{side}_hip", f"{side}_knee"), length(f"{side}_knee", f"{side}_ankle")
        upper, fore = length(f"{side}_shoulder", f"{side}_elbow"), length(f"{side}_elbow", f"{side}_wrist")
        assert 0.9 <= thigh / shin <= 1.35
        assert 1.0 <= upper / fore <= 1.5
    v = arrays["v_template"]
    span = float(v[:, 0].max() - v[:, 0].min())
    assert 0.9 <= span / stature(v) <= 1.1


def test_betas0_height_monotonic(arrays):
    heights = [stature(shaped(arrays, np.eye(10)[0] * b)) for b in (-2, -1, 0, 1, 2)]
    assert np.all(np.diff(heights) > 0.01), heights
    assert 1.4 < heights[0] and heights[-1] < 2.1  # +-2 sd stays human


def test_shape_directions_carry_variation(arrays):
    sd = arrays["shapedirs"].astype(np.float64)
    rms = np.sqrt((sd ** 2).sum(1).mean(0))  # (10,) mean vertex displacement per unit beta
    assert rms[0] > 0.02  # at least 2 cm for 1 sd of the main direction
    assert (rms[:3] > 0.003).all()
    assert np.all(np.diff(rms) < 1e-6 + 0.1 * rms[:-1] + 1e-3)  # roughly decreasing (PCA order)


def test_joints_follow_shape(arrays):
    J_reg = arrays["J_regressor"].astype(np.float64)
    tall, short = (J_reg @ shaped(arrays, np.eye(10)[0] * b) for b in (2.0, -2.0))
    # ankles go down and the head up relative to the pelvis when the body grows
    assert tall[J["left_ankle"], 1] < short[J["left_ankle"], 1] - 0.03
    assert tall[J["head"], 1] > short[J["head"], 1] + 0.03


def test_signed_volume(arrays):
    v = arrays["v_template"].astype(np.float64)
    f = arrays["f"]
    vol = np.einsum("ij,ij->", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])) / 6.0
    assert 0.04 <= vol <= 0.12


def test_loads_through_smplx_and_zero_pose_is_template(arrays):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    loaded = dict(np.load(ASSET, allow_pickle=False))
    vid = {str(n): int(i) for n, i in zip(loaded["smplx_vertex_ids_names"], loaded["smplx_vertex_ids"])}
    model = smplx.SMPL(model_path=str(ASSET), data_struct=smplx.utils.Struct(**loaded),
                       vertex_ids=vid, num_betas=10)
    with torch.no_grad():
        out = model(betas=torch.zeros(1, 10), body_pose=torch.zeros(1, 69),
                    global_orient=torch.zeros(1, 3), transl=torch.zeros(1, 3))
    verts = out.vertices[0].numpy().astype(np.float64)
    np.testing.assert_allclose(verts, arrays["v_template"], atol=1e-5)
    joints = out.joints[0].numpy()
    assert joints.shape == (24 + 21, 3)
    np.testing.assert_allclose(joints[:24], arrays["J_regressor"] @ arrays["v_template"], atol=1e-5)
    np.testing.assert_allclose(joints[24:], arrays["v_template"][arrays["smplx_vertex_ids"]], atol=1e-5)
    # a posed call runs too: bending the left elbow moves the left wrist and not the right one
    pose = torch.zeros(1, 69)
    pose[0, 3 * (J["left_elbow"] - 1) + 1] = 1.2
    with torch.no_grad():
        bent = model(betas=torch.zeros(1, 10), body_pose=pose, global_orient=torch.zeros(1, 3),
                     transl=torch.zeros(1, 3)).joints[0].numpy()
    assert np.linalg.norm(bent[J["left_wrist"]] - joints[J["left_wrist"]]) > 0.1
    np.testing.assert_allclose(bent[J["right_wrist"]], joints[J["right_wrist"]], atol=1e-5)
