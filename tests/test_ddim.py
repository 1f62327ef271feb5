"""Cosine schedule and deterministic DDIM: closed-form cases and the inversion round trip."""
from __future__ import annotations

import math

import pytest
import torch

from hmr_node.core.diffusion import DdimConfig, DdimScheduler, cosine_alpha_bar


def test_cosine_schedule_properties():
    a = cosine_alpha_bar(1000)
    assert a.shape == (1001,) and a.dtype == torch.float64
    assert a[0] == 1.0
    assert bool((a > 0).all()) and bool((a <= 1).all())
    assert bool((a[1:] < a[:-1]).all()), "alpha_bar must decrease strictly"
    # away from the clipped tail it is the closed form f(t) / f(0) of Nichol & Dhariwal
    s = 0.008
    f = lambda t: math.cos((t / 1000 + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 50, 500, 900):
        assert a[t].item() == pytest.approx(f(t) / f(0), rel=1e-10)
    # the clip at max_beta keeps the last step finite and positive
    assert a[-1].item() == pytest.approx(a[-2].item() * (1 - 0.999), rel=1e-9)


def test_cosine_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_timesteps"):
        cosine_alpha_bar(0)
    with pytest.raises(ValueError, match="max_beta"):
        cosine_alpha_bar(100, max_beta=1.0)


def test_set_timesteps_sub_range():
    sched = DdimScheduler(DdimConfig())
    ts = sched.set_timesteps(10, t_max=50)
    assert ts.tolist() == [50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 0]
    assert sched.set_timesteps(25, 50).tolist()[:3] == [50, 48, 46]
    ts = sched.set_timesteps(7, t_max=50)  # uneven spacing is rounded, stays strictly descending
    assert ts[0] == 50 and ts[-1] == 0 and len(ts) == 8 and bool((ts[1:] < ts[:-1]).all())
    assert sched.set_timesteps(4).tolist() == [1000, 750, 500, 250, 0]
    with pytest.raises(ValueError, match="t_max"):
        sched.set_timesteps(5, t_max=1001)
    with pytest.raises(ValueError, match="num_steps"):
        sched.set_timesteps(60, t_max=50)


def test_pred_x0_inverts_add_noise_per_sample_timesteps():
    sched = DdimScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 144, generator=g, dtype=torch.float64)
    noise = torch.randn(6, 144, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 10, 300, 700, 999])
    xt = sched.add_noise(x0, noise, t)
    assert torch.allclose(sched.pred_x0(noise, t, xt), x0, atol=1e-9)
    a = sched.alpha_bar[t][:, None]
    assert torch.allclose(xt, a.sqrt() * x0 + (1 - a).sqrt() * noise)


def test_ddim_with_ideal_eps_of_a_single_point_returns_it_exactly():
    # data = one point x*: the ideal eps is (x_t - sqrt(a_t) x*) / sqrt(1 - a_t), so x0_hat = x*
    # at every step and deterministic DDIM from pure noise lands on x* whatever the step count
    sched = DdimScheduler()
    g = torch.Generator().manual_seed(1)
    x_star = torch.randn(1, 144, generator=g, dtype=torch.float64)

    def eps(x, t):
        a = sched.alpha_bar_at(t, x)
        return (x - a.sqrt() * x_star) / (1 - a).sqrt()

    for n in (1, 3, 20):
        ts = sched.set_timesteps(n, 1000)
        x = torch.randn(4, 144, generator=g, dtype=torch.float64)
        for t, t_prev in zip(ts[:-1].tolist(), ts[1:].tolist()):
            out = sched.step(eps(x, t), t, t_prev, x)
            assert torch.allclose(out.pred_x0, x_star.expand(4, -1), atol=1e-9)
            x = out.prev_sample
        assert torch.allclose(x, x_star.expand(4, -1), atol=1e-9)


def test_inversion_step_and_step_are_exact_inverses_for_the_same_eps():
    sched = DdimScheduler()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 144, generator=g, dtype=torch.float64)
    e = torch.randn(5, 144, generator=g, dtype=torch.float64)
    for t, t_next in ((0, 5), (5, 50), (100, 400)):
        up = sched.inversion_step(e, t, t_next, x)
        back = sched.step(e, t_next, t, up).prev_sample
        assert torch.allclose(back, x, atol=1e-9)


def _gaussian_eps(sched, mu, s):
    """Ideal eps of data N(mu, s^2 I): E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a)."""
    def eps(x, t):
        a = sched.alpha_bar_at(t, x)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)
    return eps


def _round_trip(sched, eps, x0, num_steps, tau):
    ts = sched.set_timesteps(num_steps, tau)
    up = ts.flip(0).tolist()
    x = x0.clone()
    for t, t_next in zip(up[:-1], up[1:]):          # Eq. 7
        x = sched.inversion_step(eps(x, t), t, t_next, x)
    for t, t_prev in zip(ts[:-1].tolist(), ts[1:].tolist()):  # Eq. 9 with sigma = 0
        x = sched.step(eps(x, t), t, t_prev, x).prev_sample
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_gaussian_data_upstream_setting_within_1e3_per_dimension(dtype):
    # the paper's figure (Sec. 4.1): invert to tau = 50 with 25 DDIM steps and sample back
    sched = DdimScheduler()
    g = torch.Generator().manual_seed(3)
    mu = (0.5 * torch.randn(144, generator=g, dtype=torch.float64)).to(dtype)
    s = 0.3
    x0 = mu + s * torch.randn(64, 144, generator=g, dtype=torch.float64).to(dtype)
    x = _round_trip(sched, _gaussian_eps(sched, mu, s), x0, num_steps=25, tau=50)
    err = (x - x0).abs()
    assert err.mean() < 1e-3
    # Euler discretisation: halving the step halves the error (first order)
    x10 = _round_trip(sched, _gaussian_eps(sched, mu, s), x0, num_steps=10, tau=50)
    x20 = _round_trip(sched, _gaussian_eps(sched, mu, s), x0, num_steps=20, tau=50)
    ratio = ((x10 - x0).abs().mean() / (x20 - x0).abs().mean()).item()
    assert 1.7 < ratio < 2.3
