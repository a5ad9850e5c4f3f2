"""PDE-Net 2.0: SymNet's expression is exact, the model reproduces a known PDE, training recovers known
coefficients from noiseless synthetic data, and bad input is refused."""

import math

import pytest
import torch

from physml.models.pdenet import PDENet2, SymNet, block_loss, prediction_error, train_pdenet
from physml.operators import spectral_derivative


def set_symnet(symnet: SymNet, products, linear) -> None:
    """Hidden layer i multiplies inputs ``products[i]`` (a pair of names); the output adds
    ``linear`` {name: weight} and {"product i": weight}."""
    names = symnet.input_names
    n = len(names)
    with torch.no_grad():
        for parameter in symnet.parameters():
            parameter.zero_()
        for index, (first, second) in enumerate(products):
            symnet.layers[index].weight[0, names.index(first)] = 1.0
            symnet.layers[index].weight[1, names.index(second)] = 1.0
        for name, weight in linear.items():
            position = n + int(name.split()[1]) if name.startswith("product") else names.index(name)
            symnet.output.weight[0, position] = weight


def burgers_model(viscosity=0.05, scheme="central", points=32, hidden_layers=2):
    model = PDENet2(
        ("u", "v"),
        ("y", "x"),
        spacing=(2 * math.pi / points,) * 2,
        scheme=scheme,
        hidden_layers=hidden_layers,
        generator=torch.Generator().manual_seed(0),
    )
    set_symnet(
        model.symnets[0],
        [("u", "u_x"), ("v", "u_y")],
        {"product 0": -1.0, "product 1": -1.0, "u_xx": viscosity, "u_yy": viscosity},
    )
    set_symnet(
        model.symnets[1],
        [("u", "v_x"), ("v", "v_y")],
        {"product 0": -1.0, "product 1": -1.0, "v_xx": viscosity, "v_yy": viscosity},
    )
    return model


def smooth_velocity(points=32):
    step = 2 * math.pi / points
    y, x = torch.meshgrid(
        torch.arange(points, dtype=torch.float64) * step,
        torch.arange(points, dtype=torch.float64) * step,
        indexing="ij",
    )
    u = torch.sin(x) * torch.cos(y) + 0.3 * torch.cos(2 * x + y)
    v = -torch.cos(x) * torch.sin(y) + 0.2 * torch.sin(x - 2 * y)
    return torch.stack([u, v])[None]


def spectral_burgers(state, viscosity=0.05):
    lengths = [2 * math.pi, 2 * math.pi]
    u, v = state[:, 0], state[:, 1]

    def d(field, orders):
        return spectral_derivative(field, lengths, orders)

    rates = []
    for field in (u, v):
        rates.append(
            -u * d(field, [0, 1]) - v * d(field, [1, 0]) + viscosity * (d(field, [0, 2]) + d(field, [2, 0]))
        )
    return torch.stack(rates, dim=1)


def test_symnet_expansion_is_exact_up_to_its_degree():
    net = SymNet(["a", "b", "c"], hidden_layers=2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        net.output.weight.normal_(generator=torch.Generator().manual_seed(3))
        net.output.bias.fill_(0.25)
    polynomial = net.polynomial(max_degree=4)  # two product layers: degree 4 at most, so exact
    inputs = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    expanded = sum(
        value * torch.prod(inputs ** torch.tensor(monomial, dtype=torch.float64), dim=1)
        for monomial, value in polynomial.items()
    )
    assert float((expanded - net(inputs).detach()).abs().max()) < 1e-12
    assert polynomial[(0, 0, 0)] == pytest.approx(float(net(torch.zeros(1, 3, dtype=torch.float64)).detach()))


def test_forward_mode_slopes_match_autograd():
    net = SymNet(["a", "b", "c", "d"], hidden_layers=3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        net.output.weight.normal_(generator=torch.Generator().manual_seed(6))
    inputs = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(net(inputs).sum(), inputs)
    assert float((net.slopes(inputs, [1, 3]) - gradient[:, [1, 3]]).abs().max()) < 1e-13


def test_handset_model_is_burgers_and_prints_it():
    model = burgers_model()
    state = smooth_velocity()
    # Second-order accurate filters on a smooth field, 32 points per 2π.
    with torch.no_grad():
        error = (model.rate(state) - spectral_burgers(state)).abs().max() / spectral_burgers(
            state
        ).abs().max()
    assert float(error) < 2e-2
    terms = model.expression()
    assert terms["u"] == pytest.approx({"u u_x": -1.0, "v u_y": -1.0, "u_xx": 0.05, "u_yy": 0.05})
    assert terms["v"] == pytest.approx({"u v_x": -1.0, "v v_y": -1.0, "v_xx": 0.05, "v_yy": 0.05})
    assert model.equations(precision=2)[0] == "u_t = -1.00 u u_x - 1.00 v u_y + 0.05 u_xx + 0.05 u_yy"
    assert model.expression_residual(state) < 1e-12


def test_filters_converge_at_second_order_inside_the_model():
    errors = []
    for points in (32, 64):
        model = burgers_model(points=points)
        state = smooth_velocity(points)
        with torch.no_grad():
            errors.append(float((model.rate(state) - spectral_burgers(state)).abs().max()))
    assert math.log2(errors[0] / errors[1]) > 1.8


def test_pseudo_upwind_picks_the_learned_filter_or_its_mirror_by_the_slope():
    model = burgers_model(scheme="upwind")
    state = smooth_velocity()
    with torch.no_grad():
        central = burgers_model(scheme="central").rate(state)
        # Symmetric (initial, most accurate) filters equal their mirrors (to rounding): upwind is central.
        assert float((model.rate(state) - central).abs().max()) < 1e-12
        model.filters.free_moments.normal_(std=0.05, generator=torch.Generator().manual_seed(3))
        derivatives = model.filters(state)[0, 0]  # u, u_x, u_y, u_xx, u_yx, u_yy
        mirrored = model.filters.apply(state, model.filters.mirrored_first_derivatives())[0, 0]
        u, v = derivatives[0], model.filters(state)[0, 1, 0]
        # F = -u u_x - v u_y + ...: ∂F/∂u_x = -u, so the learned filter where u < 0, its mirror where u > 0.
        u_x = torch.where(-u > 0, derivatives[1], mirrored[1])
        u_y = torch.where(-v > 0, derivatives[2], mirrored[0])
        expected = -u * u_x - v * u_y + 0.05 * (derivatives[3] + derivatives[5])
        assert float((model.rate(state)[0, 0] - expected).abs().max()) < 1e-11
        assert float((u_x - derivatives[1]).abs().max()) > 1e-3  # the two sides do differ


def test_training_recovers_a_known_equation_from_noiseless_synthetic_data():
    """A teacher PDE-Net with known coefficients makes the data; the student, from its random start,
    must recover them (no regularisers, so the minimiser is exact)."""
    teacher = PDENet2(
        ("u",),
        ("x",),
        spacing=(2 * math.pi / 24,),
        hidden_layers=1,
        accuracy="frozen",
        scheme="central",
        time_step=0.01,
    )
    set_symnet(teacher.symnets[0], [("u", "u_x")], {"product 0": -1.0, "u_xx": 0.1})
    generator = torch.Generator().manual_seed(7)
    x = torch.arange(24, dtype=torch.float64) * 2 * math.pi / 24

    def sample_block(block, steps):
        amplitudes = torch.randn(6, 3, 1, generator=generator, dtype=torch.float64)
        modes = torch.arange(1, 4, dtype=torch.float64).view(1, 3, 1)
        initial = (amplitudes * torch.sin(modes * x + amplitudes)).sum(1, keepdim=True)  # (6, 1, 24)
        with torch.no_grad():
            return teacher(initial, steps)

    student = PDENet2(
        ("u",),
        ("x",),
        spacing=(2 * math.pi / 24,),
        hidden_layers=1,
        accuracy="frozen",
        scheme="central",
        time_step=0.01,
        generator=torch.Generator().manual_seed(8),
    )
    records = train_pdenet(
        student, sample_block, [2, 3], max_iterations=300, sparsity=0.0, moment_sparsity=0.0
    )
    assert [record.steps for record in records] == [1, 2, 3]
    assert records[-1].data_loss < 1e-14
    terms = student.expression(threshold=1e-6)["u"]
    assert set(terms) == {"u u_x", "u_xx"}
    assert terms["u u_x"] == pytest.approx(-1.0, abs=1e-6)
    assert terms["u_xx"] == pytest.approx(0.1, abs=1e-6)


def test_prediction_error_is_variance_normalised():
    reference = torch.randn(3, 4, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    assert float(prediction_error(reference, reference).abs().max()) == 0.0
    shifted = reference + 0.5
    error = prediction_error(shifted, reference)
    expected = 2 * 0.25 / reference.var(dim=(3, 4), unbiased=False).sum(2)
    assert float((error - expected).abs().max()) < 1e-12


def test_regularisers_and_block_loss():
    model = burgers_model(hidden_layers=2)
    observations = model(smooth_velocity(), steps=2).detach()
    with torch.no_grad():
        total, data = block_loss(model, observations, sparsity=0.005, moment_sparsity=1e-3)
        expected = 2 * 0.005 * float(model.symbolic_penalty())  # free moments are zero: no moment penalty
    assert float(data) < 1e-20  # the model generated these observations
    assert float(total) == pytest.approx(expected)


def test_bad_input_is_refused():
    model = burgers_model()
    with pytest.raises(
        ValueError, match=r"state must have shape \(batch, n_variables, y, x\) with n_variables = 2"
    ):
        model.rate(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="scheme must be 'upwind' or 'central', got 'lax'"):
        PDENet2(("u",), ("x",), spacing=(0.1,), scheme="lax")
    with pytest.raises(ValueError, match="time_step must be a positive number"):
        PDENet2(("u",), ("x",), spacing=(0.1,), time_step=0.0)
    with pytest.raises(ValueError, match="spacing must have one entry per spatial dim"):
        PDENet2(("u",), ("y", "x"), spacing=(0.1,))
    with pytest.raises(ValueError, match="max_iterations must be a positive integer, got 0"):
        train_pdenet(model, lambda block, steps: None, [1], max_iterations=0)
    with pytest.raises(ValueError, match=r"sample_block\(0, 1\) must return 2 frames, got 3"):
        train_pdenet(model, lambda block, steps: torch.zeros(3, 1, 2, 32, 32, dtype=torch.float64), [1])


def test_a_diverging_line_search_trial_is_rejected_not_propagated():
    """If the loss turns non-finite at a trial point, the line search backs off instead of carrying NaN
    into the parameters and every later block."""
    model = burgers_model(hidden_layers=2)
    state = smooth_velocity()
    observations = burgers_model(viscosity=0.08, hidden_layers=2)(state, steps=1).detach()
    calls = {"count": 0}
    original = model.rate

    def flaky_rate(field):
        calls["count"] += 1
        rate = original(field)
        return rate * math.nan if calls["count"] == 4 else rate  # one poisoned evaluation

    model.rate = flaky_rate
    records = train_pdenet(
        model,
        lambda block, steps: observations,
        [1],
        warmup=False,
        max_iterations=6,
        sparsity=0.0,
        moment_sparsity=0.0,
    )
    assert records[0].rejected_evaluations == 1
    assert math.isfinite(records[0].loss) and records[0].iterations > 1
    assert all(bool(torch.isfinite(parameter).all()) for parameter in model.parameters())
