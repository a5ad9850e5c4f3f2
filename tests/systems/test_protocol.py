"""The System protocol and the registry that finds systems through entry points."""

import pytest
import torch

from physml.systems import Grid, System, available_systems, get_system, register_system
from physml.systems import ParameterSpec, Variable


def test_registry_finds_the_pendulum_through_its_entry_point():
    assert "damped_pendulum" in available_systems()
    cls = get_system("damped_pendulum")
    assert issubclass(cls, System) and cls.name == "damped_pendulum"


def test_unknown_system_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown system 'pendulumm'; known systems are: .*damped_pendulum"):
        get_system("pendulumm")


def test_parameters_fixed_learnable_and_batched():
    cls = get_system("damped_pendulum")
    fixed = cls()
    assert "omega0_squared" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    prior = cls(alpha=0.0, learnable=["omega0_squared"])
    assert [name for name, _ in prior.named_parameters()] == ["omega0_squared"]
    batched = cls(alpha=[0.1, 0.2, 0.3])
    assert batched.batch_size() == 3
    y = torch.tensor([[0.5, 0.0]] * 3, dtype=torch.float64)
    # Per-member damping only matters once p != 0; a non-zero p shows the batch dimension is used.
    y[:, 1] = 1.0
    rhs = batched(torch.tensor(0.0), y)
    assert torch.allclose(rhs[:, 1] - rhs[0, 1], -torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64))


def test_bad_parameters_are_rejected_with_the_name():
    cls = get_system("damped_pendulum")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['beta'\]"):
        cls(beta=1.0)
    with pytest.raises(ValueError, match="parameter 'alpha' must be a finite number"):
        cls(alpha=float("nan"))


def test_initial_conditions_come_from_the_generator_only():
    pendulum = get_system("damped_pendulum")()
    first = pendulum.sample_initial_conditions(5, torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # global state must not matter
    second = pendulum.sample_initial_conditions(5, torch.Generator().manual_seed(7))
    assert torch.equal(first, second) and first.shape == (5, 2)
    radius = first.norm(dim=1)
    assert (radius >= 1.3).all() and (radius < 2.3).all()


def test_describe_and_grid():
    description = get_system("damped_pendulum")().describe()
    assert description["parameters"]["alpha"]["units"] == "s-1"
    assert [variable["name"] for variable in description["state"]] == ["q", "p"]
    grid = Grid(dims=("y", "x"), shape=(4, 8), lower=(0.0, 0.0), upper=(1.0, 2.0), boundary=("periodic", "dirichlet"))
    assert grid.spacing == (0.25, 2.0 / 7)
    assert grid.coordinates()["x"][-1] == 2.0
    with pytest.raises(ValueError, match="boundary for dimension 'x'"):
        Grid(dims=("x",), shape=(4,), lower=(0.0,), upper=(1.0,), boundary=("wrap",))


def test_runtime_registration():
    @register_system
    class Decay(System):
        name = "test_decay"
        state_variables = (Variable("u", "1", "amount"),)
        parameter_specs = (ParameterSpec("rate", "s-1", 1.0, "decay rate"),)

        def forward(self, t, y):
            return -self.rate * y

    assert get_system("test_decay") is Decay
    solution = Decay().simulate(torch.ones(2, 1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(solution.ys[-1], torch.full((2, 1), 0.36787944117144233, dtype=torch.float64), atol=1e-8)
