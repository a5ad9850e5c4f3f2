"""LEADS: shared + per-environment vector fields in one call, spectral-norm and output penalties."""

import copy

import pytest
import torch

from physml.models.leads import Leads
from physml.nn.conv import ConvNet2d
from physml.nn.mlp import MLP


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def lv_model(n_environments=4, **options):
    generator = seeded()

    def network():
        return MLP(2, 2, (8, 8), initialization="normal", gain=0.3, generator=generator, dtype=torch.float64)

    return Leads(network(), network, n_environments, generator=generator, **options)


def test_vectorised_forward_equals_a_loop_over_environments():
    model = lv_model()
    y = torch.randn(4, 6, 2, dtype=torch.float64, generator=seeded(1))
    t = torch.tensor(0.0, dtype=torch.float64)
    looped = torch.stack([model.shared(y[e]) + model.environment_models.member(e)(y[e]) for e in range(4)])
    torch.testing.assert_close(model(t, y), looped, rtol=1e-13, atol=1e-13)
    # the solver's path: f stacked with the g_e as 2E members, prepared once per solve
    assert model._shared_matches_environments()
    torch.testing.assert_close(model.prepared_vector_field()(t, y), looped, rtol=1e-13, atol=1e-13)


def test_prepared_field_with_a_different_shared_architecture():
    generator = seeded()
    model = Leads(MLP(2, 2, (16,), activation="tanh", generator=generator, dtype=torch.float64),
                  lambda: MLP(2, 2, (8,), generator=generator, dtype=torch.float64), 3, generator=generator)
    assert not model._shared_matches_environments()
    y = torch.randn(3, 5, 2, dtype=torch.float64)
    t = torch.tensor(0.0, dtype=torch.float64)
    torch.testing.assert_close(model.prepared_vector_field()(t, y), model(t, y), rtol=1e-13, atol=1e-13)
    # same sizes but another activation is another architecture too
    other = Leads(MLP(2, 2, (8,), activation="tanh"), lambda: MLP(2, 2, (8,), activation="relu"), 2)
    assert not other._shared_matches_environments()


def test_gradients_through_the_prepared_rollout_match_the_plain_ones():
    model = lv_model()
    y0 = torch.rand(4, 3, 2, dtype=torch.float64, generator=seeded(3)) + 0.5
    times = torch.linspace(0, 2, 5, dtype=torch.float64)
    gradients = []
    for field in (model, model.prepared_vector_field()):
        model.zero_grad()
        model.simulate(y0, times, vector_field=field).square().sum().backward()
        gradients.append([parameter.grad.clone() for parameter in model.parameters()])
    for plain, prepared in zip(*gradients, strict=True):
        torch.testing.assert_close(prepared, plain, rtol=1e-12, atol=1e-14)


def test_vectorised_convolutional_environments_equal_a_loop():
    generator = seeded()

    def network():
        return ConvNet2d(2, 2, 4, 3, output_scale=1e-3, generator=generator, dtype=torch.float64)

    model = Leads(network(), network, 3, generator=generator)
    y = torch.randn(3, 2, 2, 8, 8, dtype=torch.float64, generator=seeded(1))
    looped = torch.stack([model.shared(y[e]) + model.environment_models.member(e)(y[e]) for e in range(3)])
    torch.testing.assert_close(model(torch.tensor(0.0), y), looped, rtol=1e-13, atol=1e-13)


def test_power_iterations_converge_to_the_spectral_norms():
    model = lv_model()
    for _ in range(40):
        norms = model.spectral_norms()
    exact = []
    for e in range(4):
        member = model.environment_models.member(e)
        exact.append([torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
                      for layer in member.modules() if isinstance(layer, torch.nn.Linear)])
    torch.testing.assert_close(norms.detach(), torch.tensor(exact, dtype=torch.float64), rtol=1e-8, atol=0)


def test_penalty_is_the_leads_objective():
    model = lv_model(penalty_weight=0.5, lipschitz_weight=0.1)
    for _ in range(40):  # converge the power iterations so σ is exact
        model.spectral_norms()
    states = torch.rand(4, 3, 5, 2, dtype=torch.float64, generator=seeded(2)) + 0.5
    output_term = 0.0
    lipschitz_term = 0.0
    for e in range(4):
        member = model.environment_models.member(e)
        flat = states[e].reshape(-1, 2)
        output_term += ((member(flat).norm(dim=1) / (flat.norm(dim=1) + 1e-5)) ** 2).mean()
        lipschitz_term += sum(torch.linalg.matrix_norm(layer.weight, ord=2) ** 2
                              for layer in member.modules() if isinstance(layer, torch.nn.Linear))
    expected = 0.5 * (0.1 * lipschitz_term + output_term)
    penalty = model.penalty(states)
    torch.testing.assert_close(penalty, expected.detach(), rtol=1e-8, atol=0)
    penalty.backward()
    assert all(parameter.grad is not None for parameter in model.environment_models.parameters())
    assert all(parameter.grad is None for parameter in model.shared.parameters())  # Ω only involves g_e


def test_no_minimisation_ablation_has_no_penalty():
    assert lv_model(penalty_weight=0.0).penalty(torch.rand(4, 2, 5, 2)) is None


def test_power_vectors_are_checkpointed():
    model = lv_model()
    model.spectral_norms()
    names = [name for name in model.state_dict() if name.startswith("power_vectors.")]
    assert len(names) == 2 * 3  # left and right vectors of each of the three weight matrices
    restored = lv_model()
    restored.load_state_dict(model.state_dict())
    torch.testing.assert_close(restored.spectral_norms(), model.spectral_norms())


def test_adapt_freezes_the_shared_dynamics():
    model = lv_model()
    adapted = model.adapt(2, generator=seeded(5))
    assert adapted.n_environments == 2
    assert not any(parameter.requires_grad for parameter in adapted.shared.parameters())
    for original, copied in zip(model.shared.parameters(), adapted.shared.parameters(), strict=True):
        assert torch.equal(original, copied)
    y = torch.randn(2, 3, 2, dtype=torch.float64)
    adapted(torch.tensor(0.0), y).sum().backward()
    assert all(parameter.grad is not None for parameter in adapted.environment_models.parameters())
    before = copy.deepcopy(model.shared.state_dict())
    assert all(torch.equal(before[name], value) for name, value in model.shared.state_dict().items())


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(n_environments=0), "n_environments"),
        (dict(penalty_weight=-1.0), "penalty_weight"),
        (dict(power_iterations=0), "power_iterations"),
    ],
)
def test_bad_arguments(arguments, message):
    options = dict(n_environments=2) | arguments
    with pytest.raises(ValueError, match=message):
        Leads(MLP(2, 2, (4,)), lambda: MLP(2, 2, (4,)), **options)
