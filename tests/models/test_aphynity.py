"""APHYNITY: physical prior + augmentation, the ‖F_a‖ penalty, parameter identification."""

import pytest
import torch

from physml.models.aphynity import Aphynity
from physml.nn.mlp import MLP
from physml.training import TrainingConfig, TrajectorySet, fit_trajectories, relative_parameter_error
from simulators.pendulum import DampedPendulum


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def pendulum_data(n, generator, n_times=12):
    system = DampedPendulum()
    times = torch.arange(n_times, dtype=torch.float64) * 0.5
    y0 = system.sample_initial_conditions(n, generator)
    ys = system.simulate(y0, times, method="dopri8", rtol=1e-10, atol=1e-10).ys
    return TrajectorySet(ys.permute(1, 0, 2).unsqueeze(0), times, ("q", "p"), (0,))


def augmentation(generator, hidden=(16, 16)):
    return MLP(2, 2, hidden, activation="relu", initialization="orthogonal", gain=0.2, generator=generator,
               dtype=torch.float64)


def test_vector_field_is_physics_plus_augmentation():
    generator = seeded()
    prior = DampedPendulum(alpha=0.0, learnable=["omega0_squared"])
    network = augmentation(generator)
    model = Aphynity(prior, network)
    y = torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor(0.0, dtype=torch.float64)
    torch.testing.assert_close(model(t, y), prior(t, y) + network(y))
    assert model.state_names == ("q", "p")
    assert model.identified_parameters == ("omega0_squared",)
    torch.testing.assert_close(Aphynity(prior, None)(t, y), prior(t, y))


def test_penalty_forms():
    network = augmentation(seeded())
    states = torch.randn(3, 7, 2, dtype=torch.float64)
    flat = states.reshape(-1, 2)
    plain = (network(flat).norm(dim=1) ** 2).mean()
    normalised = ((network(flat).norm(dim=1) / (flat.norm(dim=1) + 1e-5)) ** 2).mean()
    prior = DampedPendulum(learnable=["omega0_squared"])
    torch.testing.assert_close(Aphynity(prior, network, augmentation_norm="l2").penalty(states), plain)
    torch.testing.assert_close(Aphynity(prior, network).penalty(states), normalised)
    assert Aphynity(prior, network, augmentation_norm=None).penalty(states) is None
    assert Aphynity(prior, None).penalty(states) is None


def test_field_penalty_takes_the_norm_over_channels_pointwise():
    from physml.nn.conv import ConvNet2d

    network = ConvNet2d(2, 2, 4, 2, generator=seeded(), dtype=torch.float64)
    model = Aphynity(None, network, augmentation_norm="l2")
    states = torch.randn(2, 3, 2, 6, 6, dtype=torch.float64)   # (batch, time, channels, ny, nx)
    flat = states.reshape(6, 2, 6, 6)
    torch.testing.assert_close(model.penalty(states), network(flat).square().sum(dim=1).mean())


def test_gradients_reach_learnable_physical_parameters():
    data = pendulum_data(3, seeded(1), n_times=6)
    prior = DampedPendulum(omega0_squared=0.6, alpha=0.1, learnable=["omega0_squared", "alpha"])
    model = Aphynity(prior, augmentation(seeded()))
    states = data.states[0]

    def loss():
        prediction = model.simulate(states[:, 0], data.times).transpose(0, 1)
        return (prediction - states).square().mean()

    loss().backward()
    gradient = prior.omega0_squared.grad.item()
    step = 1e-6
    with torch.no_grad():
        prior.omega0_squared += step
        upper = loss().item()
        prior.omega0_squared -= 2 * step
        lower = loss().item()
    assert gradient != 0 and abs(gradient - (upper - lower) / (2 * step)) < 1e-6 * max(1.0, abs(gradient))
    assert prior.alpha.grad is not None and prior.alpha.grad.item() != 0


def test_complete_physics_recovers_the_parameters():
    generator = seeded(0)
    train, validation = pendulum_data(8, generator), pendulum_data(4, generator)
    prior = DampedPendulum(omega0_squared=0.5, alpha=0.1, learnable=["omega0_squared", "alpha"])
    model = Aphynity(prior, augmentation(generator))
    config = TrainingConfig(epochs=150, learning_rate=1e-3, learning_rates={"physical_model": 0.1},
                            trajectory_weight_increment=1.0, validate_every=25, progress=False)
    result = fit_trajectories(model, train, validation, config)
    errors = relative_parameter_error(model.physical_parameters(), {"omega0_squared": (2 * torch.pi / 6) ** 2,
                                                                     "alpha": 0.2})
    assert errors["omega0_squared"] < 0.01 and errors["alpha"] < 0.01, errors
    assert result.best_validation_mse < 1e-5
    assert result.trajectory_weight > 1.0  # the adaptive λ grew


def test_parametrised_diffusion_prior_for_reaction_diffusion():
    from torch.nn.utils import parametrize

    from physml.models.aphynity import ScaledSigmoid
    from physml.nn.conv import ConvNet2d
    from simulators.reaction_diffusion import FitzHughNagumo

    prior = FitzHughNagumo(grid_size=8, reaction=False, a=1.19e-3, b=2e-3, learnable=["a", "b"])
    for name in ("a", "b"):
        parametrize.register_parametrization(prior, name, ScaledSigmoid(1e-2))
    network = ConvNet2d(2, 2, 4, 3, activation="relu", padding_mode="zeros", batch_norm=True,
                        generator=seeded(), dtype=torch.float64)
    model = Aphynity(prior, network, augmentation_norm="l2", identified_parameters=["a", "b"])
    values = model.physical_parameters()
    assert abs(values["a"].item() - 1.19e-3) < 1e-12 and abs(values["b"].item() - 2e-3) < 1e-12
    y0 = torch.rand(3, 2, 8, 8, dtype=torch.float64, generator=seeded(1))
    model.simulate(y0, torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)).square().sum().backward()
    raw = prior.parametrizations.a.original
    assert raw.grad is not None and raw.grad.item() != 0
    with pytest.raises(ValueError, match=r"\(0, 0.01\)"):
        parametrize.register_parametrization(FitzHughNagumo(grid_size=8, a=0.5, learnable=["a"]), "a",
                                             ScaledSigmoid(1e-2))


def test_bad_priors_are_named():
    prior = DampedPendulum(learnable=["omega0_squared"])
    with pytest.raises(ValueError, match=r"\['omega'\].*omega0_squared"):
        Aphynity(prior, None, identified_parameters=["omega"])
    with pytest.raises(TypeError, match="dtype"):
        Aphynity(prior, MLP(2, 2, (4,)))  # float64 physics with a float32 network
    with pytest.raises(ValueError, match="neither"):
        Aphynity(None, None)
    with pytest.raises(ValueError, match="augmentation_norm"):
        Aphynity(prior, None, augmentation_norm="l1")
    with pytest.raises(TypeError, match="unknown parameter"):
        DampedPendulum(learnable=["omega"])  # the System itself refuses unknown names


def _fitzhugh_nagumo_states(grid=8, seed=2):
    from simulators.reaction_diffusion import FitzHughNagumo

    truth = FitzHughNagumo(grid_size=grid)
    y0 = truth.sample_initial_conditions(4, seeded(seed))
    states = truth.simulate(y0, torch.arange(6, dtype=torch.float64) * 0.1).ys.transpose(0, 1)
    return truth, states  # states (batch, time, 2, grid, grid)


def test_minimum_norm_fit_of_a_complete_prior_is_the_truth():
    from torch.nn.utils import parametrize

    from physml.models.aphynity import ScaledSigmoid
    from simulators.reaction_diffusion import FitzHughNagumo

    truth, states = _fitzhugh_nagumo_states()
    prior = FitzHughNagumo(grid_size=8, a=2e-3, b=2e-3, k=2e-3, learnable=["a", "b", "k"],
                           dtype=torch.float32)
    for name in ("a", "b", "k"):
        parametrize.register_parametrization(prior, name, ScaledSigmoid(1e-2))
    model = Aphynity(prior, None, augmentation_norm="l2")
    fit = model.minimum_norm_fit(truth, states.float())
    assert fit["residual"] < 1e-9 * fit["initial_residual"]
    errors = relative_parameter_error(model.physical_parameters(), {"a": 1e-3, "b": 5e-3, "k": 5e-3})
    assert max(errors.values()) < 1e-4
    assert prior.a.dtype == torch.float32  # written back into the float32 prior


def test_minimum_norm_fit_of_an_incomplete_prior_is_the_projection():
    from simulators.reaction_diffusion import FitzHughNagumo

    truth, states = _fitzhugh_nagumo_states()
    prior = FitzHughNagumo(grid_size=8, reaction=False, a=1e-3, b=1e-3, learnable=["a", "b"])
    model = Aphynity(prior, None, augmentation_norm="l2")
    model.minimum_norm_fit(truth, states)
    flat = states.reshape(-1, 2, 8, 8)
    field, laplacian = truth(0.0, flat), truth.laplacian(flat)
    projection = (field * laplacian).sum(dim=(0, 2, 3)) / laplacian.square().sum(dim=(0, 2, 3))
    fitted = model.physical_parameters()
    assert torch.allclose(torch.stack([fitted["a"], fitted["b"]]), projection, rtol=1e-6, atol=0)
    # The reaction has a component along the Laplacian: the minimum-norm diffusion is not the true one.
    assert abs(projection[0].item() - 1e-3) > 0.2e-3


def test_minimum_norm_fit_refuses_bad_input():
    prior = DampedPendulum(alpha=0.0, learnable=["omega0_squared"])
    truth = DampedPendulum()
    with pytest.raises(ValueError, match="physical_model"):
        Aphynity(None, MLP(2, 2, (4,), dtype=torch.float64)).minimum_norm_fit(truth, torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match=r"states must be a tensor \(batch, time"):
        Aphynity(prior, None).minimum_norm_fit(truth, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="max_iterations"):
        Aphynity(prior, None).minimum_norm_fit(truth, torch.zeros(2, 3, 2), max_iterations=0)
    with pytest.raises(ValueError, match="no learnable parameters"):
        Aphynity(DampedPendulum(), None).minimum_norm_fit(truth, torch.zeros(2, 3, 2, dtype=torch.float64))
