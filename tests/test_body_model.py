"""Our body model against smplx (the independent reference) on the same file."""
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from hmr_node.core.body import load_body_model
from hmr_node.core.body.model_file import read_body_model_arrays
from hmr_node.core.body.smplx_reference import smplx_model
from tests.conftest import make_random_smpl_arrays


def _random_inputs(B, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return dict(
        betas=torch.randn(B, 10, generator=g, dtype=dtype),
        global_orient=torch.randn(B, 3, generator=g, dtype=dtype),
        body_pose=torch.randn(B, 69, generator=g, dtype=dtype) * 0.5,
        transl=torch.randn(B, 3, generator=g, dtype=dtype),
    )


def test_zero_pose_gives_template(random_smpl_npz):
    body = load_body_model(random_smpl_npz, dtype=torch.float64)
    z = torch.zeros(2, 3, dtype=torch.float64)
    out = body(torch.zeros(2, 10, dtype=torch.float64), z, torch.zeros(2, 69, dtype=torch.float64))
    assert torch.allclose(out.vertices, body.v_template.expand(2, -1, -1), atol=1e-12)
    assert torch.allclose(out.joints, (body.J_regressor @ body.v_template).expand(2, -1, -1), atol=1e-12)


@pytest.mark.parametrize("path_fixture", ["random", "default"])
def test_forward_matches_smplx(path_fixture, random_smpl_npz):
    path = random_smpl_npz if path_fixture == "random" else None
    body = load_body_model(path, dtype=torch.float64)
    ref = smplx_model(path, dtype=torch.float64, batch_size=6)
    x = _random_inputs(6, seed=3)
    ours = body(**x)
    theirs = ref(**x, return_verts=True)
    assert (ours.vertices - theirs.vertices).abs().max() <= 1e-5
    assert (ours.joints - theirs.joints[:, :24]).abs().max() <= 1e-5


def test_joints_and_keypoints_fast_paths_are_exact(random_smpl_npz):
    body = load_body_model(random_smpl_npz, dtype=torch.float64)
    x = _random_inputs(5, seed=4)
    out = body(**x)
    assert (body.joints(**x) - out.joints).abs().max() <= 1e-10
    kp_full = torch.as_tensor(read_body_model_arrays(random_smpl_npz)["coco17_regressor"]) @ out.vertices
    assert (body.keypoints(**x) - kp_full).abs().max() <= 1e-10
    assert (body.keypoints_from_vertices(out.vertices) - kp_full).abs().max() <= 1e-10


def test_rotation_matrix_inputs_equal_axis_angle(random_smpl_npz):
    from hmr_node.core.geometry.rotations import axis_angle_to_matrix
    body = load_body_model(random_smpl_npz, dtype=torch.float64)
    x = _random_inputs(3, seed=5)
    y = dict(x, global_orient=axis_angle_to_matrix(x["global_orient"]),
             body_pose=axis_angle_to_matrix(x["body_pose"].reshape(3, 23, 3)))
    assert torch.allclose(body(**x).vertices, body(**y).vertices, atol=1e-12)


def test_gradients_reach_pose_and_betas(random_smpl_npz):
    body = load_body_model(random_smpl_npz, dtype=torch.float64)
    x = {k: v.requires_grad_(True) for k, v in _random_inputs(2, seed=6).items()}
    (body.joints(**x).square().sum() + body.keypoints(**x).square().sum()).backward()
    for k in ("betas", "global_orient", "body_pose", "transl"):
        assert torch.isfinite(x[k].grad).all() and x[k].grad.abs().sum() > 0, k


def test_official_style_pkl_with_chumpy_objects_loads_without_chumpy(tmp_path, random_smpl_npz):
    """Write a pickle whose arrays are 'chumpy.ch.Ch' objects and whose J_regressor is sparse,
    as the official SMPL files are, then read it without chumpy installed."""
    arrays = make_random_smpl_arrays()
    fake = types.ModuleType("chumpy.ch")

    class Ch:  # pickled as chumpy.ch.Ch with its state dict holding 'x'
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            return (Ch, (), {"x": self.x})

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    fake.Ch = Ch
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        data = dict(arrays, shapedirs=Ch(arrays["shapedirs"]), v_template=Ch(arrays["v_template"]),
                    J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]))
        path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    body_pkl = load_body_model(tmp_path, dtype=torch.float64)  # directory lookup
    body_npz = load_body_model(random_smpl_npz, dtype=torch.float64)
    x = _random_inputs(2, seed=7)
    assert torch.allclose(body_pkl(**x).vertices, body_npz(**x).vertices, atol=1e-12)


def test_bad_inputs_are_named(random_smpl_npz, tmp_path):
    body = load_body_model(random_smpl_npz)
    with pytest.raises(ValueError, match="body_pose"):
        body.joints(torch.zeros(1, 10), torch.zeros(1, 3), torch.zeros(1, 68))
    with pytest.raises(ValueError, match="betas"):
        body.joints(torch.zeros(1, 11), torch.zeros(1, 3), torch.zeros(1, 69))
    with pytest.raises(FileNotFoundError, match="path"):
        load_body_model(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="missing SMPL keys"):
        load_body_model(bad)
