"""Metrics and the restart-from-ground-truth rollouts."""

import math

import pytest
import torch

from physml.models.neural_ode import NeuralODE
from physml.training import (
    draw_restart_mask,
    log10_mse,
    mean_absolute_percentage_error,
    mean_squared_error,
    per_sample_mse,
    relative_parameter_error,
    restart_probability,
    rollout,
)


def test_metrics():
    prediction = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = torch.tensor([[1.0, 1.0], [3.0, 4.0]])
    assert float(mean_squared_error(prediction, target)) == 0.5
    assert log10_mse(prediction, target) == pytest.approx(math.log10(0.5))
    assert per_sample_mse(prediction.view(1, 2, 2), target.view(1, 2, 2)).tolist() == [[0.5, 0.5]]
    assert mean_absolute_percentage_error(prediction, target) == pytest.approx((0 + 1 + 0 + 0.25) / 4)
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error(prediction, target[0])


def test_relative_parameter_error():
    estimated = {"a": 1.1e-3, "b": torch.tensor([4.5e-3, 5.5e-3])}
    errors = relative_parameter_error(estimated, {"a": 1e-3, "b": 5e-3})
    assert errors == pytest.approx({"a": 0.1, "b": 0.1})
    with pytest.raises(ValueError, match=r"\['k'\]"):
        relative_parameter_error({"k": 1.0}, {"a": 1.0})


def test_restart_schedule():
    assert restart_probability(9, 0.99, 0.99, every=10) == 0.99
    assert restart_probability(10, 0.99, 0.99, every=10) == pytest.approx(0.99**2)
    assert restart_probability(5000, 0.99, 0.99, every=30, minimum=1e-3) > 0
    assert restart_probability(30 * 700, 0.99, 0.99, every=30, minimum=1e-3) == 0.0
    assert draw_restart_mask(10, 0.0, torch.Generator()) is None
    mask = draw_restart_mask(10, 1.0, torch.Generator())
    assert mask.tolist() == [False] + [True] * 8 + [False]


def decay_model():
    layer = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(-1.0)
    return NeuralODE(layer, method="euler")


def test_rollout_restarts_from_the_observations():
    model = decay_model()
    times = torch.arange(5, dtype=torch.float64) * 0.1
    observed = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64).view(1, 5, 1)
    free = rollout(model, observed, times)
    torch.testing.assert_close(free[0, :, 0], 0.9 ** torch.arange(5, dtype=torch.float64))
    everywhere = rollout(model, observed, times, torch.tensor([False, True, True, True, False]))
    # each prediction is one Euler step from the previous observation
    expected = torch.tensor([1.0, 0.9, 1.8, 2.7, 3.6], dtype=torch.float64)
    torch.testing.assert_close(everywhere[0, :, 0], expected)
    once = rollout(model, observed, times, torch.tensor([False, False, True, False, False]))
    torch.testing.assert_close(once[0, :, 0], torch.tensor([1.0, 0.9, 0.81, 2.7, 2.43], dtype=torch.float64))


def test_rollout_of_a_multi_environment_model_keeps_the_layout():
    from physml.nn.mlp import MLP
    from physml.nn.stacked import StackedModules

    model = NeuralODE(StackedModules.from_factory(lambda: MLP(2, 2, (4,)), count=3))
    observed = torch.randn(3, 2, 6, 2)
    assert rollout(model, observed, torch.linspace(0, 1, 6)).shape == (3, 2, 6, 2)
    with pytest.raises(ValueError, match="axis 2"):
        rollout(model, observed, torch.linspace(0, 1, 5))
