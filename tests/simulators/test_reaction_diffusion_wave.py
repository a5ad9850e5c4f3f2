"""Reaction–diffusion systems and the damped wave: stencil symbols and orders, exact solutions, ICs."""

import math

import numpy as np
import pytest
import torch

import physml
from physml.systems import get_system
from simulators.reaction_diffusion import FitzHughNagumo, GrayScott, LambdaOmega
from simulators.wave import DampedWave

FLOAT = torch.float64


def _times(*values):
    return torch.tensor(values, dtype=FLOAT)


def _laplacian_symbol(stencil, wavenumber_y, wavenumber_x, spacing_y, spacing_x):
    """Eigenvalue of a periodic Laplacian for the Fourier mode exp(i(k_y y + k_x x))."""
    theta_y, theta_x = wavenumber_y * spacing_y, wavenumber_x * spacing_x
    if stencil == "second_order":
        return (2 * math.cos(theta_y) - 2) / spacing_y**2 + (2 * math.cos(theta_x) - 2) / spacing_x**2
    if stencil == "fourth_order":
        return sum((-math.cos(2 * theta) + 16 * math.cos(theta) - 15) / (6 * step**2)
                   for theta, step in ((theta_y, spacing_y), (theta_x, spacing_x)))
    if stencil == "isotropic_9":
        cos_y, cos_x = math.cos(theta_y), math.cos(theta_x)
        return (cos_y + cos_x + cos_y * cos_x - 3) / spacing_x**2
    assert stencil == "spectral"
    return -(wavenumber_y**2 + wavenumber_x**2)


def test_registry_names_the_classes():
    for name, cls in [("fitzhugh_nagumo", FitzHughNagumo), ("gray_scott", GrayScott),
                      ("lambda_omega", LambdaOmega), ("damped_wave", DampedWave)]:
        assert get_system(name) is cls and cls.name == name


def test_paper_configurations():
    fhn = FitzHughNagumo()
    assert fhn.grid.shape == (32, 32) and fhn.grid.spacing == (2 / 32, 2 / 32)
    assert fhn.stencil == "second_order"
    assert fhn.grid.coordinates()["x"][0] == -1.0 and fhn.grid.boundary == ("periodic", "periodic")
    gray_scott = GrayScott()
    assert gray_scott.grid.spacing == (1.0, 1.0) and gray_scott.stencil == "isotropic_9"
    assert gray_scott.square_size == 3 and gray_scott.square_count == 3
    assert (gray_scott.feed.item(), gray_scott.kill.item()) == (0.037, 0.060)
    lambda_omega = LambdaOmega()
    assert lambda_omega.grid.shape == (256, 256) and lambda_omega.stencil == "spectral"
    np.testing.assert_allclose(lambda_omega.grid.coordinates()["x"], np.linspace(-10, 10, 257)[:-1],
                               atol=1e-13)
    wave = DampedWave()
    assert wave.grid.shape == (64, 64) and wave.grid.spacing == (1.0, 1.0)
    assert (wave.wave_speed.item(), wave.damping.item()) == (330.0, 50.0)


# -- reaction–diffusion: diffusion-only configuration is a heat equation with known discrete decay -----

@pytest.mark.parametrize("stencil", ["second_order", "fourth_order", "isotropic_9", "spectral"])
def test_heat_equation_mode_decays_at_the_stencil_symbol_rate(stencil):
    system = FitzHughNagumo(grid_size=8, stencil=stencil, reaction=False, a=0.1, b=0.05)
    y, x = system.grid.mesh()
    spacing_y, spacing_x = system.grid.spacing
    wavenumber_y, wavenumber_x = 2 * math.pi * 1 / 2.0, 2 * math.pi * 2 / 2.0  # modes (1, 2) on [-1, 1)
    mode = torch.cos(wavenumber_y * y + wavenumber_x * x)
    y0 = torch.stack([mode, 2 * mode])[None]
    symbol = _laplacian_symbol(stencil, wavenumber_y, wavenumber_x, spacing_y, spacing_x)
    times = _times(0.0, 0.5, 1.0)
    solution = physml.solve_ode(system, y0, times, method="dopri5", rtol=1e-11, atol=1e-13)
    for index, t in enumerate(times.tolist()):
        expected = torch.stack([math.exp(0.1 * symbol * t) * mode, 2 * math.exp(0.05 * symbol * t) * mode])
        # dopri5 at rtol 1e-11: global error ~1e-10 of an O(1) field.
        torch.testing.assert_close(solution.ys[index, 0], expected, rtol=0, atol=1e-9)
    assert math.exp(0.1 * symbol) < 0.2  # the mode decays visibly, so the rate is really tested


@pytest.mark.parametrize("stencil, order", [("second_order", 2), ("fourth_order", 4)])
def test_heat_equation_decay_rate_converges_at_the_stencil_order(stencil, order):
    sizes, errors = [8, 16, 32, 64], []
    end = 0.1
    for n in sizes:
        system = FitzHughNagumo(grid_size=(4, n), stencil=stencil, reaction=False, a=1.0, b=1.0)
        _, x = system.grid.mesh()
        mode = torch.cos(math.pi * x)  # k = π on [-1, 1): continuous decay rate a k² = π²
        y0 = torch.stack([mode, mode])[None]
        solution = physml.solve_ode(system, y0, _times(0.0, end), method="dopri5", rtol=1e-12, atol=1e-14)
        amplitude = (solution.ys[-1, 0, 0] * mode).sum() / (mode * mode).sum()
        measured_rate = -math.log(amplitude.item()) / end
        errors.append(abs(measured_rate - math.pi**2) / math.pi**2)
    slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    # Leading error terms θ²/12 and θ⁴/90 (θ = k dx); higher-order terms bend the fit only slightly.
    assert abs(slope - order) < 0.15, (slope, errors)


def test_fitzhugh_nagumo_reaction_terms_at_a_uniform_state():
    system = FitzHughNagumo(grid_size=6, k=[0.0, 0.1])
    y = torch.stack([torch.full((6, 6), 0.5, dtype=FLOAT), torch.full((6, 6), 0.2, dtype=FLOAT)])
    rhs = system(_times(0.0)[0], torch.stack([y, y]))
    torch.testing.assert_close(rhs[:, 0, 0, 0], torch.tensor([0.175, 0.075], dtype=FLOAT), rtol=1e-14, atol=0)
    torch.testing.assert_close(rhs[:, 1], torch.full((2, 6, 6), 0.3, dtype=FLOAT), rtol=1e-14, atol=0)


def test_fitzhugh_nagumo_short_solve_stays_bounded():
    system = FitzHughNagumo(grid_size=16)
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    solution = system.simulate(y0, torch.linspace(0.0, 2.0, 5, dtype=FLOAT), rtol=1e-6, atol=1e-8)
    assert solution.status == "success" and torch.isfinite(solution.ys).all()
    # u - u³ confines u to about [-1.3, 1.3]; starting in [0, 1] the fields stay well inside ±1.5.
    assert solution.ys.abs().max() < 1.5
    assert (solution.ys[-1] - y0).abs().max() > 0.1


def test_gray_scott_short_solve_stays_in_the_invariant_region():
    environments = GrayScott.LEADS_ENVIRONMENTS
    system = GrayScott(grid_size=16, square_size=3, feed=[e["feed"] for e in environments],
                       kill=[e["kill"] for e in environments])
    y0 = system.sample_initial_conditions(3, torch.Generator().manual_seed(0))
    solution = system.simulate(y0, torch.linspace(0.0, 200.0, 6, dtype=FLOAT), rtol=1e-6, atol=1e-8)
    assert solution.status == "success" and torch.isfinite(solution.ys).all()
    u, v = solution.ys[:, :, 0], solution.ys[:, :, 1]
    # u ∈ [0, 1] and v ≥ 0 are invariant for the exact flow; allow the solver tolerance.
    assert u.min() > -1e-6 and u.max() < 1 + 1e-6 and v.min() > -1e-6 and v.max() < 1 + 1e-6
    assert (u[-1] - u[0]).abs().max() > 0.1


def test_gray_scott_reaction_at_the_background_state_and_batched_environments():
    feeds, kills = [0.037, 0.030, 0.039], [0.060, 0.062, 0.058]
    system = GrayScott(grid_size=8, feed=feeds, kill=kills)
    y0 = system.sample_initial_conditions(3, torch.Generator().manual_seed(5))
    rhs = system(_times(0.0)[0], y0)
    for index, (feed, kill) in enumerate(zip(feeds, kills)):
        single = GrayScott(grid_size=8, feed=feed, kill=kill)
        torch.testing.assert_close(rhs[index], single(_times(0.0)[0], y0[index:index + 1])[0],
                                   rtol=1e-15, atol=0)
    background = y0[:, 1] == 0.05
    # A background cell whose periodic 3×3 neighbourhood is background too has no diffusion.
    wrapped = torch.nn.functional.pad((~background).double()[:, None], (1, 1, 1, 1), mode="circular")
    quiet = torch.nn.functional.max_pool2d(wrapped, 3, stride=1)[:, 0].eq(0)
    u_rate = -0.95 * 0.05**2 + torch.tensor(feeds, dtype=FLOAT) * 0.05
    v_rate = 0.95 * 0.05**2 - (torch.tensor(feeds, dtype=FLOAT) + torch.tensor(kills, dtype=FLOAT)) * 0.05
    for index in range(3):
        assert quiet[index].any()
        torch.testing.assert_close(rhs[index, 0][quiet[index]], u_rate[index].expand(int(quiet[index].sum())))
        torch.testing.assert_close(rhs[index, 1][quiet[index]], v_rate[index].expand(int(quiet[index].sum())))


# -- λ–ω --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stencil", ["spectral", "second_order"])
def test_lambda_omega_uniform_unit_amplitude_state_rotates_at_beta(stencil):
    betas = torch.tensor([1.0, 0.5, 2.0], dtype=FLOAT)
    system = LambdaOmega(grid_size=8, stencil=stencil, beta=betas)
    phases = torch.tensor([0.0, 1.0, -2.0], dtype=FLOAT).view(3, 1, 1)
    ones = torch.ones(3, 8, 8, dtype=FLOAT)
    y0 = torch.stack([torch.cos(phases) * ones, torch.sin(phases) * ones], dim=1)
    times = torch.linspace(0.0, 3.0, 4, dtype=FLOAT)
    solution = physml.solve_ode(system, y0, times, method="dopri5", rtol=1e-11, atol=1e-13)
    for index, t in enumerate(times.tolist()):
        angle = phases - betas.view(3, 1, 1) * t
        expected = torch.stack([torch.cos(angle) * ones, torch.sin(angle) * ones], dim=1)
        torch.testing.assert_close(solution.ys[index], expected, rtol=0, atol=1e-9)


def test_lambda_omega_spiral_initial_condition():
    system = LambdaOmega(grid_size=16)
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    assert y0.shape == (2, 2, 16, 16) and y0.dtype == FLOAT
    assert torch.equal(y0[0], y0[1])  # PDE-FIND's spiral is deterministic
    y, x = system.grid.mesh()
    radius = torch.sqrt(x**2 + y**2)
    torch.testing.assert_close(y0[0].pow(2).sum(0).sqrt(), torch.tanh(radius), rtol=1e-14, atol=1e-15)
    row = 8  # y = 0: θ = 0 for x > 0, so the phase is -r
    positive = x[row] > 0
    torch.testing.assert_close(y0[0, 0, row][positive],
                               (torch.tanh(x[row]) * torch.cos(-x[row]))[positive], rtol=1e-14, atol=1e-15)
    randomized = LambdaOmega(grid_size=16, centre_spread=2.0, random_phase=True, spiral_count=2)
    first = randomized.sample_initial_conditions(3, torch.Generator().manual_seed(4))
    again = randomized.sample_initial_conditions(3, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first[0], first[1])


# -- damped wave ------------------------------------------------------------------------------------

def _aphynity_wave_rhs(w, w_t, wave_speed, damping, spacing):
    """The APHYNITY generator's formula, written out with explicit slices (NumPy)."""
    along_x, along_y = np.zeros_like(w), np.zeros_like(w)
    along_x[..., :, 2:-2] = (-w[..., :, 4:] + 16 * w[..., :, 3:-1] - 30 * w[..., :, 2:-2]
                             + 16 * w[..., :, 1:-3] - w[..., :, :-4]) / 12
    along_y[..., 2:-2, :] = (-w[..., 4:, :] + 16 * w[..., 3:-1, :] - 30 * w[..., 2:-2, :]
                             + 16 * w[..., 1:-3, :] - w[..., :-4, :]) / 12
    return w_t, wave_speed**2 * (along_x + along_y) / spacing**2 - damping * w_t


def test_wave_right_hand_side_reproduces_the_aphynity_boundary_treatment():
    speeds, dampings = np.array([330.0, 100.0]), np.array([50.0, 0.0])
    system = DampedWave(grid_size=(9, 12), spacing=0.5, centre_range=(2, 7), width_range=(2.0, 5.0),
                        wave_speed=speeds.tolist(), damping=dampings.tolist())
    state = torch.randn(2, 2, 9, 12, dtype=FLOAT, generator=torch.Generator().manual_seed(0))
    rhs = system(_times(0.0)[0], state).numpy()
    w, w_t = state[:, 0].numpy(), state[:, 1].numpy()
    expected_w, expected_w_t = _aphynity_wave_rhs(w, w_t, speeds[:, None, None], dampings[:, None, None], 0.5)
    np.testing.assert_array_equal(rhs[:, 0], expected_w)
    np.testing.assert_allclose(rhs[:, 1], expected_w_t, rtol=1e-12, atol=1e-12 * np.abs(expected_w_t).max())


def test_wave_fourier_mode_oscillates_at_the_stencil_frequency():
    wave_speed = 330.0
    system = DampedWave(grid_size=8, boundary="periodic", damping=0.0, wave_speed=wave_speed,
                        centre_range=(2, 6), width_range=(1.0, 2.0))
    y, x = system.grid.mesh()
    wavenumber_y, wavenumber_x = 2 * math.pi * 1 / 8, 2 * math.pi * 3 / 8
    mode = torch.cos(wavenumber_y * y + wavenumber_x * x)
    symbol = _laplacian_symbol("fourth_order", wavenumber_y, wavenumber_x, 1.0, 1.0)
    frequency = wave_speed * math.sqrt(-symbol)
    times = torch.linspace(0.0, 1.3 * 2 * math.pi / frequency, 6, dtype=FLOAT)
    y0 = torch.stack([mode, torch.zeros_like(mode)])[None]
    solution = physml.solve_ode(system, y0, times, method="dopri5", rtol=1e-11, atol=1e-12)
    for index, t in enumerate(times.tolist()):
        expected = torch.stack([math.cos(frequency * t) * mode, -frequency * math.sin(frequency * t) * mode])
        torch.testing.assert_close(solution.ys[index, 0, 0], expected[0], rtol=0, atol=1e-8)
        torch.testing.assert_close(solution.ys[index, 0, 1], expected[1], rtol=0, atol=1e-8 * frequency)


def test_wave_frequency_converges_at_fourth_order():
    sizes, errors = [8, 16, 32, 64], []
    end = 1.0
    for n in sizes:
        system = DampedWave(grid_size=(5, n), spacing=2 * math.pi / n, boundary="periodic", wave_speed=1.0,
                            damping=0.0, centre_range=(1, 4), width_range=(1.0, 2.0))
        _, x = system.grid.mesh()
        mode = torch.cos(x)  # continuous frequency c k = 1
        y0 = torch.stack([mode, torch.zeros_like(mode)])[None]
        solution = physml.solve_ode(system, y0, _times(0.0, end), method="dopri5", rtol=1e-12, atol=1e-14)
        amplitude = (solution.ys[-1, 0, 0] * mode).sum() / (mode * mode).sum()
        errors.append(abs(math.acos(amplitude.item()) / end - 1.0))
    slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert abs(slope - 4) < 0.15, (slope, errors)


def test_wave_energy_is_conserved_without_damping_and_decays_with_it():
    times = torch.linspace(0.0, 0.02, 6, dtype=FLOAT)
    system = DampedWave(grid_size=12, boundary="periodic", damping=[0.0, 50.0], centre_range=(4, 8),
                        width_range=(2.0, 6.0))
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(2))
    solution = physml.solve_ode(system, y0, times, method="dopri5", rtol=1e-11, atol=1e-13)
    energy = system.energy(solution.ys)  # (time, batch)
    drift = ((energy[:, 0] - energy[0, 0]) / energy[0, 0]).abs().max()
    assert drift < 1e-8  # semi-discrete energy is exact; only the time integration error remains
    assert (energy[1:, 1] < energy[:-1, 1]).all() and energy[-1, 1] < 0.6 * energy[0, 1]
    # The undamped wave really moved (energy moved from potential to kinetic form).
    assert solution.ys[-1, 0, 1].abs().max() > 1.0
    # The APHYNITY boundary with the paper's damping: energy falls over the 25-step window.
    aphynity = DampedWave(grid_size=16, centre_range=(5, 11), width_range=(2.5, 25.0))
    start = aphynity.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    window = aphynity.simulate(start, torch.linspace(0.0, 0.025, 6, dtype=FLOAT), method="rk4",
                               options=dict(step_size=1e-3))
    window_energy = aphynity.energy(window.ys)
    assert torch.isfinite(window.ys).all() and (window_energy[-1] < 0.5 * window_energy[0]).all()


def test_wave_initial_condition():
    system = DampedWave()
    y0 = system.sample_initial_conditions(16, torch.Generator().manual_seed(3))
    again = system.sample_initial_conditions(16, torch.Generator().manual_seed(3))
    assert torch.equal(y0, again) and y0.shape == (16, 2, 64, 64) and y0.dtype == FLOAT
    assert (y0[:, 1] == 0).all()
    flat_peak = y0[:, 0].flatten(1).argmax(dim=1)
    rows, columns = flat_peak // 64, flat_peak % 64
    assert ((rows >= 20) & (rows < 40) & (columns >= 20) & (columns < 40)).all()
    # Integer centres sit on grid points, so the peak value is exactly 1.
    assert torch.equal(y0[:, 0].amax(dim=(1, 2)), torch.ones(16, dtype=FLOAT))
    # Width σ ∈ [10, 100): one cell away from the peak the bump is exp(-1/σ).
    neighbour = y0[torch.arange(16), 0, rows, columns + 1]
    width = -1 / torch.log(neighbour)
    assert (width >= 10 - 1e-9).all() and (width < 100).all() and width.std() > 5


# -- initial conditions, dtype, gradients and bad input shared by the field systems -----------------

def test_fitzhugh_nagumo_initial_conditions():
    system = FitzHughNagumo()
    y0 = system.sample_initial_conditions(4, torch.Generator().manual_seed(0))
    assert y0.shape == (4, 2, 32, 32) and y0.dtype == FLOAT
    assert y0.min() >= 0 and y0.max() < 1 and abs(y0.mean().item() - 0.5) < 0.02
    torch.manual_seed(1)
    assert torch.equal(y0, system.sample_initial_conditions(4, torch.Generator().manual_seed(0)))


def test_gray_scott_squares_have_the_prescribed_values():
    system = GrayScott()
    y0 = system.sample_initial_conditions(8, torch.Generator().manual_seed(0))
    assert torch.equal(y0, system.sample_initial_conditions(8, torch.Generator().manual_seed(0)))
    assert y0.shape == (8, 2, 32, 32) and y0.dtype == FLOAT
    u, v = y0[:, 0], y0[:, 1]
    seeded = u == 0.0
    assert torch.equal(seeded, v == 1.0)
    assert ((u[~seeded] == 0.95) & (v[~seeded] == 0.05)).all()
    counts = seeded.flatten(1).sum(1)
    assert (counts >= 9).all() and (counts <= 27).all() and (counts == 27).any()
    # Every seeded cell lies in a fully seeded, non-wrapping 3×3 block.
    full_blocks = torch.nn.functional.avg_pool2d(seeded.double()[:, None], 3, stride=1) == 1
    block = torch.ones(1, 1, 3, 3, dtype=FLOAT)
    covered = torch.nn.functional.conv_transpose2d(full_blocks.double(), block) > 0
    assert torch.equal(covered[:, 0], seeded)
    background = GrayScott(square_count=0).sample_initial_conditions(1, torch.Generator())
    assert (background[:, 0] == 0.95).all() and (background[:, 1] == 0.05).all()


FIELD_SYSTEMS = {
    "fitzhugh_nagumo": (lambda **kw: FitzHughNagumo(grid_size=8, **kw), "a"),
    "gray_scott": (lambda **kw: GrayScott(grid_size=10, **kw), "feed"),
    "lambda_omega": (lambda **kw: LambdaOmega(grid_size=8, **kw), "beta"),
    "damped_wave": (lambda **kw: DampedWave(grid_size=8, centre_range=(2, 6), width_range=(1.0, 4.0), **kw),
                    "wave_speed"),
}


@pytest.mark.parametrize("name", list(FIELD_SYSTEMS))
def test_field_systems_follow_the_input_dtype(name):
    system = FIELD_SYSTEMS[name][0]()
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    rhs32 = system(torch.tensor(0.0), y0.float())
    assert rhs32.dtype == torch.float32 and rhs32.shape == y0.shape
    reference = system(torch.tensor(0.0), y0)
    torch.testing.assert_close(rhs32.double(), reference, rtol=1e-4, atol=1e-5 * reference.abs().max().item())


@pytest.mark.parametrize("name", list(FIELD_SYSTEMS))
def test_gradient_through_a_short_solve_matches_finite_differences(name):
    build, parameter = FIELD_SYSTEMS[name]
    y0 = build().sample_initial_conditions(1, torch.Generator().manual_seed(1))
    step_size = 1e-4 if name == "damped_wave" else 0.05
    times = _times(0.0, 4 * step_size)

    def loss(value, learnable):
        system = build(**{parameter: value}, learnable=[parameter] if learnable else [])
        solution = physml.solve_ode(system, y0, times, method="rk4", options=dict(step_size=step_size))
        return solution.ys[-1].pow(2).sum(), system

    base = {spec.name: spec.default for spec in build().parameter_specs}[parameter]
    value, system = loss(base, learnable=True)
    value.backward()
    gradient = getattr(system, parameter).grad
    with torch.no_grad():
        step = 1e-5 * base
        finite_difference = (loss(base + step, False)[0] - loss(base - step, False)[0]) / (2 * step)
    assert abs(finite_difference.item()) > 1e-8
    # Central differences of a smooth float64 function: error O(step²) + round-off, well below 1e-5.
    assert abs(gradient.item() - finite_difference.item()) <= 1e-5 * abs(finite_difference.item())


@pytest.mark.parametrize("name", list(FIELD_SYSTEMS))
def test_bad_input_is_rejected_with_names(name):
    build, _ = FIELD_SYSTEMS[name]
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['viscosity'\]"):
        build(viscosity=1.0)
    system = build()
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"n must be a positive integer, got {bad}"):
            system.sample_initial_conditions(bad, torch.Generator())


def test_bad_configuration_is_rejected_with_names():
    with pytest.raises(ValueError, match="stencil must be one of .* got 'sixth_order'"):
        FitzHughNagumo(stencil="sixth_order")
    with pytest.raises(ValueError, match=r"grid_size must be .* got \(4, 2\)"):
        FitzHughNagumo(grid_size=(4, 2))
    with pytest.raises(ValueError, match="isotropic_9.*equal spacing"):
        FitzHughNagumo(grid_size=(8, 16), stencil="isotropic_9")  # same domain, so dy ≠ dx
    with pytest.raises(ValueError, match="square_size must be an integer in"):
        GrayScott(grid_size=8, square_size=8)
    with pytest.raises(ValueError, match="boundary must be one of .* got 'neumann'"):
        DampedWave(boundary="neumann")
    with pytest.raises(ValueError, match=r"centre_range .* got \(20, 40\)"):
        DampedWave(grid_size=16)
    with pytest.raises(ValueError, match="centre_spread must be in"):
        LambdaOmega(grid_size=8, centre_spread=50.0)
