"""Contract of the ODE entry points: time window, per-sample control, shapes, statistics, bad input."""

import math

import pytest
import torch

import physml

from .problems import RecordingField, linear_exact, linear_field, van_der_pol

ALL_METHODS = sorted(physml.METHODS)
PER_SAMPLE_METHODS = ["bosh3", "dopri5", "tsit5", "dopri8"]


def _options(method):
    return dict(step_size=0.07) if not physml.METHODS[method]["adaptive"] else None


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("reverse", [False, True])
def test_vector_field_is_never_evaluated_outside_the_interval(method, reverse):
    times = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    if reverse:
        times = times.flip(0)
    field = RecordingField(lambda t, y: -2.0 * y + torch.cos(3 * t))
    solution = physml.solve_ode(field, torch.ones(3, dtype=torch.float64), times, method=method,
                                rtol=1e-5, atol=1e-7, options=_options(method))
    assert solution.success
    assert len(field.times) >= solution.stats["nfe"] > 0
    assert min(field.times) >= 0.0 and max(field.times) <= 1.0


@pytest.mark.parametrize("method", PER_SAMPLE_METHODS)
@pytest.mark.parametrize("reverse", [False, True])
def test_per_sample_and_adjoint_stay_inside_the_interval(method, reverse):
    times = torch.tensor([0.2, 0.9], dtype=torch.float64)
    if reverse:
        times = times.flip(0)
    field = RecordingField(lambda t, y, rate: -rate[:, None] * y)
    rates = torch.tensor([0.5, 5.0, 50.0], dtype=torch.float64)
    physml.solve_ode(field, torch.ones(3, 2, dtype=torch.float64), times, method=method, per_sample=True, args=rates)
    assert min(field.times) >= 0.2 and max(field.times) <= 0.9

    module = torch.nn.Linear(2, 2).double()
    recorder = RecordingField(lambda t, y: torch.tanh(module(y)) * (1 + t))
    ys = physml.odeint_adjoint(recorder, torch.ones(3, 2, dtype=torch.float64), times, method=method,
                               adjoint_params=tuple(module.parameters()))
    ys[-1].sum().backward()
    assert module.weight.grad is not None
    assert min(recorder.times) >= 0.2 and max(recorder.times) <= 0.9


def test_schedule_undefined_outside_the_window_solves_cleanly():
    # A VP-SDE-like probability-flow field whose schedule is NaN for t < 0.001 (torchdiffeq #78).
    def field(t, y):
        sigma = torch.where(t >= 1e-3, torch.sqrt(t - 1e-3 + 1e-12), torch.full_like(t, float("nan")))
        return -0.5 * y / (1 + sigma)

    times = torch.tensor([1.0, 1e-3], dtype=torch.float64)
    solution = physml.solve_ode(field, torch.ones(4, dtype=torch.float64), times, method="dopri5")
    assert solution.success and torch.isfinite(solution.ys).all()


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "rk4", "kvaerno3"])
def test_decreasing_time_matches_exact_solution(method):
    times = torch.linspace(3.0, 0.0, 7, dtype=torch.float64)
    y_end = torch.tensor([0.3, -1.2], dtype=torch.float64)
    exact = linear_exact(y_end, times - 3.0)
    solution = physml.solve_ode(linear_field, y_end, times, method=method, rtol=1e-9, atol=1e-11,
                                options=dict(step_size=0.01) if method == "rk4" else None)
    assert torch.allclose(solution.ys, exact, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3,), (4, 2), (2, 3, 8, 8)])
def test_any_state_shape_and_dtype(shape, dtype):
    generator = torch.Generator().manual_seed(3)
    y0 = torch.randn(*shape, generator=generator).to(dtype)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=dtype)
    solution = physml.solve_ode(lambda t, y: -y * (1 + t), y0, times, rtol=1e-6, atol=1e-8)
    assert solution.ys.shape == (3, *shape) and solution.ys.dtype == dtype and solution.ys.device == y0.device
    assert solution.ts.dtype == torch.float64
    exact = y0 * math.exp(-(1.0 + 0.5))  # y = y0 exp(-(t + t²/2))
    tolerance = 1e-4 if dtype == torch.float32 else 1e-6
    assert torch.allclose(solution.ys[-1], exact, atol=tolerance)


def test_field_receives_time_as_tensor_of_state_dtype():
    seen = []

    def field(t, y):
        seen.append((t.shape, t.dtype))
        return -y

    physml.solve_ode(field, torch.ones(2, 3), torch.tensor([0.0, 1.0]))
    physml.solve_ode(lambda t, y: seen.append((t.shape, t.dtype)) or -y, torch.ones(2, 3),
                     torch.tensor([0.0, 1.0]), per_sample=True)
    assert seen[0] == (torch.Size([]), torch.float32)
    assert seen[-1] == (torch.Size([2]), torch.float32)


@pytest.mark.parametrize("method", PER_SAMPLE_METHODS)
def test_per_sample_on_identical_members_matches_batch_control(method):
    y0 = torch.tensor([[2.0, 0.0]] * 4, dtype=torch.float64)
    times = torch.linspace(0, 6, 13, dtype=torch.float64)
    field = van_der_pol(3.0)
    batch = physml.solve_ode(field, y0, times, method=method, rtol=1e-7, atol=1e-9)
    per_sample = physml.solve_ode(field, y0, times, method=method, rtol=1e-7, atol=1e-9, per_sample=True)
    assert per_sample.stats["n_steps"].shape == (4,)
    assert (per_sample.stats["n_steps"] == batch.stats["n_steps"]).all()
    assert torch.allclose(per_sample.ys, batch.ys, rtol=1e-10, atol=1e-12)


def test_per_sample_takes_fewer_steps_on_a_mixed_batch():
    mu = torch.tensor([0.2] * 15 + [15.0], dtype=torch.float64)
    y0 = torch.tensor([[2.0, 0.0]] * 16, dtype=torch.float64)
    times = torch.linspace(0, 10, 21, dtype=torch.float64)

    def field(t, y, mu):
        return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], dim=-1)

    batch = physml.solve_ode(lambda t, y: field(t, y, mu), y0, times, rtol=1e-6, atol=1e-8)
    per_sample = physml.solve_ode(field, y0, times, per_sample=True, args=mu, rtol=1e-6, atol=1e-8)
    batch_member_steps = batch.stats["n_steps"] * 16
    per_sample_member_steps = int(per_sample.stats["n_steps"].sum())
    # Measured: 1 053 member-steps against 1 888 with one shared step size.
    assert per_sample_member_steps < 0.7 * batch_member_steps
    # Each member is as accurate as its own tolerance allows: compare with solving it alone.
    for index in (0, 15):
        alone = physml.solve_ode(lambda t, y: field(t, y, mu[index: index + 1]), y0[index: index + 1], times,
                                 rtol=1e-6, atol=1e-8)
        assert torch.allclose(per_sample.ys[:, index], alone.ys[:, 0], rtol=1e-9, atol=1e-9)
        assert int(per_sample.stats["n_steps"][index]) == alone.stats["n_steps"]


def test_max_steps_returns_partial_solution_with_status():
    times = torch.linspace(0, 10, 11, dtype=torch.float64)
    solution = physml.solve_ode(van_der_pol(5.0), torch.tensor([2.0, 0.0], dtype=torch.float64), times,
                                method="dopri5", max_steps=20)
    assert solution.status == "max_steps_reached" and not solution.success
    assert solution.stats["n_steps"] == 20
    reached = torch.isfinite(solution.ys).all(dim=-1)
    assert reached[0] and not reached[-1]
    with pytest.raises(RuntimeError, match="max_steps_reached"):
        physml.odeint(van_der_pol(5.0), torch.tensor([2.0, 0.0], dtype=torch.float64), times,
                      options=dict(max_num_steps=20))


def test_per_sample_max_steps_flags_unfinished_members():
    mu = torch.tensor([0.1, 30.0], dtype=torch.float64)

    def field(t, y, mu):
        return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], dim=-1)

    solution = physml.solve_ode(field, torch.tensor([[2.0, 0.0]] * 2, dtype=torch.float64),
                                torch.tensor([0.0, 40.0], dtype=torch.float64), per_sample=True, args=mu,
                                max_steps=400)  # measured need: 223 and 904 steps
    assert solution.status == "max_steps_reached"
    assert solution.stats["success"].tolist() == [True, False]
    assert torch.isfinite(solution.ys[-1, 0]).all() and torch.isnan(solution.ys[-1, 1]).all()


def test_step_t_and_jump_t_are_hit():
    switch = 0.37
    field = RecordingField(lambda t, y: torch.where(t < switch, torch.ones_like(y), -torch.ones_like(y)))
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    solution = physml.solve_ode(field, torch.zeros(1, dtype=torch.float64), times, method="dopri5",
                                options=dict(jump_t=[switch]))
    assert switch in field.times
    assert torch.allclose(solution.ys[-1], torch.tensor([switch - (1 - switch)], dtype=torch.float64), atol=1e-9)


def test_statistics_count_every_evaluation():
    field = RecordingField(lambda t, y: -y)
    solution = physml.solve_ode(field, torch.ones(2), torch.tensor([0.0, 5.0]), method="dopri5")
    assert solution.stats["nfe"] == len(field.times)
    assert solution.stats["n_steps"] == solution.stats["n_accepted"] + solution.stats["n_rejected"]
    # FSAL: six new evaluations per step, plus f(t0) and the initial step-size probe.
    assert solution.stats["nfe"] == 2 + 6 * solution.stats["n_steps"]


# --- bad input ----------------------------------------------------------------------------------

def _decay(t, y):
    return -y


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(y0=torch.tensor([1.0, float("nan")])), ValueError, "y0 must be finite"),
        (dict(y0=torch.tensor([1.0, float("inf")])), ValueError, "y0 must be finite"),
        (dict(y0=[1.0, 2.0]), TypeError, "y0 must be a torch.Tensor"),
        (dict(y0=torch.tensor([1, 2])), TypeError, "y0 must have a floating-point dtype"),
        (dict(t=torch.tensor([0.0])), ValueError, "at least 2 time points"),
        (dict(t=torch.tensor([0.0, 1.0, 0.5])), ValueError, "strictly increasing or strictly decreasing"),
        (dict(t=torch.tensor([0.0, 0.0])), ValueError, "strictly increasing"),
        (dict(t=torch.tensor([[0.0, 1.0]])), ValueError, "t must be one-dimensional"),
        (dict(t=torch.tensor([0.0, float("nan")])), ValueError, "t must be finite"),
        (dict(method="rk45"), ValueError, "unknown method 'rk45'; known methods are: bosh3, dopri5"),
        (dict(rtol=-1.0), ValueError, "rtol must be a positive finite number"),
        (dict(atol="tight"), TypeError, "atol must be a positive number"),
        (dict(max_steps=0), ValueError, "max_steps must be a positive integer"),
        (dict(options=dict(stepsize=0.1)), ValueError, r"options \['stepsize'\] are not understood"),
        (dict(method="rk4", options=dict(step_size=-0.1)), ValueError, r"options\['step_size'\]"),
        (dict(func=lambda t, y: y[:1]), ValueError, r"func\(t, y0\) returned shape \(1,\), expected"),
        (dict(func=lambda t, y: 1.0), TypeError, r"func\(t, y0\) must return a torch.Tensor"),
        (dict(per_sample=True, method="rk4"), ValueError, "per_sample=True needs an adaptive explicit method"),
        (dict(per_sample=True, y0=torch.tensor(1.0)), ValueError, "leading batch dimension"),
        (dict(per_sample=True, adjoint=True, adjoint_params=()), ValueError, "cannot be combined with adjoint"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs, error, match):
    arguments = dict(func=_decay, y0=torch.ones(2), t=torch.tensor([0.0, 1.0]))
    arguments.update(kwargs)
    func, y0, t = arguments.pop("func"), arguments.pop("y0"), arguments.pop("t")
    with pytest.raises(error, match=match):
        physml.solve_ode(func, y0, t, **arguments)


def test_time_on_another_device_is_rejected():
    if not torch.cuda.is_available():
        meta_times = torch.tensor([0.0, 1.0], device="meta")
        with pytest.raises(ValueError, match="t is on device meta but y0 is on cpu"):
            physml.solve_ode(_decay, torch.ones(2), meta_times)
    else:  # pragma: no cover - exercised on GPU machines
        with pytest.raises(ValueError, match="same device"):
            physml.solve_ode(_decay, torch.ones(2), torch.tensor([0.0, 1.0], device="cuda"))


def test_module_on_another_device_is_rejected():
    module = torch.nn.Linear(2, 2).to("meta")
    with pytest.raises(ValueError, match="func parameter 'weight' is on meta but y0 is on cpu"):
        physml.solve_ode(module, torch.ones(2), torch.tensor([0.0, 1.0]))
