import numpy as np
import torch

from hmr_node.core.body import load_body_model
from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.frames import R_ZUP_FROM_SMPL
from hmr_node.core.scenario.keypoint_noise import KeypointNoiseConfig
from hmr_node.core.scenario.multiview import MultiViewConfig, look_at_optical, simulate_multiview


def test_look_at_is_a_rotation_pointing_at_the_target():
    eye, target = np.array([1.0, 2.0, 1.35]), np.array([4.0, -1.0, 0.9])
    R = look_at_optical(eye, target)
    assert np.allclose(R.T @ R, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    d = (target - eye) / np.linalg.norm(target - eye)
    assert np.allclose(R[:, 2], d)          # optical z looks at the target
    assert abs(R[2, 0]) < 1e-12 and R[2, 1] < 0  # no roll: image x is horizontal, image y points down


def test_views_see_the_same_body_consistently():
    body = load_body_model(dtype=torch.float64)
    cam = PinholeCamera.from_intrinsics(500, 500, 320, 240, 640, 480)
    B = 3
    go = np.stack([R_ZUP_FROM_SMPL] * B)
    bp = np.tile(np.eye(3), (B, 23, 1, 1))
    tr = np.array([[3.0, 1.0, 0.95], [0.0, -2.0, 0.95], [5.0, 5.0, 0.95]])
    s = simulate_multiview(body, go, bp, tr, np.zeros((B, 10)), cam, np.random.default_rng(0),
                           MultiViewConfig(num_views=4, noise=KeypointNoiseConfig(scale=0.0)))
    assert s.uv.shape == (4, B, 17, 2) and s.global_orient.shape == (4, B, 3, 3)
    # with noise off, detections are the exact projections of the view's ground truth
    with torch.no_grad():
        for n in range(4):
            kp = body.keypoints(torch.zeros(B, 10, dtype=torch.float64), torch.as_tensor(s.global_orient[n]),
                                torch.as_tensor(bp), torch.as_tensor(s.transl[n])).numpy()
            ok = s.conf[n] > 0
            assert ok.mean() > 0.9
            assert np.allclose(cam.project(kp)[ok], s.uv[n][ok], atol=1e-6)
            # every camera looks at the pelvis: it projects near the image centre, 2.5-7 m away
            pelvis = body.joints(torch.zeros(B, 10, dtype=torch.float64), torch.as_tensor(s.global_orient[n]),
                                 torch.as_tensor(bp), torch.as_tensor(s.transl[n]))[:, 0].numpy()
            assert np.allclose(cam.project(pelvis), [320, 240], atol=1e-6)
            assert np.all((np.linalg.norm(pelvis, axis=1) > 2.4) & (np.linalg.norm(pelvis, axis=1) < 7.1))
