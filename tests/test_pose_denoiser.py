"""The pose denoiser eps_phi(x_t, t, c): shapes, checkpoints, ONNX parity, and training (Eq. 11)."""
from __future__ import annotations

import warnings

import pytest
import torch

from hmr_node.core.diffusion import DdimScheduler
from hmr_node.core.geometry.rotations import axis_angle_to_rot6d
from hmr_node.core.scorehmr.denoiser import (DenoiserConfig, PoseDenoiser, load_denoiser, save_denoiser,
                                             sinusoidal_embedding)
from hmr_node.core.scorehmr.denoiser_training import (DenoiserTrainingConfig, denoiser_validation_loss,
                                                      train_denoiser)

SMALL = DenoiserConfig(cond_dim=8, hidden_dim=64, time_embed_dim=32)


def _randomised(config=SMALL, seed=0):
    torch.manual_seed(seed)
    m = PoseDenoiser(config)
    with torch.no_grad():  # the out-projection is zero-initialised; give it weights to test with
        m.out_proj.weight.normal_(0, 0.05)
        m.out_proj.bias.normal_(0, 0.05)
    return m.eval()


def test_untrained_denoiser_predicts_zero_and_checks_inputs():
    m = PoseDenoiser(SMALL)
    x, t, c = torch.randn(3, 144), torch.tensor([0, 10, 999]), torch.randn(3, 8)
    assert torch.equal(m(x, t, c), torch.zeros(3, 144))
    m.check_inputs(x, t, c)
    with pytest.raises(ValueError, match="c:"):
        m.check_inputs(x, t, torch.randn(3, 7))
    with pytest.raises(ValueError, match="x_t:"):
        m.check_inputs(torch.randn(3, 143), t, c)
    with pytest.raises(ValueError, match="time_embed_dim"):
        DenoiserConfig(time_embed_dim=33)


def test_denoiser_depends_on_t_and_c_and_is_batch_independent():
    m = _randomised()
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(4, 144, generator=g), torch.randn(4, 8, generator=g)
    t = torch.full((4,), 20)
    e = m(x, t, c)
    assert not torch.allclose(e, m(x, torch.full((4,), 500), c))
    assert not torch.allclose(e, m(x, t, c + 1))
    # row i does not depend on other rows; int and float timesteps agree
    assert torch.allclose(m(x[2:3], t[2:3], c[2:3]), e[2:3], atol=1e-6)
    assert torch.allclose(m(x, t.float(), c), e)
    # sinusoidal embedding: psi(0) = [1..1, 0..0]
    emb = sinusoidal_embedding(torch.tensor([0]), 8, 10000.0)
    assert torch.equal(emb, torch.tensor([[1.0] * 4 + [0.0] * 4]))


def test_cached_time_conditioning_equals_forward():
    from hmr_node.core.scorehmr.refiner import module_eps_fn
    m = _randomised()
    eps_fn = module_eps_fn(m)
    x, c = torch.randn(6, 144), torch.randn(6, 8)
    for t in (0, 37, 37, 999):  # the second 37 comes from the cache
        tt = torch.full((6,), t)
        with torch.no_grad():
            assert torch.allclose(eps_fn(x, tt, c), m(x, tt, c), atol=1e-6)
    mixed = torch.tensor([1, 2, 3, 4, 5, 6])  # not one timestep: plain forward
    with torch.no_grad():
        assert torch.allclose(eps_fn(x, mixed, c), m(x, mixed, c), atol=1e-6)


def test_checkpoint_round_trip(tmp_path):
    m = _randomised()
    path = save_denoiser(tmp_path / "sub" / "d.pt", m, metadata={"steps": 12, "data": "toy"})
    loaded = load_denoiser(path)
    assert loaded.config == m.config and loaded.metadata == {"steps": 12, "data": "toy"}
    x, t, c = torch.randn(5, 144), torch.randint(0, 1000, (5,)), torch.randn(5, 8)
    assert torch.equal(loaded(x, t, c), m(x, t, c))
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="format"):
        load_denoiser(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="path"):
        load_denoiser(tmp_path / "missing.pt")



def _export_onnx(model, inputs, path):
    """Export the denoiser with a dynamic batch axis (legacy exporter, opset 17); returns path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), input_names=["x_t", "t", "c"], output_names=["eps"],
                          dynamic_axes={k: {0: "B"} for k in ("x_t", "t", "c", "eps")}, opset_version=17,
                          dynamo=False)
    return path

def test_onnx_export_dynamic_batch_parity(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX parity not checked")
    m = _randomised(DenoiserConfig(cond_dim=16, hidden_dim=96, time_embed_dim=32))
    x, t, c = torch.randn(4, 144), torch.randint(0, 1000, (4,)), torch.randn(4, 16)
    path = _export_onnx(m, (x, t, c), tmp_path / "denoiser.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for B in (1, 7):  # a batch size other than the export's
        x, t, c = torch.randn(B, 144), torch.randint(0, 1000, (B,)), torch.randn(B, 16)
        out = sess.run(None, {"x_t": x.numpy(), "t": t.numpy(), "c": c.numpy()})[0]
        with torch.no_grad():
            ref = m(x, t, c).numpy()
        assert abs(out - ref).max() < 1e-5


def _toy_poses(n, seed=0):
    """Poses from 4 modes (c = one-hot mode): 6D of mode + 0.1 rad axis-angle noise."""
    g = torch.Generator().manual_seed(seed)
    modes = 0.5 * torch.randn(4, 24, 3, generator=torch.Generator().manual_seed(123))
    m = torch.randint(0, 4, (n,), generator=g)
    aa = modes[m] + 0.1 * torch.randn(n, 24, 3, generator=g)
    return axis_angle_to_rot6d(aa).reshape(n, 144), torch.nn.functional.one_hot(m, 4).float(), modes


TOY = DenoiserTrainingConfig(model=DenoiserConfig(cond_dim=4, hidden_dim=128, time_embed_dim=32), num_steps=250,
                             batch_size=128, lr=2e-3, warmup_steps=20, val_every=125, seed=7)


@pytest.fixture(scope="module")
def toy_model():
    torch.set_num_threads(1)
    x0, c, modes = _toy_poses(1500)
    model, hist = train_denoiser(x0, c, TOY, progress=False)
    return model, hist, modes


def test_training_reduces_the_simple_loss_and_uses_the_condition(toy_model):
    model, hist, modes = toy_model
    assert hist["step"] == [125, 250] and len(hist["val_loss"]) == 2
    x0, c, _ = _toy_poses(400, seed=99)  # fresh samples
    untrained = PoseDenoiser(TOY.model)
    base = denoiser_validation_loss(untrained, x0, c)[0]
    trained = denoiser_validation_loss(model, x0, c)[0]
    assert base == pytest.approx(1.0, abs=0.05)  # eps = 0 predicts E|eps|^2 = 1 per dimension
    assert trained < 0.5 * base
    assert set(hist["val_loss_by_t"]) == {"1-50", "51-200", "201-1000"}
    # the condition carries the mode: x0_hat with the right c is closer to that mode than with
    # a wrong c (t = 100: noise std 0.17 per dimension, more than the spread around a mode)
    sched = DdimScheduler()
    t = torch.full((400,), 100)
    xt = sched.add_noise(x0, torch.randn(400, 144, generator=torch.Generator().manual_seed(5)), t)
    mode6d = axis_angle_to_rot6d(modes).reshape(4, 144)
    with torch.no_grad():
        right = sched.pred_x0(model(xt, t, c), 100, xt)
        wrong = sched.pred_x0(model(xt, t, c.roll(1, dims=1)), 100, xt)
    target = mode6d[c.argmax(1)]
    assert ((right - target) ** 2).sum(1).mean() < 0.7 * ((wrong - target) ** 2).sum(1).mean()


def test_training_is_deterministic_for_a_seed():
    x0, c, _ = _toy_poses(300)
    cfg = DenoiserTrainingConfig(model=TOY.model, num_steps=5, batch_size=32, warmup_steps=2, val_every=5, seed=3)
    a, _ = train_denoiser(x0, c, cfg, progress=False)
    b, _ = train_denoiser(x0, c, cfg, progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    with pytest.raises(ValueError, match="cond_dim"):
        train_denoiser(x0, c[:, :3], cfg, progress=False)


def test_checkpoint_callback_is_called(tmp_path):
    x0, c, _ = _toy_poses(200)
    cfg = DenoiserTrainingConfig(model=TOY.model, num_steps=6, batch_size=16, warmup_steps=1, val_every=3,
                                 checkpoint_every=2)
    steps = []
    train_denoiser(x0, c, cfg, progress=False,
                   checkpoint_fn=lambda step, m, h: steps.append((step, isinstance(m, PoseDenoiser), len(h["step"]))))
    assert steps == [(2, True, 0), (4, True, 1), (6, True, 2)]


def test_onnx_session_as_eps_fn_gives_the_same_refinement(tmp_path):
    """The refiner only calls eps_fn forward: an onnxruntime session can replace the module."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX eps_fn not checked")
    import numpy as np

    from conftest import make_random_smpl_arrays
    from hmr_node.core.body import load_body_model
    from hmr_node.core.regressor.output import KeypointObservation, RegressorOutput
    from hmr_node.core.scorehmr.refiner import ScoreHmrConfig, ScoreHmrRefiner

    m = _randomised()
    x, t, c = torch.randn(2, 144), torch.randint(0, 1000, (2,)), torch.randn(2, 8)
    path = _export_onnx(m, (x, t, c), tmp_path / "d.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def onnx_eps(x_t, t, c):
        out = sess.run(None, {"x_t": x_t.detach().numpy(), "t": t.numpy(), "c": c.numpy()})[0]
        return torch.from_numpy(out)

    np.savez(tmp_path / "body.npz", **make_random_smpl_arrays(seed=2))
    body = load_body_model(tmp_path / "body.npz")
    g = torch.Generator().manual_seed(0)
    B = 3
    pose = axis_angle_to_rot6d(0.3 * torch.randn(B, 24, 3, generator=g)).reshape(B, 144)
    reg = RegressorOutput(pose, torch.zeros(B, 10), torch.tensor([[0.0, 0.0, 4.0]]).repeat(B, 1),
                          torch.randn(B, 8, generator=g))
    K = torch.tensor([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]).expand(B, 3, 3).clone()
    obs = KeypointObservation(320 + 60 * torch.randn(B, 17, 2, generator=g), torch.ones(B, 17), K,
                              torch.tensor([[640.0, 480.0]]).repeat(B, 1))
    cfg = ScoreHmrConfig()
    a = ScoreHmrRefiner(m, body, cfg).refine(reg, obs)
    b = ScoreHmrRefiner(onnx_eps, body, cfg).refine(reg, obs)
    assert a.refined.all() and b.refined.all()
    assert torch.allclose(a.pose6d, b.pose6d, atol=1e-4) and torch.allclose(a.transl, b.transl, atol=1e-4)
