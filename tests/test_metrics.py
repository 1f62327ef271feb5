"""Tests of hmr_node.core.metrics against hand-computed values and an independent Umeyama."""
from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
import torch

from hmr_node.core import metrics
from hmr_node.core.body.skeleton import LSP14_FROM_SMPL
from hmr_node.core.metrics import (
    LSP14_HIP_INDICES,
    accel_error,
    apply_similarity,
    fit_similarity,
    foot_contacts,
    foot_sliding,
    jitter,
    latency_percentiles,
    lsp14,
    mpjpe,
    mpvpe,
    pa_mpjpe,
    per_joint_errors,
    procrustes_align,
    rigid_align,
    root_trajectory_error,
    w_mpjpe,
    wa_mpjpe,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_rotation(generator: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(generator.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def umeyama_reference(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Independent plain-numpy Umeyama (1991) for one (N, 3) pair: returns aligned src."""
    n = src.shape[0]
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    sigma = dst_c.T @ src_c / n
    u, d, vt = np.linalg.svd(sigma)
    s_mat = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s_mat[2, 2] = -1.0
    rot = u @ s_mat @ vt
    var_src = (src_c ** 2).sum() / n
    scale = np.trace(np.diag(d) @ s_mat) / var_src
    trans = mean_dst - scale * rot @ mean_src
    return (scale * (rot @ src.T)).T + trans


# ----------------------------------------------------------------------------- pose


def test_mpjpe_of_a_known_offset():
    gt = rng().normal(size=(4, 24, 3))
    pred = gt + np.array([0.03, 0.04, 0.0])  # 5 cm everywhere
    np.testing.assert_allclose(mpjpe(pred, gt), np.full(4, 50.0), atol=1e-9)
    np.testing.assert_allclose(per_joint_errors(pred, gt), np.full((4, 24), 50.0), atol=1e-9)
    # root-relative: a global offset disappears
    np.testing.assert_allclose(mpjpe(pred, gt, root_joints=(0,)), np.zeros(4), atol=1e-9)


def test_mpjpe_joint_subset_and_single_sample_returns_numpy_scalar():
    gt = np.zeros((3, 3))
    pred = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.3]])
    value = mpjpe(pred, gt)
    assert isinstance(value, np.floating)
    assert value == pytest.approx(400.0 / 3.0)
    assert mpjpe(pred, gt, joints=[1, 2]) == pytest.approx(200.0)


def test_pa_mpjpe_is_zero_for_a_similar_copy_but_mpjpe_is_not():
    g = rng(1)
    gt = g.normal(size=(24, 3)) * 0.3
    pred = 1.7 * gt @ random_rotation(g).T + np.array([0.5, -1.0, 3.0])
    assert pa_mpjpe(pred, gt) < 1e-8
    assert mpjpe(pred, gt) > 100.0


def test_pa_mpjpe_does_not_undo_a_reflection():
    gt = rng(2).normal(size=(24, 3)) * 0.3
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt) > 10.0


def test_procrustes_matches_independent_umeyama():
    g = rng(3)
    gt = g.normal(size=(6, 17, 3))
    rotations = np.stack([random_rotation(g) for _ in range(6)])
    pred = 0.8 * np.einsum("bij,bnj->bni", rotations, gt) + g.normal(size=(6, 1, 3))
    pred += 0.05 * g.normal(size=pred.shape)
    # sample 0: the best orthogonal map is a reflection → exercises the det correction
    pred[0] = gt[0] * np.array([1.0, 1.0, -1.0]) + 0.02 * g.normal(size=(17, 3))
    ours = procrustes_align(pred, gt)
    reference = np.stack([umeyama_reference(pred[b], gt[b]) for b in range(6)])
    np.testing.assert_allclose(ours, reference, atol=1e-10)
    expected = np.linalg.norm(reference - gt, axis=-1).mean(axis=-1) * 1000.0
    np.testing.assert_allclose(pa_mpjpe(pred, gt), expected, atol=1e-8)


def test_fit_similarity_recovers_a_known_transform():
    g = rng(4)
    src = g.normal(size=(30, 3))
    rot = random_rotation(g)
    dst = 2.5 * src @ rot.T + np.array([1.0, 2.0, 3.0])
    scale, rotation, translation = fit_similarity(src, dst)
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(rotation, rot, atol=1e-10)
    np.testing.assert_allclose(translation, [1.0, 2.0, 3.0], atol=1e-10)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(apply_similarity(src, scale, rotation, translation), dst,
                               atol=1e-10)


def test_rigid_align_keeps_the_scale():
    g = rng(5)
    gt = g.normal(size=(24, 3))
    pred = 2.0 * gt @ random_rotation(g).T + 1.0
    aligned = rigid_align(pred, gt)
    # rigid: pairwise distances of pred are preserved, so it cannot reach gt
    np.testing.assert_allclose(np.linalg.norm(aligned[0] - aligned[1]),
                               np.linalg.norm(pred[0] - pred[1]), rtol=1e-12)
    assert fit_similarity(pred, gt, with_scale=False)[0] == 1.0
    np.testing.assert_allclose(aligned, 2.0 * gt - gt.mean(axis=0), atol=1e-9)


def test_lsp14_selects_the_lsp_joints():
    joints = np.arange(24 * 3, dtype=float).reshape(24, 3)
    out = lsp14(joints)
    assert out.shape == (14, 3)
    np.testing.assert_array_equal(out[:, 0], np.array(LSP14_FROM_SMPL) * 3.0)
    assert LSP14_HIP_INDICES == (2, 3)  # right hip, left hip in the LSP order
    g = rng(6)
    pred, gt = g.normal(size=(2, 24, 3)), g.normal(size=(2, 24, 3))
    np.testing.assert_allclose(pa_mpjpe(pred, gt, joints=LSP14_FROM_SMPL),
                               pa_mpjpe(lsp14(pred), lsp14(gt)), atol=1e-10)
    with pytest.raises(ValueError, match=r"joints24.*\(17, 3\)"):
        lsp14(np.zeros((17, 3)))


def test_mpvpe_with_and_without_root():
    g = rng(7)
    gt = g.normal(size=(3, 100, 3))
    pred = gt + np.array([0.0, 0.01, 0.0])
    np.testing.assert_allclose(mpvpe(pred, gt), np.full(3, 10.0), atol=1e-9)
    roots = gt[:, :1, :].squeeze(1)
    np.testing.assert_allclose(
        mpvpe(pred, gt, pred_root=roots + [0.0, 0.01, 0.0], gt_root=roots), np.zeros(3),
        atol=1e-9)
    with pytest.raises(ValueError, match="together"):
        mpvpe(pred, gt, pred_root=roots)


# ----------------------------------------------------------------------------- motion


def test_accel_error_is_zero_for_a_constant_velocity_difference():
    g = rng(8)
    gt = g.normal(size=(20, 24, 3))
    t = np.arange(20)[:, None, None]
    pred = gt + 0.01 * t * np.array([1.0, -2.0, 0.5]) + 0.3
    error = accel_error(pred, gt)
    assert error.shape == (18,)
    np.testing.assert_allclose(error, 0.0, atol=1e-9)


def test_accel_error_of_a_known_quadratic():
    fps = 30.0
    accel = np.array([0.0, 3.0, 4.0])  # |a| = 5 m/s²
    t = (np.arange(12) / fps)[:, None, None]
    gt = np.zeros((12, 2, 3))
    pred = gt + 0.5 * accel * t ** 2
    np.testing.assert_allclose(accel_error(pred, gt, fps=fps), np.full(10, 5.0), rtol=1e-9)
    # mm/frame²: 5 m/s² · (1/30 s)² · 1000
    np.testing.assert_allclose(accel_error(pred, gt), np.full(10, 5000.0 / 900.0), rtol=1e-9)
    batched = accel_error(np.stack([pred, gt]), np.stack([gt, gt]), fps=fps)
    np.testing.assert_allclose(batched, [np.full(10, 5.0), np.zeros(10)], atol=1e-9)


def test_jitter_of_a_known_cubic():
    fps = 20.0
    t = np.arange(15) / fps
    joints = np.zeros((15, 3, 3))
    joints[..., 0] = (0.5 * t ** 3)[:, None]  # d³x/dt³ = 3 m/s³
    np.testing.assert_allclose(jitter(joints, fps), np.full(12, 3.0), rtol=1e-8)
    joints[..., 0] = (2.0 * t ** 2)[:, None]  # constant acceleration: no jerk
    np.testing.assert_allclose(jitter(joints, fps), np.zeros(12), atol=1e-8)


def walking_feet(fps: float, slide_speed: float = 0.0, frames: int = 40) -> np.ndarray:
    """(T, 24, 3) z-up joints: left foot joints 7, 10 planted (or dragged along x at
    ``slide_speed``) on the ground; right foot joints 8, 11 swinging in the air."""
    t = np.arange(frames) / fps
    joints = np.zeros((frames, 24, 3))
    joints[:, :, 2] = 0.9  # body high above the floor
    joints[:, 7] = np.stack([slide_speed * t, np.full(frames, 0.1), np.full(frames, 0.08)], -1)
    joints[:, 10] = joints[:, 7] + np.array([0.12, 0.0, -0.06])
    # right foot: high, fast and bobbing up and down (never in contact)
    for j, z0 in ((8, 0.3), (11, 0.24)):
        joints[:, j, 0] = 2.0 * t
        joints[:, j, 2] = z0 + 0.2 * np.abs(np.sin(np.pi * t * 2.0)) + 0.3 * t
    return joints


def test_foot_sliding_is_zero_for_a_planted_foot():
    joints = walking_feet(fps=30.0)
    assert foot_sliding(joints, fps=30.0) == pytest.approx(0.0, abs=1e-12)
    contacts = foot_contacts(joints, fps=30.0)
    assert contacts.shape == (39, 4) and contacts.dtype == bool
    assert contacts[:, [0, 2]].all()  # left ankle, left foot planted


def test_foot_sliding_gives_the_drag_speed_in_contact():
    joints = walking_feet(fps=30.0, slide_speed=0.25)
    assert foot_sliding(joints, fps=30.0) == pytest.approx(0.25, rel=1e-9)
    # the same motion in SMPL's y-up frame: (x, y, z)_zup -> (x, z, -y)_yup
    y_up = joints[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    assert foot_sliding(y_up, fps=30.0, up_axis=1) == pytest.approx(0.25, rel=1e-9)
    assert foot_sliding(y_up, fps=30.0, up_axis=(0.0, 1.0, 0.0)) == pytest.approx(0.25)


def test_foot_sliding_is_nan_without_contact():
    joints = walking_feet(fps=30.0)
    joints[:, :, 2] += np.linspace(0.0, 2.0, 40)[:, None]  # everything rises at 1.5 m/s
    assert np.isnan(foot_sliding(joints, fps=30.0))


def test_foot_sliding_thresholds_are_parameters():
    joints = walking_feet(fps=30.0)
    # the swinging foot counts as "in contact" with absurdly loose thresholds
    loose = foot_sliding(joints, fps=30.0, contact_height=10.0, contact_vertical_speed=100.0)
    assert loose == pytest.approx(1.0)  # half the feet still, half at 2 m/s


# ----------------------------------------------------------------------------- trajectory


def moving_person(frames: int = 60, seed: int = 9) -> np.ndarray:
    g = rng(seed)
    body = g.normal(size=(1, 24, 3)) * 0.3
    path = np.cumsum(g.normal(size=(frames, 1, 3)) * 0.02, axis=0)
    return body + path + 0.01 * g.normal(size=(frames, 24, 3))


def test_w_mpjpe_is_invariant_to_a_rigid_transform_of_the_prediction():
    gt = moving_person()
    pred = gt + 0.02 * rng(10).normal(size=gt.shape)
    moved = pred @ rot_z(1.1).T + np.array([5.0, -3.0, 0.2])
    np.testing.assert_allclose(w_mpjpe(moved, gt, window=20), w_mpjpe(pred, gt, window=20),
                               atol=1e-8)
    assert w_mpjpe(moved, gt, window=20).mean() < mpjpe(moved, gt).mean() / 10.0
    assert w_mpjpe(gt @ rot_z(0.3).T + 1.0, gt).max() < 1e-8


def test_w_mpjpe_sees_drift():
    gt = moving_person(frames=50)
    drift = np.maximum(np.arange(50) - 1, 0)[:, None, None] * np.array([0.002, 0.0, 0.0])
    error = w_mpjpe(gt + drift, gt, window=50)
    # frames 0 and 1 are exact, so the alignment is the identity: error = 2 mm per frame
    np.testing.assert_allclose(error, 2.0 * np.maximum(np.arange(50) - 1, 0), atol=1e-8)
    # shorter segments re-align and forget the drift accumulated before them
    assert w_mpjpe(gt + drift, gt, window=10).mean() < error.mean() / 3.0


def test_wa_mpjpe_removes_one_similarity_but_not_drift():
    gt = moving_person()
    pred = 0.9 * gt @ rot_z(-0.7).T + 2.0
    assert wa_mpjpe(pred, gt).max() < 1e-8
    assert w_mpjpe(pred, gt).mean() > 1.0  # W-MPJPE does not fix the scale
    drift = np.arange(60)[:, None, None] * np.array([0.0, 0.003, 0.0])
    drift[30:] *= -1.0  # no single similarity transform fits this
    assert wa_mpjpe(gt + drift, gt).mean() > 10.0
    np.testing.assert_allclose(wa_mpjpe(gt + drift, gt, window=60), wa_mpjpe(gt + drift, gt))
    assert wa_mpjpe(gt + drift, gt, window=30).mean() < wa_mpjpe(gt + drift, gt).mean()


def test_world_metrics_handle_a_short_last_segment():
    gt = moving_person(frames=201)
    pred = gt + 0.01
    for metric in (w_mpjpe, wa_mpjpe):
        out = metric(pred, gt, window=100)
        assert out.shape == (201,)
        assert np.all(np.isfinite(out))


def test_root_trajectory_error_statistics_and_alignment():
    gt = np.zeros((2, 3))
    pred = np.array([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    stats = root_trajectory_error(pred, gt)
    assert set(stats) == {"rmse_m", "mean_m", "median_m", "max_m"}
    assert stats["rmse_m"] == pytest.approx(np.sqrt(12.5))
    assert stats["mean_m"] == pytest.approx(3.5)
    assert stats["max_m"] == pytest.approx(4.0)

    g = rng(11)
    track = np.cumsum(g.normal(size=(80, 3)), axis=0)
    shifted = track @ rot_z(0.5).T + np.array([0.3, 0.4, 0.0])
    assert root_trajectory_error(shifted, track)["rmse_m"] > 0.5
    assert root_trajectory_error(shifted, track, align="rigid")["rmse_m"] < 1e-9
    scaled = 1.3 * shifted
    assert root_trajectory_error(scaled, track, align="rigid")["rmse_m"] > 0.1
    assert root_trajectory_error(scaled, track, align="similarity")["rmse_m"] < 1e-9
    with pytest.raises(ValueError, match="align"):
        root_trajectory_error(scaled, track, align="sim3")


# ----------------------------------------------------------------------------- latency


def test_latency_percentiles():
    stats = latency_percentiles(np.arange(1, 101) / 1000.0)  # 1 ms ... 100 ms
    assert stats == pytest.approx({"p50_ms": 50.5, "p90_ms": 90.1, "p95_ms": 95.05,
                                   "p99_ms": 99.01, "mean_ms": 50.5, "max_ms": 100.0,
                                   "count": 100})
    assert all(type(v) in (float, int) for v in stats.values())
    assert latency_percentiles([0.002], percentiles=(99.9,)) == {
        "p99.9_ms": 2.0, "mean_ms": 2.0, "max_ms": 2.0, "count": 1}
    for bad in ([], [0.1, -0.1], [[0.1]], [float("nan")]):
        with pytest.raises(ValueError, match="latencies_s"):
            latency_percentiles(bad)
    with pytest.raises(ValueError, match="percentiles"):
        latency_percentiles([0.1], percentiles=(50, 101))


# ----------------------------------------------------------------------------- numpy / torch


def _cases():
    g = rng(12)
    seq_gt = moving_person(frames=12)
    seq_pred = seq_gt + 0.03 * g.normal(size=seq_gt.shape)
    joints_gt = g.normal(size=(3, 24, 3))
    joints_pred = joints_gt + 0.05 * g.normal(size=joints_gt.shape)
    return {
        "mpjpe": (lambda p, q: mpjpe(p, q, root_joints=(0,)), joints_pred, joints_gt),
        "pa_mpjpe": (pa_mpjpe, joints_pred, joints_gt),
        "mpvpe": (mpvpe, joints_pred, joints_gt),
        "procrustes_align": (procrustes_align, joints_pred, joints_gt),
        "rigid_align": (rigid_align, joints_pred, joints_gt),
        "accel_error": (lambda p, q: accel_error(p, q, fps=30.0), seq_pred, seq_gt),
        "jitter": (lambda p, q: jitter(p, 30.0), seq_pred, seq_gt),
        "foot_sliding": (lambda p, q: foot_sliding(p, 30.0, contact_height=1.0,
                                                   contact_vertical_speed=10.0),
                         seq_pred, seq_gt),
        "w_mpjpe": (lambda p, q: w_mpjpe(p, q, window=5), seq_pred, seq_gt),
        "wa_mpjpe": (wa_mpjpe, seq_pred, seq_gt),
        "root_trajectory_error": (
            lambda p, q: root_trajectory_error(p[:, 0], q[:, 0], align="similarity")["rmse_m"],
            seq_pred, seq_gt),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_and_torch_agree_and_gradients_flow(name):
    fn, pred, gt = CASES[name]
    expected = fn(pred, gt)
    assert isinstance(expected, (np.ndarray, np.floating))
    assert np.asarray(expected).dtype == np.float64

    pred_t = torch.tensor(pred, requires_grad=True)
    out = fn(pred_t, torch.tensor(gt))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-10)

    out.sum().backward()
    assert pred_t.grad is not None
    assert torch.isfinite(pred_t.grad).all()
    assert pred_t.grad.abs().sum() > 0

    out32 = fn(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32))
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), expected, rtol=1e-3, atol=1e-3)


def test_pa_mpjpe_gradient_is_correct():
    g = rng(13)
    gt = torch.tensor(g.normal(size=(2, 6, 3)))
    pred = torch.tensor(g.normal(size=(2, 6, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: pa_mpjpe(p, gt), (pred,))


def test_mixed_numpy_and_torch_inputs_give_torch():
    gt = np.zeros((5, 3))
    out = mpjpe(torch.ones(5, 3), gt)
    assert isinstance(out, torch.Tensor)
    assert float(out) == pytest.approx(1000.0 * np.sqrt(3.0), rel=1e-6)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("call, pattern", [
    (lambda: mpjpe(np.zeros((5, 24, 2)), np.zeros((5, 24, 2))), r"pred .*\(5, 24, 2\)"),
    (lambda: mpjpe(np.zeros((24, 3)), np.zeros((23, 3))), r"pred and gt .*\(24, 3\).*\(23, 3\)"),
    (lambda: pa_mpjpe(np.zeros(3), np.zeros(3)), r"pred .*\(3,\)"),
    (lambda: mpjpe(np.zeros((24, 3)), np.zeros((24, 3)), joints=[30]), r"joints .*30"),
    (lambda: mpvpe(np.zeros((4, 3)), np.zeros((5, 3))), r"pred_verts and gt_verts"),
    (lambda: accel_error(np.zeros((2, 24, 3)), np.zeros((2, 24, 3))), r"pred .*3 frames.*\(2, 24, 3\)"),
    (lambda: accel_error(np.zeros((24, 3)), np.zeros((24, 3))), r"pred .*\(24, 3\)"),
    (lambda: accel_error(np.zeros((5, 2, 3)), np.zeros((5, 2, 3)), fps=0), r"fps"),
    (lambda: jitter(np.zeros((3, 24, 3)), 30.0), r"joints .*4 frames"),
    (lambda: foot_sliding(np.zeros((5, 4, 3)), 30.0), r"foot_idx .*7"),
    (lambda: foot_sliding(np.zeros((5, 24, 3)), 30.0, up_axis=3), r"up_axis"),
    (lambda: foot_sliding(np.zeros((5, 24, 3)), 30.0, contact_height=-1), r"contact_height"),
    (lambda: w_mpjpe(np.zeros((5, 24, 3)), np.zeros((5, 24, 3)), window=0), r"window"),
    (lambda: wa_mpjpe(np.zeros((24, 3)), np.zeros((24, 3))), r"pred .*\(24, 3\)"),
    (lambda: root_trajectory_error(np.zeros((5, 2)), np.zeros((5, 2))), r"pred_root .*\(5, 2\)"),
    (lambda: procrustes_align(np.zeros((0, 3)), np.zeros((0, 3))), r"pred .*\(0, 3\)"),
    (lambda: apply_similarity(np.zeros((4, 3)), 1.0, np.eye(3), np.zeros(2)), r"translation"),
])
def test_bad_input_raises_value_error_naming_it(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_non_numeric_input_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="gt"):
        mpjpe(np.zeros((2, 3)), [["a", "b", "c"], ["d", "e", "f"]])


def test_core_metrics_import_only_numpy_torch_and_the_package():
    """core must not import rclpy, runtimes or matplotlib (checked statically: fast)."""
    allowed = {"__future__", "collections", "math", "typing", "numpy", "torch", "hmr_node"}
    package = pathlib.Path(metrics.__file__).parent
    files = sorted(package.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]} if node.level == 0 else set()
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
