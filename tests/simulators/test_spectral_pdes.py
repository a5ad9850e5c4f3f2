"""Pseudo-spectral PDEs: Burgers (1-D periodic/Dirichlet, 2-D), Korteweg–de Vries, Kuramoto–Sivashinsky.

Exact solutions: Cole–Hopf (Burgers), solitons (KdV), heat decay of a single mode (linearised 2-D Burgers).
Tolerances follow from the schemes: spectral accuracy in space (errors at rounding once resolved), ETDRK4
(4th order) in time with steps chosen so that the time error is far below the asserted bound.
"""

import math

import numpy as np
import pytest
import torch

from physml.systems import get_system
from simulators.burgers import (
    RAISSI_VISCOSITY,
    Burgers1D,
    Burgers2D,
    burgers_cole_hopf_cosine,
    cole_hopf_sine,
    raissi_reference,
)
from simulators.kdv import KortewegDeVries
from simulators.kuramoto_sivashinsky import KuramotoSivashinsky

DTYPE = torch.float64


def cosine_burgers(points, viscosity=0.5):
    return Burgers1D(points=points, lower=0.0, upper=2 * math.pi, viscosity=viscosity)


def cosine_initial_state(system, viscosity=0.5):
    x = system.coordinates()
    return burgers_cole_hopf_cosine(x, 0.0, viscosity=viscosity, offset=1.5).view(1, 1, -1)


def observed_order(step_counts, errors):
    return -np.polyfit(np.log(step_counts), np.log(errors), 1)[0]


# -- registry -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [
    ("burgers_1d", Burgers1D), ("burgers_2d", Burgers2D), ("korteweg_de_vries", KortewegDeVries),
    ("kuramoto_sivashinsky", KuramotoSivashinsky),
])
def test_entry_points_find_the_systems(name, cls):
    assert get_system(name) is cls and cls.name == name


# -- 1-D Burgers ----------------------------------------------------------------------------------------


def test_burgers_1d_converges_spectrally_to_the_cole_hopf_solution():
    # u = 2ν sin x / (1.5 e^{νt} + cos x): analytic in a strip, so the error falls geometrically with N.
    errors = {}
    for points in (16, 32, 64):
        system = cosine_burgers(points)
        y0 = cosine_initial_state(system)
        solution = system.simulate(y0, [0.0, 1.0], step_size=0.002)
        exact = burgers_cole_hopf_cosine(system.coordinates(), 1.0, viscosity=0.5, offset=1.5)
        errors[points] = float((solution.ys[-1, 0, 0] - exact).abs().max())
    assert errors[16] > 1e3 * errors[32] and errors[32] > 1e3 * errors[64], errors
    assert errors[64] < 1e-11, errors  # time error at h = 0.002 is ~1e-15 (4th order, see below)


def test_burgers_1d_etdrk4_temporal_order_is_four():
    system = cosine_burgers(32)
    y0 = cosine_initial_state(system)
    reference = system.simulate(y0, [0.0, 1.0], step_size=1.0 / 512).ys[-1]
    steps = [8, 16, 32]
    errors = [float((system.simulate(y0, [0.0, 1.0], step_size=1.0 / n).ys[-1] - reference).abs().max())
              for n in steps]
    assert abs(observed_order(steps, errors) - 4) < 0.3, errors


def test_forward_is_the_rhs_that_etdrk4_integrates():
    # physml.solve_ode on forward (dopri5, tight tolerances) and ETDRK4 solve the same semi-discrete system.
    system = cosine_burgers(32)
    y0 = cosine_initial_state(system)
    adaptive = system.simulate(y0, [0.0, 0.5], method="dopri5", rtol=1e-11, atol=1e-13).ys[-1]
    exponential = system.simulate(y0, [0.0, 0.5], step_size=0.005).ys[-1]
    assert float((adaptive - exponential).abs().max()) < 1e-10
    # and on 64 points the right-hand side is the exact u_t = ν u_xx − u u_x of the Cole–Hopf solution, up to
    # the 2/3-rule truncation of modes |k| >= 21, which decay like exp(-arccosh(1.5) |k|) ≈ 2e-9.
    system = cosine_burgers(64)
    x = system.coordinates()
    state = burgers_cole_hopf_cosine(x, 0.3, viscosity=0.5, offset=1.5).view(1, 1, -1)
    step = 1e-5
    exact_rate = (burgers_cole_hopf_cosine(x, 0.3 + step, viscosity=0.5, offset=1.5)
                  - burgers_cole_hopf_cosine(x, 0.3 - step, viscosity=0.5, offset=1.5)) / (2 * step)
    rate = system(torch.tensor(0.3, dtype=DTYPE), state)[0, 0]
    assert float((rate - exact_rate).abs().max()) < 1e-7


def test_burgers_1d_batched_viscosity_matches_separate_solves_and_conserves_the_mean():
    system = Burgers1D(points=64, viscosity=[0.1, 0.3])
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(5))
    together = system.simulate(y0, [0.0, 0.5, 1.0]).ys
    for index, viscosity in enumerate([0.1, 0.3]):
        alone = Burgers1D(points=64, viscosity=viscosity).simulate(y0[index:index + 1], [0.0, 0.5, 1.0]).ys
        torch.testing.assert_close(together[:, index:index + 1], alone, rtol=0, atol=1e-13)
    mean = together.mean(dim=-1)
    torch.testing.assert_close(mean, mean[:1].expand_as(mean), rtol=0, atol=1e-13)


def test_dtype_follows_the_input():
    system = Burgers1D(points=32)
    y0 = system.sample_initial_conditions(1, torch.Generator().manual_seed(0)).float()
    assert system.simulate(y0, [0.0, 0.1]).ys.dtype == torch.float32
    assert system(torch.tensor(0.0), y0).dtype == torch.float32


# -- Raissi's Dirichlet problem -------------------------------------------------------------------------


def test_raissi_reference_grid_and_initial_condition():
    x, t, u = raissi_reference()
    assert u.shape == (100, 256) and x.shape == (256,) and t.shape == (100,)
    torch.testing.assert_close(x, torch.linspace(-1, 1, 256, dtype=DTYPE))
    torch.testing.assert_close(t, 0.01 * torch.arange(100, dtype=DTYPE))
    torch.testing.assert_close(u[0], -torch.sin(math.pi * x), rtol=0, atol=1e-15)
    assert float(u[:, [0, -1]].abs().max()) < 1e-12  # u(t, ±1) = 0
    assert float(u.abs().max()) <= 1.0 + 1e-12  # maximum principle


def test_cole_hopf_quadrature_reproduces_basdevant_maximum_slope():
    # Basdevant et al. (1986): max |u_x| = 152.00516 at x = 0, t = 1.6037/π (their 8-digit benchmark).
    x = torch.zeros(1, dtype=DTYPE, requires_grad=True)
    u = cole_hopf_sine(x, torch.tensor([1.6037 / math.pi], dtype=DTYPE), viscosity=RAISSI_VISCOSITY)
    slope = torch.autograd.grad(u.sum(), x)[0]
    assert abs(float(slope) + 152.00516) < 5e-6
    # quadrature converged: 80 and 120 nodes agree to rounding on Raissi's grid
    _, _, coarse = raissi_reference(nt=11, final_time=1.0, quadrature_points=80)
    _, _, fine = raissi_reference(nt=11, final_time=1.0, quadrature_points=120)
    assert float((coarse - fine).abs().max()) < 1e-12


def test_raissi_reference_matches_a_dirichlet_pseudo_spectral_solve():
    # 511 points hold Raissi's 256-point grid as every other point; before the front steepens (t = 0.25)
    # they resolve it, and the spectral solve agrees with the quadrature to 1e-8.
    system = Burgers1D.raissi(points=511, time_step=1e-3)
    assert system.grid.boundary == ("dirichlet",)
    y0 = system.paper_initial_condition()
    solution = system.simulate(y0, [0.0, 0.25])
    _, t, reference = raissi_reference()
    assert abs(float(t[25]) - 0.25) < 1e-15
    assert float((solution.ys[-1, 0, 0, ::2] - reference[25]).abs().max()) < 1e-8
    assert float(solution.ys[-1, 0, 0, [0, -1]].abs().max()) == 0.0


def test_raissi_reference_matches_a_fine_spectral_solve_through_the_shock():
    system = Burgers1D.raissi()  # 2041 points: Raissi's grid is every 8th point
    solution = system.simulate(system.paper_initial_condition(), [0.0, 0.5, 0.99])
    _, _, reference = raissi_reference()
    for index, row in ((1, 50), (2, 99)):
        assert float((solution.ys[index, 0, 0, ::8] - reference[row]).abs().max()) < 1e-8


# -- Korteweg–de Vries ----------------------------------------------------------------------------------


def test_kdv_soliton_travels_at_its_speed():
    system = KortewegDeVries(points=256)
    x = system.coordinates()
    speed, position, final = 2.0, -10.0, 2.0
    y0 = system.soliton(x, 0.0, speed=speed, position=position).view(1, 1, -1)
    solution = system.simulate(y0, [0.0, 1.0, final])
    for index, t in enumerate([0.0, 1.0, final]):
        exact = system.soliton(x, t, speed=speed, position=position)
        assert float((solution.ys[index, 0, 0] - exact).abs().max()) < 1e-7
    crest = float(x[solution.ys[-1, 0, 0].argmax()])
    assert abs(crest - (position + speed * final)) <= system.grid.spacing[0]


def test_kdv_two_solitons_conserve_mass_and_momentum():
    system = KortewegDeVries(points=256)
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(1))
    ys = system.simulate(y0, [0.0, 1.0]).ys
    for invariant in (ys.sum(dim=-1), (ys**2).sum(dim=-1)):
        assert float((invariant[-1] - invariant[0]).abs().max()) < 1e-8 * float(invariant.abs().max())


# -- Kuramoto–Sivashinsky -------------------------------------------------------------------------------


def test_kuramoto_sivashinsky_etdrk4_is_fourth_order():
    system = KuramotoSivashinsky(points=64)
    y0 = system.paper_initial_condition()
    reference = system.simulate(y0, [0.0, 5.0], step_size=5.0 / 512).ys[-1]
    steps = [16, 32, 64]
    errors = [float((system.simulate(y0, [0.0, 5.0], step_size=5.0 / n).ys[-1] - reference).abs().max())
              for n in steps]
    assert abs(observed_order(steps, errors) - 4) < 0.3, errors


def test_kuramoto_sivashinsky_stays_bounded_on_the_attractor():
    # Kassam & Trefethen's run: N = 128, h = 1/4, t ∈ [0, 150]; the solution goes chaotic yet stays O(1).
    system = KuramotoSivashinsky(points=128)
    ys = system.simulate(system.paper_initial_condition(), torch.linspace(0.0, 150.0, 151), step_size=0.25).ys
    assert torch.isfinite(ys).all()
    assert float(ys.abs().max()) < 5.0
    assert float(ys[-20:].abs().amax(dim=-1).min()) > 1.0  # not decayed: the long waves are unstable
    mean = ys.mean(dim=-1)
    assert float((mean - mean[0]).abs().max()) < 1e-12  # ½(u²)_x conserves the mean


# -- 2-D vector Burgers ---------------------------------------------------------------------------------


def test_burgers_2d_single_mode_decays_at_the_viscous_rate():
    # Amplitude 1e-8: the advection term is O(1e-16), so each mode decays as exp(-ν |k|² t) to ~1e-8 relative.
    system = Burgers2D(points=16)
    y, x = system.grid.mesh()
    amplitude = 1e-8
    y0 = torch.zeros(1, 2, 16, 16, dtype=DTYPE)
    y0[0, 0] = amplitude * torch.sin(x + 2 * y)
    y0[0, 1] = amplitude * torch.cos(3 * x)
    solution = system.simulate(y0, [0.0, 1.0], step_size=0.1)
    assert solution.ys.shape == (2, 1, 2, 16, 16)
    expected_u = amplitude * math.exp(-0.05 * 5) * torch.sin(x + 2 * y)
    expected_v = amplitude * math.exp(-0.05 * 9) * torch.cos(3 * x)
    assert float((solution.ys[-1, 0, 0] - expected_u).abs().max()) < 1e-7 * amplitude
    assert float((solution.ys[-1, 0, 1] - expected_v).abs().max()) < 1e-7 * amplitude


def test_burgers_2d_rhs_is_the_pde_net_vector_burgers_operator():
    # For smooth band-limited fields the pseudo-spectral RHS equals -u u_x - v u_y + ν Δu exactly.
    system = Burgers2D(points=32)
    y, x = system.grid.mesh()
    u, v = torch.sin(x) * torch.cos(y), 0.5 + torch.cos(2 * x)
    state = torch.stack([u, v]).unsqueeze(0)
    u_x, u_y, laplace_u = torch.cos(x) * torch.cos(y), -torch.sin(x) * torch.sin(y), -2 * u
    v_x, laplace_v = -2 * torch.sin(2 * x), -4 * torch.cos(2 * x)
    rate = system(torch.tensor(0.0), state)[0]
    torch.testing.assert_close(rate[0], -u * u_x - v * u_y + 0.05 * laplace_u, rtol=0, atol=1e-13)
    torch.testing.assert_close(rate[1], -u * v_x + 0.05 * laplace_v, rtol=0, atol=1e-13)


def test_burgers_2d_initial_conditions_follow_pde_net():
    system = Burgers2D(points=32)
    y0 = system.sample_initial_conditions(4, torch.Generator().manual_seed(2))
    assert y0.shape == (4, 2, 32, 32) and y0.dtype == DTYPE
    spectrum = torch.fft.fft2(y0).abs()
    frequencies = torch.fft.fftfreq(32, d=1.0 / 32).abs()
    outside = (frequencies[:, None] > 4) | (frequencies[None, :] > 4)
    assert float(spectrum[..., outside].max()) < 1e-10  # only modes |k_x|, |k_y| <= 4
    # amplitude 2 around a constant shift in (-2, 2): each field spans at most 4 and stays in (-4, 4)
    spread = y0.amax(dim=(-2, -1)) - y0.amin(dim=(-2, -1))
    assert float(spread.max()) <= 4.0 + 1e-12 and float(spread.min()) > 2.0
    assert float(y0.abs().max()) < 4.0


# -- differentiability ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["etdrk4", "rk4"])
def test_gradient_with_respect_to_viscosity_matches_finite_differences(method):
    def loss(viscosity, learnable):
        system = Burgers1D(points=32, lower=0.0, upper=2 * math.pi, viscosity=viscosity,
                           learnable=["viscosity"] if learnable else [])
        y0 = torch.sin(system.coordinates()).view(1, 1, -1)
        solution = system.simulate(y0, [0.0, 0.5], method=method, step_size=0.05)
        return (solution.ys[-1] ** 2).sum(), system

    value, system = loss(0.2, True)
    value.backward()
    step = 1e-6
    difference = (float(loss(0.2 + step, False)[0]) - float(loss(0.2 - step, False)[0])) / (2 * step)
    assert abs(float(system.viscosity.grad) - difference) < 1e-7 * abs(difference)


def test_gradient_flows_through_a_2d_solve_and_a_kdv_solve():
    burgers = Burgers2D(points=16, learnable=["viscosity"])
    y0 = burgers.sample_initial_conditions(1, torch.Generator().manual_seed(0))
    burgers.simulate(y0, [0.0, 0.05], step_size=0.01).ys[-1].pow(2).sum().backward()
    # More viscosity, less kinetic energy.
    assert torch.isfinite(burgers.viscosity.grad) and float(burgers.viscosity.grad) < 0
    kdv = KortewegDeVries(points=64, learnable=["dispersion_coefficient"])
    y0 = kdv.sample_initial_conditions(1, torch.Generator().manual_seed(0))
    kdv.simulate(y0, [0.0, 0.1], step_size=0.01).ys[-1, 0, 0, 10].backward()
    assert torch.isfinite(kdv.dispersion_coefficient.grad) and float(kdv.dispersion_coefficient.grad) != 0


# -- initial conditions and bad input -------------------------------------------------------------------


@pytest.mark.parametrize("system", [
    Burgers1D(points=64), Burgers1D.raissi(points=65), Burgers2D(points=16), KortewegDeVries(points=64),
    KuramotoSivashinsky(points=64),
], ids=["burgers_periodic", "burgers_dirichlet", "burgers_2d", "kdv", "kuramoto_sivashinsky"])
def test_initial_conditions_come_from_the_generator_only(system):
    first = system.sample_initial_conditions(3, torch.Generator().manual_seed(11))
    torch.manual_seed(0)  # the global generator must not matter
    second = system.sample_initial_conditions(3, torch.Generator().manual_seed(11))
    other = system.sample_initial_conditions(3, torch.Generator().manual_seed(12))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert first.shape == (3, *system.state_shape) and first.dtype == DTYPE
    assert torch.isfinite(first).all() and not torch.equal(first[0], first[1])
    if system.grid.boundary[0] == "dirichlet":
        assert float(first[..., [0, -1]].abs().max()) == 0.0


def test_paper_initial_conditions():
    raissi = Burgers1D.raissi(points=256)
    x = raissi.coordinates()
    torch.testing.assert_close(raissi.paper_initial_condition()[0, 0, 1:-1], -torch.sin(math.pi * x)[1:-1])
    kuramoto = KuramotoSivashinsky()
    x = kuramoto.coordinates()
    expected = torch.cos(x / 16) * (1 + torch.sin(x / 16))
    torch.testing.assert_close(kuramoto.paper_initial_condition()[0, 0], expected)
    assert kuramoto.grid.shape == (1024,) and abs(kuramoto.grid.upper[0] - 32 * math.pi) < 1e-12
    pde_find = Burgers1D.pde_find()
    assert pde_find.grid.shape == (256,) and float(pde_find.viscosity) == 0.1
    assert int(pde_find.paper_initial_condition().argmax()) == 96  # the bump at x = -2 = -8 + 96/16


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="boundary must be one of"):
        Burgers1D(boundary="neumann")
    with pytest.raises(ValueError, match="points must be an integer >= 4, got 2"):
        Burgers1D(points=2)
    with pytest.raises(ValueError, match="viscosity must be positive"):
        Burgers1D(viscosity=-0.1)
    with pytest.raises(ValueError, match="domain must satisfy lower < upper"):
        KuramotoSivashinsky(lower=1.0, upper=0.0)
    with pytest.raises(ValueError, match=r"points must be an integer or a pair \(ny, nx\)"):
        Burgers2D(points=(8,))
    with pytest.raises(ValueError, match="speed_range must be"):
        KortewegDeVries(speed_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        Burgers1D().sample_initial_conditions(0, torch.Generator())
    with pytest.raises(ValueError, match="quadrature_points must be at most 150"):
        raissi_reference(quadrature_points=400)
    system = Burgers1D(points=32)
    with pytest.raises(ValueError, match=r"y0 must have shape \(batch, 1, 32\) for burgers_1d, got \(1, 32"):
        system.simulate(torch.zeros(1, 32, dtype=DTYPE), [0.0, 1.0])
    with pytest.raises(ValueError, match="step_size must be a positive finite number"):
        system.simulate(torch.zeros(1, 1, 32, dtype=DTYPE), [0.0, 1.0], step_size=-1.0)
    with pytest.raises(ValueError, match="options \\['rtol'\\] are not understood by method 'etdrk4'"):
        system.simulate(torch.zeros(1, 1, 32, dtype=DTYPE), [0.0, 1.0], options={"rtol": 1e-3})
    dirichlet = Burgers1D.raissi(points=33)
    with pytest.raises(ValueError, match="y0 must vanish on the Dirichlet boundary"):
        dirichlet.simulate(torch.ones(1, 1, 33, dtype=DTYPE), [0.0, 0.1])
