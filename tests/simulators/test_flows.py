"""2-D Navier–Stokes (vorticity) and the SST-like advection–diffusion benchmark.

Everything runs in float64 on tiny grids.  Tolerances come from the schemes: Crank–Nicolson's amplification
factor, the schemes' orders in time (``SCHEME_ORDERS``), spectral accuracy in space, and round-off.
"""

import json
import math

import numpy as np
import pytest
import torch

import physml
from physml.operators import spectral_derivative
from physml.systems import get_system
from simulators.navier_stokes import (
    PAPER_FORCINGS,
    SCHEME_ORDERS,
    NavierStokes2D,
    WarmUp,
    gaussian_random_field,
    paper_forcing,
    unit_square_grid,
)
from simulators.sst import SCHEME_ORDERS as SST_SCHEME_ORDERS
from simulators.sst import AdvectionDiffusionSST

F64 = torch.float64


def slope(steps, errors):
    """Least-squares slope of log(error) against log(step)."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def taylor_green(grid_size, mode=1):
    """ω = 2k² sin(kx) sin(ky), k = 2π·mode: ψ = sin(kx) sin(ky) and u·∇ω ≡ 0 (ω is a function of ψ)."""
    y, x = unit_square_grid(grid_size).mesh()
    k = 2 * math.pi * mode
    return (2 * k**2 * torch.sin(k * x) * torch.sin(k * y)).view(1, 1, grid_size, grid_size), k


def random_vorticity(grid_size, n=1, seed=0, scale=1.0):
    fields = gaussian_random_field(n, torch.Generator().manual_seed(seed), grid=unit_square_grid(grid_size))
    return scale * fields.unsqueeze(1)


# ---------------------------------------------------------------------------------------------------
# Navier–Stokes
# ---------------------------------------------------------------------------------------------------


def test_entry_points_resolve_to_the_two_systems():
    assert get_system("navier_stokes_2d") is NavierStokes2D
    assert get_system("sst_advection_diffusion") is AdvectionDiffusionSST


def test_taylor_green_decays_at_the_exact_rate():
    viscosity = 0.01
    omega0, k = taylor_green(16)
    system = NavierStokes2D(grid_size=16, forcing=None, viscosity=viscosity, warm_up=None)
    times = torch.linspace(0.0, 1.0, 5, dtype=F64)
    solution = system.simulate(omega0, times)  # dt = 1e-3, 1000 steps
    amplitude = (solution.ys * omega0).sum(dim=(-2, -1)).flatten() / (omega0**2).sum()
    # Shape preserved: the advection term vanishes and every other mode stays at round-off.
    assert (solution.ys - amplitude.view(-1, 1, 1, 1, 1) * omega0).abs().max() < 1e-12 * omega0.abs().max()
    # The Crank–Nicolson factor per step, (1 − h)/(1 + h) with h = ν k² dt, to round-off.
    h = viscosity * k**2 * 1e-3
    predicted = ((1 - h) / (1 + h)) ** (1000 * times)
    assert torch.allclose(amplitude, predicted, rtol=1e-12, atol=0)
    # Decay rate against the exact 2νk²: Crank–Nicolson's relative rate error is h²/3 ≈ 5e-8 here.
    rate = -torch.log(amplitude[-1]) / times[-1]
    exact_rate = 2 * viscosity * k**2
    assert abs(float(rate) / exact_rate - 1) < 1e-7


@pytest.mark.parametrize("scheme", sorted(SCHEME_ORDERS))
def test_taylor_green_error_is_second_order_in_time(scheme):
    # Without advection both schemes reduce to Crank–Nicolson on the viscous term: order 2.
    viscosity, final_time = 0.05, 1.0
    omega0, k = taylor_green(8)
    system = NavierStokes2D(grid_size=8, forcing=None, viscosity=viscosity, scheme=scheme, warm_up=None)
    exact = omega0 * math.exp(-2 * viscosity * k**2 * final_time)
    steps = [0.1, 0.05, 0.025]
    errors = [float((system.simulate(omega0, [0.0, final_time], options={"step_size": step}).ys[-1] - exact)
                    .abs().max()) for step in steps]
    assert abs(slope(steps, errors) - 2) < 0.3
    assert errors[-1] < 1e-2 * float(exact.abs().max())


@pytest.mark.parametrize("scheme", sorted(SCHEME_ORDERS))
def test_forced_nonlinear_flow_converges_at_the_scheme_order_to_the_forward_solution(scheme):
    # Reference: physml.solve_ode's RK4 on forward() with a far smaller step (its error ~ (T/512)^4 is
    # negligible), so convergence also shows forward() and simulate() discretise the same equation.
    system = NavierStokes2D(grid_size=16, forcing="f2", viscosity=0.01, scheme=scheme, warm_up=None)
    omega0 = random_vorticity(16, scale=10.0)
    # Uneven output intervals: simulate shortens the step in each to fit a whole number of steps (and
    # cnab2 switches to variable-step Adams–Bashforth coefficients), without losing the order.
    times = torch.tensor([0.0, 0.1, 0.25], dtype=F64)
    final_time = float(times[-1])
    reference = physml.solve_ode(system, omega0, times, method="rk4",
                                 options={"step_size": final_time / 512}).ys[-1]
    steps = [final_time / 16, final_time / 32, final_time / 64]
    errors = [float((system.simulate(omega0, times, options={"step_size": step}).ys[-1] - reference)
                    .abs().max()) for step in steps]
    assert abs(slope(steps, errors) - SCHEME_ORDERS[scheme]) < 0.3
    assert errors[-1] < 1e-2 * float(reference.abs().max())


def test_zero_mean_vorticity_is_preserved():
    system = NavierStokes2D(grid_size=16, forcing=["f1", "f3"], viscosity=[1e-3, 5e-3], warm_up=None)
    omega0 = random_vorticity(16, n=2, scale=5.0)
    solution = system.simulate(omega0, torch.tensor([0.0, 0.25, 0.5], dtype=F64), method="cnab2")
    means = solution.ys.mean(dim=(-2, -1)).abs()
    # Advection's mean is Σ k_x k_y |ω̂|²/|k|² − the same sum: zero up to round-off; the forcings have
    # zero mean and viscosity does not touch the k = 0 mode.
    assert float(means.max()) < 1e-13 * float(solution.ys.abs().max())
    assert float(system(torch.tensor(0.0), omega0).mean(dim=(-2, -1)).abs().max()) < 1e-12


def test_paper_forcings_are_the_reference_formulas_with_x_along_the_last_axis():
    n = 32
    coordinate = np.arange(n) / n
    y, x = np.meshgrid(coordinate, coordinate, indexing="ij")  # physml's [y, x] layout
    two_pi = 2 * np.pi
    formulas = {
        "f0": 0.1 * (np.sin(two_pi * (x + y)) + np.cos(two_pi * (x + y))),
        "f1": 0.1 * (np.sin(two_pi * (x + y)) + np.cos(two_pi * (x + 2 * y))),
        "f2": 0.1 * (np.sin(two_pi * (x + y)) + np.cos(two_pi * (2 * x + y))),
        "f3": 0.1 * (np.sin(two_pi * (x + 2 * y)) + np.cos(two_pi * (2 * x + y))),
    }
    assert set(formulas) == set(PAPER_FORCINGS)
    for name, expected in formulas.items():
        forcing = paper_forcing(name, unit_square_grid(n))
        assert np.abs(forcing.numpy() - expected).max() < 1e-15, name
    # The papers' arrays (meshgrid "ij" with their X first) are the transposes of physml's.
    big_x, big_y = np.meshgrid(coordinate, coordinate, indexing="ij")
    papers_f1 = 0.1 * (np.sin(two_pi * (big_x + big_y)) + np.cos(two_pi * (big_x + 2 * big_y)))
    assert np.abs(paper_forcing("f1").numpy().T - papers_f1).max() < 1e-15
    assert np.abs(paper_forcing("f1").numpy() - papers_f1).max() > 0.05
    system = NavierStokes2D(grid_size=n, forcing="f3", warm_up=None)
    assert np.abs(system.forcing[0, 0].numpy() - formulas["f3"]).max() < 1e-15


def test_random_fields_follow_the_prescribed_spectrum_and_are_deterministic_per_generator():
    alpha, tau, n = 2.5, 7.0, 128
    grid = unit_square_grid(32)
    fields = gaussian_random_field(n, torch.Generator().manual_seed(3), alpha, tau, grid)
    torch.manual_seed(99)  # the global generator must not matter
    again = gaussian_random_field(n, torch.Generator().manual_seed(3), alpha, tau, grid)
    other = gaussian_random_field(n, torch.Generator().manual_seed(4), alpha, tau, grid)
    assert torch.equal(fields, again) and not torch.allclose(fields, other)
    assert fields.shape == (n, 32, 32) and fields.dtype == F64

    power = (torch.fft.fft2(fields).abs() ** 2 / 32**4).mean(dim=0)  # E|û_k|² estimate per mode
    frequencies = torch.fft.fftfreq(32, d=1 / 32, dtype=F64)
    k_squared = (2 * math.pi) ** 2 * (frequencies.view(-1, 1) ** 2 + frequencies.view(1, -1) ** 2)
    expected = tau ** (2 * alpha - 2) * (k_squared + tau**2) ** (-alpha)  # σ² λ_k², σ = τ^(α − 1)
    nonzero = k_squared > 0
    assert float(power[~nonzero]) < 1e-28  # zero mean
    fitted = slope((k_squared + tau**2)[nonzero].numpy(), power[nonzero].numpy())
    assert abs(fitted + alpha) < 0.1
    # Energy ratio between two shells: 128 fields × ≥ 12 independent modes per shell give a few-%
    # sampling error, so 10 % is over three standard deviations.
    radius = (k_squared / (2 * math.pi) ** 2).sqrt()
    low, high = (radius >= 1) & (radius < 3), (radius >= 6) & (radius < 8)
    measured_ratio = power[low].sum() / power[high].sum()
    expected_ratio = expected[low].sum() / expected[high].sum()
    assert abs(float(measured_ratio / expected_ratio) - 1) < 0.1
    assert abs(float(power[nonzero].sum() / expected[nonzero].sum()) - 1) < 0.05


def test_initial_conditions_are_spun_up_deterministically():
    short = WarmUp(duration=0.05, forcing="f0", viscosity=1e-3)
    system = NavierStokes2D(grid_size=16, warm_up=short)
    first = system.sample_initial_conditions(3, torch.Generator().manual_seed(1))
    second = system.sample_initial_conditions(3, torch.Generator().manual_seed(1))
    raw = system.sample_initial_conditions(3, torch.Generator().manual_seed(1), warm_up=None)
    assert torch.equal(first, second) and first.shape == (3, 1, 16, 16)
    # The warm-up is the unforced-by-environment run under f0 from the raw field.
    forced = NavierStokes2D(grid_size=16, forcing="f0", warm_up=None).simulate(raw, [0.0, 0.05]).ys[-1]
    assert torch.allclose(first, forced, rtol=0, atol=1e-14)
    assert (first - raw).abs().max() > 1e-3


def test_batched_spin_up_gives_each_sample_its_own_spun_up_state():
    """Dataset generation draws per seed and spins a whole shard up at once: the states of a per-sample
    spin-up, to rounding (batched FFTs need not be bitwise equal)."""
    system = NavierStokes2D(grid_size=16, time_step=0.01, warm_up=WarmUp(duration=0.5, forcing="f0",
                                                                          viscosity=1e-3))
    seeds = (3, 11, 42)
    one_by_one = torch.cat([system.sample_initial_conditions(1, torch.Generator().manual_seed(seed))
                            for seed in seeds])
    raw = torch.cat([system.draw_initial_conditions(1, torch.Generator().manual_seed(seed))
                     for seed in seeds])
    assert torch.allclose(system.spin_up(raw), one_by_one, rtol=0, atol=1e-13)
    assert torch.equal(system.spin_up(raw, warm_up=None), raw)
    with pytest.raises(ValueError, match="fields must have shape"):
        system.spin_up(raw[:, 0])


def test_batched_environments_match_separate_runs():
    environments = [{"forcing": "f0", "viscosity": 1e-3}, {"forcing": "f3", "viscosity": 2e-3}]
    batched = NavierStokes2D.from_environments(environments, 2, grid_size=16, warm_up=None)
    initial = random_vorticity(16, n=2, scale=5.0)
    y0 = initial.repeat(2, 1, 1, 1)  # the papers reuse initial condition i in every environment
    times = torch.tensor([0.0, 0.05, 0.1], dtype=F64)
    for scheme in sorted(SCHEME_ORDERS):
        together = batched.simulate(y0, times, method=scheme).ys
        for index, environment in enumerate(environments):
            alone = NavierStokes2D(grid_size=16, warm_up=None, **environment)
            ys = alone.simulate(initial, times, method=scheme).ys
            assert torch.allclose(together[:, 2 * index:2 * index + 2], ys, rtol=0, atol=1e-13)
    # Different environments do give different trajectories.
    assert (together[-1, 0] - together[-1, 2]).abs().max() > 1e-4


def test_forward_is_differentiable_in_the_viscosity():
    system = NavierStokes2D(grid_size=8, forcing="f1", viscosity=0.01, learnable=["viscosity"], warm_up=None)
    omega0 = random_vorticity(8, scale=5.0)
    t = torch.tensor(0.0, dtype=F64)

    def three_euler_steps(viscosity):
        state = omega0
        for _ in range(3):
            rate = torch.func.functional_call(system, {"viscosity": viscosity}, (t, state))
            state = state + 0.01 * rate
        return state

    viscosity = system.viscosity.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(three_euler_steps, (viscosity,))
    loss = (three_euler_steps(system.viscosity) ** 2).sum()
    loss.backward()
    assert system.viscosity.grad is not None and float(system.viscosity.grad.abs()) > 0


def test_navier_stokes_builds_in_float32_and_still_rejects_a_mean_forcing():
    # The paper forcings are zero-mean up to float32 rounding (~3e-9), which must not count as a mean.
    system = NavierStokes2D(dtype=torch.float32)
    assert system(torch.tensor(0.0), torch.zeros(1, 1, 32, 32)).dtype == torch.float32
    with pytest.raises(ValueError, match="forcing must have zero mean"):
        NavierStokes2D(grid_size=8, forcing=0.01 + torch.zeros(8, 8), dtype=torch.float32)


def test_navier_stokes_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="forcing must be one of .*'f9'"):
        NavierStokes2D(forcing="f9")
    with pytest.raises(ValueError, match="viscosity must be >= 0"):
        NavierStokes2D(viscosity=-1e-3)
    with pytest.raises(ValueError, match="scheme must be one of .*'euler'"):
        NavierStokes2D(scheme="euler")
    with pytest.raises(ValueError, match="grid_size must be"):
        NavierStokes2D(grid_size=3)
    with pytest.raises(ValueError, match="forcing must have zero mean"):
        NavierStokes2D(grid_size=8, forcing=torch.ones(8, 8, dtype=F64))
    with pytest.raises(ValueError, match=r"forcing field must have shape \(8, 8\)"):
        NavierStokes2D(grid_size=8, forcing=torch.zeros(4, 4, dtype=F64))
    with pytest.raises(ValueError, match="disagree on the batch size"):
        NavierStokes2D(grid_size=8, forcing=["f0", "f1"], viscosity=[1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="warm_up duration"):
        WarmUp(duration=-1.0)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        gaussian_random_field(2, torch.Generator(), alpha=-1.0, grid=unit_square_grid(8))
    system = NavierStokes2D(grid_size=8, warm_up=None)
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 1, 8, 8\), got \(2, 8, 8\)"):
        system(torch.tensor(0.0), torch.zeros(2, 8, 8, dtype=F64))
    y0 = torch.zeros(1, 1, 8, 8, dtype=F64)
    with pytest.raises(ValueError, match="times must be finite and strictly increasing"):
        system.simulate(y0, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"options\['step_size'\] must be a positive"):
        system.simulate(y0, [0.0, 1.0], options={"step_size": 0.0})
    with pytest.raises(ValueError, match="accept only 'step_size'"):
        system.simulate(y0, [0.0, 1.0], options={"rtol": 1e-3})


def papers_update(vorticity, forcing, viscosity, step, count):
    """The LEADS/CoDA (FNO-code) update written out with numpy's full complex FFTs, in physml's [y, x] layout.

    Wavenumbers 0…N/2−1, −N/2…−1 (Nyquist kept), Laplacian with its k = 0 entry set to 1, the product's
    modes with |k| > (2/3)(N/2) removed, then
    ω̂ ← (−dt F̂ + dt f̂ + (1 − dt ν |k|²/2) ω̂) / (1 + dt ν |k|²/2).
    """
    n = vorticity.shape[-1]
    k = np.concatenate([np.arange(0, n // 2), np.arange(-n // 2, 0)])
    k_y, k_x = np.meshgrid(k, k, indexing="ij")
    laplacian = 4 * np.pi**2 * (k_x**2 + k_y**2)
    laplacian[0, 0] = 1.0
    keep = (np.abs(k_x) <= 2 / 3 * (n // 2)) & (np.abs(k_y) <= 2 / 3 * (n // 2))
    spectrum, forcing_spectrum = np.fft.fft2(vorticity), np.fft.fft2(forcing)
    for _ in range(count):
        stream = spectrum / laplacian
        u = np.fft.ifft2(2j * np.pi * k_y * stream)
        v = np.fft.ifft2(-2j * np.pi * k_x * stream)
        d_dx = np.fft.ifft2(2j * np.pi * k_x * spectrum)
        d_dy = np.fft.ifft2(2j * np.pi * k_y * spectrum)
        advection = keep * np.fft.fft2(u * d_dx + v * d_dy)
        half = 0.5 * step * viscosity * laplacian
        spectrum = (-step * advection + step * forcing_spectrum + (1 - half) * spectrum) / (1 + half)
    return np.fft.ifft2(spectrum).real


def test_fno_scheme_is_the_papers_update():
    # The papers keep the Nyquist mode in first derivatives and physml drops it; with no Nyquist content
    # (never created: the product's Nyquist mode is removed by the 2/3 rule) the two updates coincide.
    # The papers' Laplacian[0, 0] = 1 would also damp a non-zero mean; the field here has zero mean.
    omega0 = random_vorticity(32, scale=5.0)
    spectrum = torch.fft.fft2(omega0)
    spectrum[..., 16, :] = 0
    spectrum[..., :, 16] = 0
    omega0 = torch.fft.ifft2(spectrum).real
    system = NavierStokes2D(grid_size=32, forcing="f3", viscosity=1e-3, warm_up=None)
    ours = system.simulate(omega0, [0.0, 0.02]).ys[-1, 0, 0].numpy()
    theirs = papers_update(omega0[0, 0].numpy(), paper_forcing("f3").numpy(), 1e-3, 1e-3, 20)
    assert np.abs(ours - theirs).max() < 1e-13 * np.abs(theirs).max()


def test_simulate_follows_the_input_dtype_and_is_differentiable():
    system = NavierStokes2D(grid_size=8, forcing="f0", viscosity=0.01, learnable=["viscosity"], warm_up=None)
    omega0 = random_vorticity(8, scale=5.0)
    single = system.simulate(omega0.float(), [0.0, 0.01], method="cnab2")
    assert single.ys.dtype == torch.float32
    assert system(torch.tensor(0.0), omega0.float()).dtype == torch.float32
    with torch.no_grad():
        double = system.simulate(omega0, [0.0, 0.01]).ys[-1]
    # float32 round-off (~1e-7 relative) accumulated over 10 steps.
    assert float((single.ys[-1].detach().double() - double).abs().max()) < 1e-5

    def loss(method):
        return (system.simulate(omega0, [0.0, 0.005], method=method).ys[-1] ** 2).sum()

    # Backpropagation through five Crank–Nicolson–Adams–Bashforth steps against central differences
    # (truncation ~ δ² × third derivative and rounding ~ 1e-16 L / δ: both far below 1e-7 relative).
    gradient, = torch.autograd.grad(loss("cnab2"), system.viscosity)
    delta, centre = 1e-7, float(system.viscosity.detach())
    values = []
    with torch.no_grad():
        for shifted in (centre + delta, centre - delta):
            system.viscosity.fill_(shifted)
            values.append(float(loss("cnab2")))
        system.viscosity.fill_(centre)
    finite_difference = (values[0] - values[1]) / (2 * delta)
    assert abs(float(gradient) / finite_difference - 1) < 1e-6


def test_velocity_and_description():
    omega0, k = taylor_green(16)
    system = NavierStokes2D(grid_size=16, forcing=["f0", "f1"], viscosity=1e-3, warm_up=None)
    velocity = system.velocity(omega0)
    y, x = unit_square_grid(16).mesh()
    # ψ = sin(kx) sin(ky): u = ∂ψ/∂y, v = −∂ψ/∂x.
    assert torch.allclose(velocity[0, 0], k * torch.sin(k * x) * torch.cos(k * y), atol=1e-12)
    assert torch.allclose(velocity[0, 1], -k * torch.cos(k * x) * torch.sin(k * y), atol=1e-12)
    description = json.loads(json.dumps(system.describe()))
    assert description["options"]["forcing"] == ["f0", "f1"] and description["options"]["scheme_order"] == 1
    assert description["grid"]["shape"] == [16, 16]
    sst = json.loads(json.dumps(AdvectionDiffusionSST(grid_shape=(16, 16), grid_spacing=20.0,
                                                      eddy_wavelength=100.0).describe()))
    assert sst["parameters"]["diffusivity"]["units"] == "km2 day-1" and sst["grid"]["units"] == "km"
    assert sst["state"][0]["standard_name"] == "sea_surface_temperature"


# ---------------------------------------------------------------------------------------------------
# SST-like advection–diffusion
# ---------------------------------------------------------------------------------------------------

SPACING = 10.0  # km


def translated_gaussian(system, time, centre, width, velocity, diffusivity, gradient=0.0):
    """Exact solution from a Gaussian bump: translated, spread, plus the uniform source −V G t."""
    y, x = system.grid.mesh()
    variance = width**2 + 2 * diffusivity * time
    distance = (x - centre[1] - velocity[0] * time) ** 2 + (y - centre[0] - velocity[1] * time) ** 2
    bump = width**2 / variance * torch.exp(-distance / (2 * variance))
    return (290.0 + bump - gradient * velocity[1] * time).view(1, 1, *system.grid.shape)


def gaussian_case(grid_points, gradient=0.0):
    # A 30 km bump in a 640 km box, placed so that it sits at the box centre half-way through: the
    # nearest periodic image stays ≥ 290 km away, a relative contribution below
    # exp(−290²/(2·1300)) ≈ 1e-14 (variance 30² + 2κT = 1300 km² at the end).
    velocity, diffusivity, final_time = (15.0, -10.0), 50.0, 4.0
    system = AdvectionDiffusionSST(grid_shape=(grid_points, grid_points), grid_spacing=640.0 / grid_points,
                                   velocity_rms=0.0, mean_velocity_x=velocity[0], mean_velocity_y=velocity[1],
                                   diffusivity=diffusivity, mean_temperature_gradient=gradient,
                                   eddy_wavelength=200.0)
    centre = (320.0 - velocity[1] * final_time / 2, 320.0 - velocity[0] * final_time / 2)
    y0 = translated_gaussian(system, 0.0, centre, 30.0, velocity, diffusivity, gradient)
    exact = translated_gaussian(system, final_time, centre, 30.0, velocity, diffusivity, gradient)
    return system, y0, exact


def test_gaussian_is_translated_and_spread_with_fourth_order_time_error():
    # 96 points: the 2/3-rule cut-off k_c = π/(1.5 dx) gives (k_c σ)²/2 ≈ 44, a spatial error ~e^−44.
    # Steps up to 0.25 day keep |U·k| dt ≤ 2 inside RK4's imaginary-axis stability limit 2√2.
    system, y0, exact = gaussian_case(96, gradient=-0.01)
    steps = [0.25, 0.125, 0.0625]
    errors = [float((system.simulate(y0, [0.0, 4.0], options={"step_size": step}).ys[-1] - exact).abs().max())
              for step in steps]
    assert abs(slope(steps, errors) - SST_SCHEME_ORDERS["ifrk4"]) < 0.3
    # RK4's global error T (kU)^5 dt^4 / 120 with kU ≈ U/σ ≈ 0.6 day⁻¹ predicts ~4e-8 K at the last step.
    assert errors[-1] < 1e-6  # on a 1 K bump, while the source moved the mean by −0.4 K exactly
    diffusion_only = AdvectionDiffusionSST(grid_shape=(96, 96), grid_spacing=640.0 / 96, velocity_rms=0.0,
                                           diffusivity=50.0, eddy_wavelength=200.0)
    y0 = translated_gaussian(diffusion_only, 0.0, (320.0, 320.0), 30.0, (0.0, 0.0), 50.0)
    exact = translated_gaussian(diffusion_only, 4.0, (320.0, 320.0), 30.0, (0.0, 0.0), 50.0)
    # The integrating factor makes diffusion exact: round-off on values near 290 K.
    assert float((diffusion_only.simulate(y0, [0.0, 4.0]).ys[-1] - exact).abs().max()) < 1e-12


def test_gaussian_error_falls_spectrally_with_resolution():
    points = (24, 32, 48)
    errors = []
    for count in points:
        system, y0, exact = gaussian_case(count)
        # The time error at dt = 1/64 day (~1e-10 by the estimate above) stays below the space error.
        final = system.simulate(y0, [0.0, 4.0], options={"step_size": 1 / 64}).ys[-1]
        errors.append(float((final - exact).abs().max()))
    # Spectral accuracy: the error is the spectrum beyond the cut-off, ~exp(−(k_c σ)²/2) with k_c ∝ N, so
    # the effective algebraic order log(e_i / e_j) / log(N_j / N_i) keeps growing with N (it is fixed for
    # a finite-difference scheme) and already exceeds 8 ...
    orders = [math.log(errors[i] / errors[i + 1]) / math.log(points[i + 1] / points[i]) for i in range(2)]
    assert orders[0] > 8 and orders[1] > orders[0] + 2
    assert errors[-1] < 1e-6


def small_sst(**values):
    options = dict(grid_shape=(32, 32), grid_spacing=20.0, eddy_wavelength=200.0, warm_up=0.0)
    options.update(values)
    return AdvectionDiffusionSST(**options)


def test_sst_velocity_is_divergence_free_with_the_prescribed_rms_and_decorrelates():
    system = small_sst(mean_velocity_x=3.0, mean_velocity_y=-1.0)
    system.set_flow(**system.sample_flow(4, torch.Generator().manual_seed(0)))
    tau = float(system.flow_decorrelation_time)
    times = torch.tensor([0.0, 0.05 * tau, 5 * tau], dtype=F64)
    velocity = system.velocity(times)
    assert velocity.shape == (3, 4, 2, 32, 32)
    length = 32 * 20.0
    du_dx = spectral_derivative(velocity[:, :, 0], [length, length], [0, 1])
    dv_dy = spectral_derivative(velocity[:, :, 1], [length, length], [1, 0])
    assert float((du_dx + dv_dy).abs().max()) < 1e-13 * float(du_dx.abs().max())
    mean = velocity.mean(dim=(-2, -1))
    assert torch.allclose(mean, torch.tensor([3.0, -1.0], dtype=F64).expand_as(mean), rtol=0, atol=1e-13)
    eddies = velocity - mean[..., None, None]
    rms = eddies.pow(2).sum(dim=2).mean(dim=(-2, -1)).sqrt()
    assert torch.allclose(rms, torch.full_like(rms, 12.0), rtol=1e-12)  # exact for every realisation

    def correlation(a, b):
        return float((a * b).sum() / (a.pow(2).sum() * b.pow(2).sum()).sqrt())

    assert correlation(eddies[0], eddies[1]) > 0.9
    # Ensemble correlation exp(−t²/2τ²) ≈ 4e-6 at 5τ; four realisations of ~50 energetic modes leave a
    # sampling spread near 0.1.
    assert abs(correlation(eddies[0], eddies[2])) < 0.4
    # The single-time call gives the same field.
    assert torch.equal(system.velocity(0.0), velocity[0])


def test_sst_tracer_mean_behaves_as_designed():
    generator = torch.Generator().manual_seed(5)
    times = torch.tensor([0.0, 1.0, 2.0], dtype=F64)
    # Divergence-free eddies and diffusion conserve the mean; the mean-gradient source averages to zero.
    conserving = small_sst()
    y0 = conserving.sample_initial_conditions(2, generator)
    ys = conserving.simulate(y0, times).ys
    assert float((ys.mean(dim=(-2, -1)) - 290.0).abs().max()) < 1e-11
    assert float((ys[-1] - ys[0]).abs().max()) > 1e-2  # the field itself does evolve
    # Relaxation: the mean anomaly decays exactly as exp(−λt) (the integrating factor is exact on it).
    relaxing = small_sst(relaxation_rate=0.1)
    relaxing.set_flow(conserving.flow_phases, conserving.flow_frequency_draws)
    ys = relaxing.simulate(y0 + 1.0, times).ys
    expected = torch.exp(-0.1 * times).view(-1, 1, 1)
    assert torch.allclose(ys.mean(dim=(-2, -1)) - 290.0, expected.expand(-1, 2, 1), rtol=0, atol=1e-11)
    # A uniform northward drift V across the gradient G shifts the mean by −G V t.
    drifting = small_sst(mean_velocity_y=4.0, mean_temperature_gradient=-0.02)
    drifting.set_flow(conserving.flow_phases, conserving.flow_frequency_draws)
    ys = drifting.simulate(y0, times).ys
    shift = (0.02 * 4.0 * times).view(-1, 1, 1)
    assert torch.allclose(ys.mean(dim=(-2, -1)) - 290.0, shift.expand(-1, 2, 1), rtol=0, atol=1e-11)


def test_sst_initial_conditions_are_deterministic_and_install_the_flows():
    system = small_sst(initial_anomaly_rms=0.7)
    first = system.sample_initial_conditions(3, torch.Generator().manual_seed(2))
    phases = system.flow_phases.clone()
    torch.manual_seed(7)
    second = system.sample_initial_conditions(3, torch.Generator().manual_seed(2))
    assert torch.equal(first, second) and torch.equal(phases, system.flow_phases)
    assert first.shape == (3, 1, 32, 32) and system.flow_batch_size == 3
    # Without warm-up the anomaly has exactly the requested root-mean-square.
    anomaly_rms = (first - 290.0).pow(2).mean(dim=(-2, -1)).sqrt()
    assert torch.allclose(anomaly_rms, torch.full_like(anomaly_rms, 0.7), rtol=1e-12)
    spun_up = small_sst(warm_up=1.0).sample_initial_conditions(3, torch.Generator().manual_seed(2))
    assert (spun_up - first).abs().max() > 1e-3


def test_sst_batched_parameters_match_separate_runs():
    generator = torch.Generator().manual_seed(11)
    batched = small_sst(diffusivity=[1.0, 8.0], mean_temperature_gradient=[-0.01, 0.02])
    y0 = batched.sample_initial_conditions(2, generator)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    together = batched.simulate(y0, times).ys
    for index, (diffusivity, gradient) in enumerate([(1.0, -0.01), (8.0, 0.02)]):
        alone = small_sst(diffusivity=diffusivity, mean_temperature_gradient=gradient)
        alone.set_flow(batched.flow_phases[index:index + 1], batched.flow_frequency_draws[index:index + 1])
        ys = alone.simulate(y0[index:index + 1], times).ys
        assert torch.allclose(together[:, index:index + 1], ys, rtol=0, atol=1e-11)


def test_sst_forward_and_simulate_agree():
    system = small_sst()
    y0 = system.sample_initial_conditions(1, torch.Generator().manual_seed(3))
    times = torch.tensor([0.0, 1.0], dtype=F64)
    scheme = system.simulate(y0, times, options={"step_size": 1 / 16}).ys[-1]
    generic = system.simulate(y0, times, method="rk4", options={"step_size": 1 / 16}).ys[-1]
    change = float((scheme - y0).abs().max())
    # Both fourth order at Courant ≈ 0.05: each is within ~1e-7 of the truth relative to the change.
    assert float((scheme - generic).abs().max()) < 1e-6 * change


def test_sst_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="eddy_wavelength must be at least 4 grid spacings"):
        small_sst(eddy_wavelength=50.0)
    with pytest.raises(ValueError, match="diffusivity must be >= 0"):
        small_sst(diffusivity=-1.0)
    with pytest.raises(ValueError, match="grid_shape must be a pair"):
        small_sst(grid_shape=(4, 4))
    with pytest.raises(ValueError, match="time_step must be a positive"):
        small_sst(time_step=0.0)
    system = small_sst()
    with pytest.raises(RuntimeError, match="no flow realisation is installed"):
        system.velocity(0.0)
    with pytest.raises(ValueError, match=r"phases must have shape \(n, 32, 17\)"):
        system.set_flow(torch.zeros(2, 32, 32, dtype=F64), torch.zeros(2, 32, 17, dtype=F64))
    y0 = system.sample_initial_conditions(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="y0 has batch size 1 but the installed flows have 2"):
        system.simulate(y0[:1], [0.0, 1.0])
    with pytest.raises(ValueError, match="times must be 1-D with at least two entries"):
        system.simulate(y0, [0.0])
    with pytest.raises(ValueError, match="t must be a finite number"):
        system.velocity(float("nan"))
