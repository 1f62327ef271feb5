"""The pieces of the scenario simulator against analytic cases: renderer, occlusion, odometry,
camera rig and people placement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.scenario.camera_rig import CameraRigConfig, base_from_optical, make_camera
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.core.scenario.occlusion import (OcclusionConfig, capsules_from_rest,
                                              occluded_keypoints, ray_segment_distance)
from hmr_node.core.scenario.odometry import (OdometryConfig, integrate_unicycle,
                                             odometry_covariances, simulate_odometry,
                                             simulate_true_path)
from hmr_node.core.scenario.people import PeoplePlacementConfig, place_people
from hmr_node.core.scenario.render import (BackgroundRenderer, RenderConfig, body_part_albedo,
                                           orient_faces_outward, rasterize, render_meshes)

W, H = 320, 240
K = np.array([[250.0, 0, 160.0], [0, 250.0, 120.0], [0, 0, 1]])


def uv_sphere(radius: float, centre, n_lat: int = 48, n_lon: int = 96):
    """Closed UV sphere with outward (right-handed) faces."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack([np.sin(lat)[:, None] * np.cos(lon), np.cos(lat)[:, None] + 0 * lon,
                     np.sin(lat)[:, None] * np.sin(lon)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radius + np.asarray(centre)
    faces = []
    idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append((0, idx(0, j + 1), idx(0, j)))
        faces.append((len(v) - 1, idx(n_lat - 2, j), idx(n_lat - 2, j + 1)))
    for i in range(n_lat - 2):
        for j in range(n_lon):
            faces.append((idx(i, j), idx(i, j + 1), idx(i + 1, j)))
            faces.append((idx(i, j + 1), idx(i + 1, j + 1), idx(i + 1, j)))
    return v, orient_faces_outward(v, np.array(faces))


def test_sphere_silhouette_has_no_holes_and_the_analytic_radius():
    r, d = 0.5, 3.0
    v, f = uv_sphere(r, (0, 0, d))
    frag = rasterize(v, f, K, W, H)
    covered = np.zeros(W * H, bool)
    covered[frag.pixel] = True
    u, w = np.meshgrid(np.arange(W), np.arange(H))
    rho = np.hypot(u - 160.0, w - 120.0).reshape(-1)
    R = 250.0 * r / math.sqrt(d * d - r * r)          # image radius of a sphere on the axis
    assert covered[rho < R - 1.0].all()               # no holes inside
    assert not covered[rho > R + 0.5].any()
    # visible depth = ray/sphere intersection (front surface), within the tessellation error
    ray = np.stack([(u.reshape(-1) - 160) / 250.0, (w.reshape(-1) - 120) / 250.0,
                    np.ones(W * H)], -1)[frag.pixel]
    a = np.sum(ray ** 2, -1)
    b = -2 * d * ray[:, 2]
    t = (-b - np.sqrt(np.maximum(b * b - 4 * a * (d * d - r * r), 0))) / (2 * a)
    inner = rho[frag.pixel] < R - 2
    np.testing.assert_allclose(frag.depth[inner], t[inner] * ray[inner, 2], atol=2e-3)
    np.testing.assert_allclose(frag.weights.sum(1), 1.0, atol=1e-9)


def test_zbuffer_keeps_the_nearer_mesh_and_back_faces_are_culled():
    near_v, near_f = uv_sphere(0.4, (-0.2, 0, 3.0), 16, 32)
    far_v, far_f = uv_sphere(0.6, (0.3, 0, 5.0), 16, 32)
    bg = np.zeros((H, W, 3), np.uint8)
    red = np.tile([1.0, 0.0, 0.0], (len(near_v), 1))
    blue = np.tile([0.0, 0.0, 1.0], (len(far_v), 1))
    cfg = RenderConfig(ambient=1.0, key=0.0, fill=0.0)
    img = render_meshes(bg, [(near_v, near_f, red), (far_v, far_f, blue)], K, np.eye(3), cfg)
    # pixel where both project: the nearer (red) sphere wins, in either drawing order
    u = int(round(160 + 250 * (-0.0) / 3.0))
    assert tuple(img[120, u]) == (255, 0, 0)
    img2 = render_meshes(bg, [(far_v, far_f, blue), (near_v, near_f, red)], K, np.eye(3), cfg)
    np.testing.assert_array_equal(img, img2)
    assert tuple(img[120, int(160 + 250 * 0.75 / 5.0)]) == (0, 0, 255)   # only the far one
    # inside-out faces are fixed by orient_faces_outward, and back faces never win
    flipped = near_f[:, ::-1]
    assert np.array_equal(orient_faces_outward(near_v, flipped), near_f)
    assert rasterize(near_v, flipped, K, W, H).pixel.size > 0  # the far inner side is drawn
    np.testing.assert_allclose(rasterize(near_v, flipped, K, W, H).depth.min(), 3.0, atol=0.45)
    assert rasterize(near_v, near_f, K, W, H).depth.max() < 3.0 + 1e-9   # front half only


def test_background_horizon_and_floor_checker_are_where_geometry_says():
    cfg = RenderConfig(fog_distance=1e9)
    bg = BackgroundRenderer(K, W, H, cfg)
    R = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])   # optical axis along world +x, level
    img = bg.render(R, np.array([0.0, 0.0, 1.0]))
    assert tuple(img[100, 50]) != tuple(cfg.floor_light) and tuple(img[100, 50]) != tuple(cfg.floor_dark)
    # pixel (u, v) below the horizon hits the floor at distance h * f / (v - cy)
    for u, v in ((160, 200), (40, 230), (300, 150)):
        lam = 1.0 / ((v - 120) / 250.0)
        x, y = lam, -lam * (u - 160) / 250.0
        dark = (math.floor(x / 0.5) + math.floor(y / 0.5)) % 2 == 1
        assert tuple(img[v, u]) == (cfg.floor_dark if dark else cfg.floor_light)
    # a pure yaw of the robot reuses the cache and moves the checker consistently
    c, s = math.cos(0.3), math.sin(0.3)
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    img_yaw = bg.render(Rz @ R, np.array([0.2, 0.1, 1.0]))
    fresh = BackgroundRenderer(K, W, H, cfg).render(Rz @ R, np.array([0.2, 0.1, 1.0]))
    assert np.mean(np.any(img_yaw != fresh, axis=-1)) < 1e-3   # only float-rounding ties


def test_body_part_albedo_by_dominant_joint():
    w = np.zeros((4, 24))
    w[0, 15] = w[1, 3] = w[2, 4] = w[3, 10] = 1.0   # head, spine, knee, foot
    a = body_part_albedo(w, shirt=(255, 0, 0), trousers=(0, 255, 0), skin=(0, 0, 255),
                         shoes=(10, 10, 10))
    np.testing.assert_allclose(a * 255, [[0, 0, 255], [255, 0, 0], [0, 255, 0], [10, 10, 10]])


# ---------------------------------------------------------------------------- occlusion
def test_ray_segment_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(200, 3)) + [0, 0, 4]
    a = rng.normal(size=(200, 3)) + [0, 0, 3]
    b = a + rng.normal(scale=0.5, size=(200, 3))
    d, s = ray_segment_distance(p, a, b)
    ss, uu = np.meshgrid(np.linspace(0, 1, 801), np.linspace(0, 1, 801), indexing="ij")
    for i in range(0, 200, 20):
        pts = ss[..., None] * p[i] - (a[i] + uu[..., None] * (b[i] - a[i]))
        brute = np.linalg.norm(pts, axis=-1)
        assert d[i] <= brute.min() + 1e-9
        assert d[i] == pytest.approx(brute.min(), abs=5e-3)


def test_keypoints_behind_a_closer_person_are_occluded():
    # person 0: one vertical capsule at x = 0, z = 3 (radius 0.2); person 1 keypoints at z = 6
    cap_a = np.array([[[0.0, -1.0, 3.0]], [[5.0, -1.0, 9.0]]])
    cap_b = np.array([[[0.0, 1.0, 3.0]], [[5.0, 1.0, 9.0]]])
    rad = np.array([[0.2], [0.2]])
    kp = np.zeros((2, 3, 3))
    kp[0] = [[0.0, 0.0, 2.9], [0.5, 0.0, 3.0], [0.0, 0.5, 2.8]]        # person 0's own points
    kp[1] = [[0.1, 0.0, 6.0], [1.0, 0.0, 6.0], [0.2, 0.5, 6.0]]        # line of sight at z=3: x=.05, .5, .1
    act = np.array([True, True])
    occ = occluded_keypoints(kp, act, cap_a, cap_b, rad, OcclusionConfig())
    np.testing.assert_array_equal(occ, [[False] * 3, [True, False, True]])
    # the multiplier scales the capsules: 0.2 * 0.4 = 0.08 covers x=.05 but not x=.1
    occ = occluded_keypoints(kp, act, cap_a, cap_b, rad, OcclusionConfig(scale=0.4))
    np.testing.assert_array_equal(occ[1], [True, False, False])
    assert not occluded_keypoints(kp, act, cap_a, cap_b, rad, OcclusionConfig(scale=0.0)).any()
    assert not occluded_keypoints(kp, np.array([False, True]), cap_a, cap_b, rad,
                                  OcclusionConfig()).any()


def test_capsule_radius_of_a_cylinder_limb():
    # vertices on a cylinder of radius 0.1 around the left thigh (joint 1 -> 4) owned by joint 1
    h = np.linspace(0, -0.4, 20)
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    verts = np.stack([0.1 * np.cos(ang)[None] + 0 * h[:, None], h[:, None] + 0 * ang[None],
                      0.1 * np.sin(ang)[None] + 0 * h[:, None]], -1).reshape(-1, 3)
    joints = np.zeros((24, 3))
    joints[4] = [0, -0.4, 0]
    joints[7] = [0, -0.8, 0]
    w = np.zeros((len(verts), 24))
    w[:, 1] = 1.0
    caps = capsules_from_rest(verts, joints, w)
    k = np.flatnonzero((caps.start == 1) & (caps.end == 4))
    assert caps.radius[k[0]] == pytest.approx(0.1, abs=1e-9)


# ---------------------------------------------------------------------------- odometry
def test_unicycle_integration_is_exact_on_a_circle():
    v, w, dt, n = 0.8, 0.4, 0.1, 50
    pose = integrate_unicycle(np.full(n, v), np.full(n, w), dt, np.zeros(3))
    t = np.arange(n) * dt
    np.testing.assert_allclose(pose[:, 0], v / w * np.sin(w * t), atol=1e-12)
    np.testing.assert_allclose(pose[:, 1], v / w * (1 - np.cos(w * t)), atol=1e-12)
    np.testing.assert_allclose(pose[:, 2], w * t, atol=1e-12)
    straight = integrate_unicycle(np.full(n, v), np.zeros(n), dt, np.array([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(straight[-1, :2], [1 + v * (n - 1) * dt * math.cos(0.5),
                                                  2 + v * (n - 1) * dt * math.sin(0.5)])


def test_odometry_errors_scale_linearly_and_vanish_at_zero():
    cfg = OdometryConfig()
    path = simulate_true_path(200, 15.0, np.random.default_rng(0), cfg)
    assert np.all((path.speed >= 0) & (path.speed <= cfg.max_speed))
    runs = {s: simulate_odometry(path, 15.0, np.random.default_rng(1),
                                 OdometryConfig(scale=s)) for s in (0.0, 1.0, 2.0)}
    np.testing.assert_array_equal(runs[0.0].pose, path.pose)
    np.testing.assert_allclose(runs[2.0].speed - path.speed, 2 * (runs[1.0].speed - path.speed))
    np.testing.assert_allclose(runs[2.0].yaw_rate - path.yaw_rate,
                               2 * (runs[1.0].yaw_rate - path.yaw_rate))
    assert np.linalg.norm(runs[1.0].pose[-1, :2] - path.pose[-1, :2]) > 1e-3
    pose_cov, twist_cov = odometry_covariances(runs[1.0], cfg)
    assert np.all(np.diff(pose_cov[:, 0]) >= 0) and pose_cov[-1, 35] > pose_cov[0, 35]


def test_heading_rate_bias_statistics_match_the_config():
    cfg = OdometryConfig(scale_error_std=0.0, speed_noise_std=0.0, yaw_rate_noise_std=0.0)
    path = simulate_true_path(5, 10.0, np.random.default_rng(0), cfg)
    bias = [simulate_odometry(path, 10.0, np.random.default_rng(s), cfg).yaw_rate[0]
            - path.yaw_rate[0] for s in range(3000)]
    assert np.std(bias) == pytest.approx(cfg.yaw_rate_bias_std, rel=0.05)


# ---------------------------------------------------------------------------- camera, people
def test_camera_rig_intrinsics_and_mount():
    cfg = CameraRigConfig()
    cam = make_camera(cfg)
    assert 2 * math.degrees(math.atan(cfg.width / 2 / cam.K[0, 0])) == pytest.approx(65.0)
    R, t = base_from_optical(cfg)
    p = math.radians(cfg.pitch_deg)
    np.testing.assert_allclose(R[:, 2], [math.cos(p), 0, -math.sin(p)], atol=1e-12)  # forward, down
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-12)                      # x = right
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(t, [0.2, 0.0, 1.35])


def test_people_walk_across_a_static_camera_within_the_distance_band():
    T, fps = 120, 10.0
    cam = PinholeCamera.from_intrinsics(300, 300, 320, 240, 640, 480)
    R = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])     # looking along world +x
    cam_R = np.repeat(R[None], T, 0)
    cam_t = np.tile([0.0, 0.0, 1.3], (T, 1))
    L = (200, 60)                                         # a long and a short straight walk
    pelvis = [np.stack([np.zeros(n), np.full(n, 0.9), 1.3 * np.arange(n) / fps], -1) for n in L]
    orient = [np.zeros((n, 3)) for n in L]
    cfg = PeoplePlacementConfig()
    out = place_people(pelvis, orient, fps, cam_R, cam_t, cam, np.random.default_rng(3), cfg)
    for pl, pel, n in zip(out, pelvis, L):
        assert pl.violation == 0.0
        active = pl.active(T, n)
        k = np.flatnonzero(active)
        world = (pel[k + pl.clip_offset] @ pl.rotation().T) + pl.translation
        assert np.allclose(world[:, 2], 0.9)                # the clip's floor is the world floor
        p_cam = (world - cam_t[k]) @ R
        uv = cam.project(p_cam)
        in_view = (p_cam[:, 2] > 0.3) & cam.in_image(uv)
        d = np.linalg.norm(world[:, :2], axis=1)
        assert in_view.any() and d.min() >= cfg.robot_clearance
        assert np.all((d[in_view] >= 1.5) & (d[in_view] <= 8.0))
        # a clip that starts or ends inside the recording does so out of view
        assert k[0] == 0 or not in_view[0]
        assert k[-1] == T - 1 or not in_view[-1]
    assert 0 < out[1].active(T, L[1]).sum() <= L[1] < T


@pytest.mark.parametrize("kw, field", [
    (dict(odom_frame="base_link"), "odom_frame"), (dict(camera_frame="/cam"), "camera_frame"),
    (dict(motion="walk"), "motion"), (dict(people=-1), "people"), (dict(split="test"), "split"),
    (dict(occlusion=float("inf")), "occlusion"), (dict(seed=1.5), "seed")])
def test_scenario_config_names_the_bad_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ScenarioConfig(**kw)


def test_looping_a_short_walk_continues_it_without_jumps():
    from hmr_node.core.data.motion import MotionClip
    from hmr_node.core.scenario.looping import heading_angle, loop_clip
    from hmr_node.core.geometry.rotations import axis_angle_to_matrix
    import torch

    fps, T = 15.0, 40
    t = np.arange(T) / fps
    w = 0.3                                               # walking on a circle (rad/s)
    ph = 2 * np.pi * 0.9 * t
    pose = np.zeros((T, 23, 3))
    pose[:, 0, 0], pose[:, 1, 0] = -0.45 * np.sin(ph), 0.45 * np.sin(ph)
    yaw = w * t
    go = np.stack([np.zeros(T), yaw, np.zeros(T)], -1)    # rotation about SMPL's y
    r = 1.2 / w
    pelvis_rest = np.array([0.0, 0.1, 0.05])
    pelvis = np.stack([r * (1 - np.cos(yaw)), 0.95 + 0 * t, r * np.sin(yaw)], -1)
    clip = MotionClip("test/circle", fps, go, pose, pelvis - pelvis_rest)
    looped, i, j = loop_clip(clip, 200, pelvis_rest)
    assert looped.num_frames == 200 and (j - i) >= 0.8 * fps
    np.testing.assert_allclose(looped.body_pose[:j], pose[:j], atol=1e-9)
    p = looped.transl + pelvis_rest
    step = np.linalg.norm(np.diff(p, axis=0), axis=1)
    np.testing.assert_allclose(step, 1.2 / fps, rtol=0.02)   # constant speed, no jumps
    np.testing.assert_allclose(p[:, 1], 0.95, atol=1e-9)     # on the same floor
    R = axis_angle_to_matrix(torch.as_tensor(looped.global_orient)).numpy()
    dyaw = np.diff(np.unwrap(heading_angle(R)))
    np.testing.assert_allclose(dyaw, w / fps, atol=1e-3)    # keeps turning at the same rate
    assert loop_clip(clip, 30, pelvis_rest)[0] is clip      # long enough: unchanged
