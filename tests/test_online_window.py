"""Online sliding-window refinement: every frame once, in order, within the documented delay."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_random_smpl_arrays
from hmr_node.core.body import load_body_model
from hmr_node.core.geometry.rotations import axis_angle_to_matrix, axis_angle_to_rot6d
from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
from hmr_node.core.scorehmr.denoiser import DenoiserConfig, PoseDenoiser
from hmr_node.core.scorehmr.online import OnlineWindowRefiner
from hmr_node.core.scorehmr.refiner import ScoreHmrConfig, ScoreHmrRefiner


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("body") / "random_smpl.npz"
    np.savez(path, **make_random_smpl_arrays(seed=6))
    return load_body_model(path)


@pytest.fixture(scope="module")
def denoiser():
    return PoseDenoiser(DenoiserConfig(cond_dim=8, hidden_dim=32, time_embed_dim=16))


def track(body, T, seed=0, noise=0.05):
    """A smooth motion 4 m in front of the camera: per-frame noisy regressions + exact keypoints."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)[:, None, None] / 30.0
    aa = 0.3 * torch.sin(2 * np.pi * 0.7 * t + torch.arange(72).reshape(1, 24, 3) * 0.2)
    aa[:, 0] += torch.tensor([np.pi, 0.0, 0.0])
    betas = 0.3 * torch.randn(1, 10, generator=g).expand(T, 10)
    transl = torch.tensor([0.0, 0.0, 4.0]).expand(T, 3)
    R = axis_angle_to_matrix(aa)
    kp = body.keypoints(betas, R[:, 0], R[:, 1:], transl)
    uv = kp[..., :2] / kp[..., 2:] * 500.0 + torch.tensor([320.0, 240.0])
    K = torch.tensor([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]).expand(T, 3, 3)
    noisy = axis_angle_to_rot6d(aa + noise * torch.randn(aa.shape, generator=g)).reshape(T, 144)
    frames = []
    for i in range(T):
        reg = RegressorOutput(noisy[i:i + 1], betas[i:i + 1].clone(), transl[i:i + 1] + 0.05, torch.randn(1, 8, generator=g))
        obs = KeypointObservation(uv[i:i + 1], torch.ones(1, 17), K[i:i + 1].clone(), torch.tensor([[640.0, 480.0]]))
        frames.append((reg, obs, i / 30.0))
    return frames, axis_angle_to_rot6d(aa).reshape(T, 144)


@pytest.mark.parametrize("W,S,L", [(16, 8, 2), (6, 3, 1), (5, 5, 0), (1, 1, 0), (8, 2, 3)])
def test_every_frame_once_in_order_within_the_delay(body, denoiser, W, S, L):
    cfg = ScoreHmrConfig(num_rounds=1, num_steps=2, window=W, stride=S, lookahead=L)
    online = OnlineWindowRefiner(ScoreHmrRefiner(denoiser, body, cfg))
    frames, _ = track(body, 23)
    emitted = []
    for i, (reg, obs, stamp) in enumerate(frames):
        out = online.push(reg, obs, stamp)
        for e in out:
            assert e.delay_frames == i - e.index
            lo, hi = cfg.latency_frames
            assert lo <= e.delay_frames <= hi
        emitted += out
        assert online.num_pending <= S + L - 1
    tail = online.flush()
    assert all(e.delay_frames <= cfg.latency_frames[1] for e in tail)
    emitted += tail
    assert [e.index for e in emitted] == list(range(23))
    assert [e.stamp for e in emitted] == [f[2] for f in frames]
    assert all(e.refined and torch.isfinite(e.pose6d).all() for e in emitted)
    assert online.flush() == []


def test_first_window_matches_a_direct_window_refinement(body, denoiser):
    cfg = ScoreHmrConfig(num_rounds=2, num_steps=3, window=10, stride=4, lookahead=2)
    ref = ScoreHmrRefiner(denoiser, body, cfg)
    online = OnlineWindowRefiner(ref)
    frames, _ = track(body, 6)
    out = []
    for reg, obs, stamp in frames:
        out += online.push(reg, obs, stamp)
    assert [e.index for e in out] == [0, 1, 2, 3]
    cat = lambda objs, cls: cls(*(torch.cat([getattr(o, k) for o in objs]) for k in cls.__dataclass_fields__))  # noqa: E731
    direct = ref.refine_window(cat([f[0] for f in frames], RegressorOutput), cat([f[1] for f in frames], KeypointObservation))
    for e in out:
        assert torch.allclose(e.pose6d, direct.pose6d[e.index], atol=1e-5)
        assert torch.allclose(e.transl, direct.transl[e.index], atol=1e-5)


def test_gap_flushes_the_segment_and_restarts(body, denoiser):
    cfg = ScoreHmrConfig(num_rounds=1, num_steps=2, window=8, stride=4, lookahead=2, max_gap_s=0.2)
    online = OnlineWindowRefiner(ScoreHmrRefiner(denoiser, body, cfg))
    frames, _ = track(body, 10)
    stamps = [0.0, 0.033, 0.066, 0.1, 1.0, 1.033, 1.066, 1.1, 1.133, 1.166]  # gap after frame 3
    got = []
    for (reg, obs, _), s in zip(frames, stamps):
        out = online.push(reg, obs, s)
        if s == 1.0:  # the gap flushed frames 0..3 (pending) when frame 4 arrived
            assert [e.index for e in out] == [0, 1, 2, 3]
            assert online._context == []
        got += out
    got += online.flush()
    assert [e.index for e in got] == list(range(10))
    # a stamp going backwards also restarts instead of failing
    out = online.push(frames[0][0], frames[0][1], 0.5)
    assert out == [] and online.num_pending == 1


def test_frames_without_observation_and_without_keypoints(body, denoiser):
    cfg = ScoreHmrConfig(num_rounds=1, num_steps=2, window=6, stride=3, lookahead=1)
    online = OnlineWindowRefiner(ScoreHmrRefiner(denoiser, body, cfg))
    frames, _ = track(body, 8)
    got = []
    for i, (reg, obs, stamp) in enumerate(frames):
        got += online.push(reg, None if i == 2 else obs, stamp)
    got += online.flush()
    assert [e.index for e in got] == list(range(8))
    assert got[2].refined and got[2].reason == "keypoints ignored: no observation"
    assert all(e.reason == "" for e in got if e.index != 2)
    with pytest.raises(ValueError, match="reg"):
        online.push(RegressorOutput(torch.zeros(2, 144), torch.zeros(2, 10), torch.zeros(2, 3), torch.zeros(2, 8)),
                    None, 10.0)


def test_online_video_reduces_jitter(body, denoiser):
    cfg = ScoreHmrConfig(num_rounds=2, num_steps=5, window=12, stride=4, lookahead=2, rho_temporal=100.0,
                         video_use_keypoints=False, stop_threshold=0.0)
    online = OnlineWindowRefiner(ScoreHmrRefiner(denoiser, body, cfg))
    frames, gt = track(body, 40, noise=0.05)
    got = []
    for reg, obs, stamp in frames:
        got += online.push(reg, obs, stamp)
    got += online.flush()
    out = torch.stack([e.pose6d for e in got])
    inp = torch.cat([f[0].pose6d for f in frames])
    acc = lambda x: (x[2:] - 2 * x[1:-1] + x[:-2]).norm(dim=-1).mean()  # noqa: E731
    assert acc(out) < 0.5 * acc(inp)
    assert (out - gt).norm(dim=-1).mean() < (inp - gt).norm(dim=-1).mean()
