import cv2
import numpy as np
import pytest
import torch

from hmr_node.core.body.model import load_body_model
from hmr_node.core.geometry import camera as cam
from hmr_node.core.geometry import frames
from hmr_node.core.geometry.rotations import axis_angle_to_matrix


def _cam(model="plumb_bob", D=(-0.28, 0.07, 0.001, -0.0005, 0.0)):
    return cam.PinholeCamera(K=np.array([[600.0, 0, 322.0], [0, 610.0, 241.0], [0, 0, 1]]), width=640, height=480,
                             distortion_model=model, D=D)


def _points(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-1, 1, n), rng.uniform(2, 8, n)])


def test_pinhole_projection_matches_cv2_and_torch():
    c = _cam(model="none", D=())
    P = _points()
    ref, _ = cv2.projectPoints(P, np.zeros(3), np.zeros(3), c.K, None)
    assert np.allclose(c.project(P), ref[:, 0], atol=1e-9)
    t = c.project(torch.tensor(P))
    assert np.allclose(t.numpy(), ref[:, 0], atol=1e-9)


@pytest.mark.parametrize("model,D", [("plumb_bob", (-0.28, 0.07, 0.001, -0.0005, 0.01)),
                                     ("rational_polynomial", (0.1, -0.05, 0.001, 0.002, 0.01, 0.05, -0.01, 0.003))])
def test_distorted_projection_matches_cv2_and_undistort_inverts(model, D):
    c = _cam(model, D)
    P = _points()
    ref, _ = cv2.projectPoints(P, np.zeros(3), np.zeros(3), c.K, np.asarray(D))
    uv_d = c.project_distorted(P)
    assert np.allclose(uv_d, ref[:, 0], atol=1e-7)
    # undistortion returns the ideal pinhole projection
    assert np.allclose(c.undistort_points(uv_d), c.project(P), atol=1e-3)


def test_analytic_projection():
    c = cam.PinholeCamera.from_intrinsics(500, 500, 320, 240, 640, 480)
    assert np.allclose(c.project(np.array([0.0, 0.0, 4.0])), [320, 240])
    assert np.allclose(c.project(np.array([1.0, -0.5, 2.0])), [320 + 250, 240 - 125])
    assert c.in_image(np.array([[0, 0], [639.9, 479.9], [640, 10], [-1, 5]])).tolist() == [True, True, False, False]


def test_from_camera_info_fields_and_bad_K():
    class Info:  # CameraInfo field names as in ROS 2 / rosbags
        k = [500.0, 0, 320, 0, 510, 240, 0, 0, 1]
        d = [0.1, 0, 0, 0, 0]
        distortion_model = "plumb_bob"
        width, height = 640, 480
    c = cam.PinholeCamera.from_camera_info(Info)
    assert c.K[1, 1] == 510 and c.D[0] == 0.1 and c.has_distortion
    with pytest.raises(ValueError, match="K"):
        cam.PinholeCamera(K=np.zeros((3, 3)), width=640, height=480)
    with pytest.raises(ValueError, match="distortion_model"):
        cam.PinholeCamera(K=np.eye(3), width=640, height=480, distortion_model="fisheye42")


def test_weak_perspective_round_trip_and_projection_equivalence():
    K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    bbox = np.array([400.0, 100.0, 520.0, 380.0])
    centre, side = cam.square_box(bbox, scale=1.2)
    s, tx, ty = 0.9, 0.05, -0.1
    t = cam.weak_perspective_to_translation(s, tx, ty, centre, side, K)
    assert np.allclose(cam.translation_to_weak_perspective(t, centre, side, K), [s, tx, ty])
    # a point at the body's depth (Z = 0 in the body frame) projects identically in both models
    X = np.array([0.2, -0.3, 0.0])
    full = cam.project_points(X + t, K)
    crop = cam.normalized_to_crop(s * (X[:2] + [tx, ty]), centre, side)
    assert np.allclose(full, crop, atol=1e-9)
    assert np.allclose(cam.crop_to_normalized(crop, centre, side), s * (X[:2] + [tx, ty]))


def test_keypoint_bbox_ignores_unconfident():
    uv = np.array([[10, 20], [30, 40], [1000, 1000]], dtype=float)
    assert cam.keypoints_bbox(uv, np.array([0.9, 0.8, 0.0])).tolist() == [10, 20, 30, 40]
    assert cam.keypoints_bbox(uv, np.zeros(3)) is None


def test_frame_rotations_are_proper_and_mean_what_they_say():
    for R in (frames.R_OPTICAL_FROM_SMPL, frames.R_CAMBODY_FROM_OPTICAL, frames.R_ZUP_FROM_SMPL):
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    up_smpl, facing_smpl, left_smpl = np.eye(3)[1], np.eye(3)[2], np.eye(3)[0]
    # in the optical frame an upright body has its head towards -y and faces the camera (-z)
    assert np.allclose(frames.R_OPTICAL_FROM_SMPL @ up_smpl, [0, -1, 0])
    assert np.allclose(frames.R_OPTICAL_FROM_SMPL @ facing_smpl, [0, 0, -1])
    # optical z (forward) is body x; optical y (down) is body -z
    assert np.allclose(frames.R_CAMBODY_FROM_OPTICAL @ [0, 0, 1], [1, 0, 0])
    assert np.allclose(frames.R_CAMBODY_FROM_OPTICAL @ [0, 1, 0], [0, 0, -1])
    assert np.allclose(frames.R_ZUP_FROM_SMPL @ up_smpl, [0, 0, 1])
    assert np.allclose(frames.R_ZUP_FROM_SMPL @ facing_smpl, [1, 0, 0])
    assert np.allclose(frames.R_ZUP_FROM_SMPL @ left_smpl, [0, 1, 0])


def test_transform_smpl_root_moves_the_whole_body(random_smpl_npz):
    body = load_body_model(random_smpl_npz, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    betas = torch.randn(3, 10, generator=g, dtype=torch.float64)
    go = axis_angle_to_matrix(torch.randn(3, 3, generator=g, dtype=torch.float64))
    bp = torch.randn(3, 69, generator=g, dtype=torch.float64) * 0.3
    transl = torch.randn(3, 3, generator=g, dtype=torch.float64)
    R = torch.as_tensor(frames.R_OPTICAL_FROM_SMPL) @ axis_angle_to_matrix(torch.tensor([0.1, 0.4, -0.2], dtype=torch.float64))
    t = torch.tensor([0.5, -0.2, 3.0], dtype=torch.float64)
    J = body.joints(betas, go, bp, transl)
    go2, tr2 = frames.transform_smpl_root(R, t, go, transl, body.rest_joints(betas)[:, 0])
    J2 = body.joints(betas, go2, bp, tr2)
    assert torch.allclose(J2, J @ R.T + t, atol=1e-10)
