"""CoDA: θ_e = θ_c + W ξ_e for all environments at once, penalties and adaptation."""

import pytest
import torch
from torch.nn.utils import vector_to_parameters

from physml.models.coda import Coda
from physml.nn.conv import ConvNet2d
from physml.nn.fno import FNO2d
from physml.nn.mlp import MLP


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def with_codes(model, generator):
    with torch.no_grad():
        model.codes.copy_(torch.randn(model.codes.shape, dtype=model.codes.dtype, generator=generator))
    return model


def environment_copy(model, e):
    """The root network with θ_e loaded, for an explicit per-environment loop."""
    import copy

    network = copy.deepcopy(model.network)
    shared = torch.cat([value.detach().reshape(-1) for value in model.network.parameters()])
    vector_to_parameters(shared + model.hypernetwork.detach() @ model.codes.detach()[e], network.parameters())
    return network


@pytest.mark.parametrize("kind", ["mlp", "conv", "fno"])
def test_vectorised_forward_equals_a_loop_over_environments(kind):
    generator = seeded()
    f64 = {"generator": generator, "dtype": torch.float64}
    network, shape = {
        "mlp": (lambda: MLP(2, 2, (8, 8), **f64), (5, 2)),
        "conv": (lambda: ConvNet2d(2, 2, 4, 3, output_scale=5e-4, **f64), (2, 2, 8, 8)),
        "fno": (lambda: FNO2d(1, 1, modes=3, width=5, head_width=8, **f64), (2, 1, 8, 8)),
    }[kind]
    network = network()
    model = with_codes(Coda(network, 3, code_dim=2, generator=generator), seeded(1))
    y = torch.randn(3, *shape, dtype=torch.float64, generator=seeded(2))
    looped = torch.stack([environment_copy(model, e)(y[e]) for e in range(3)])
    torch.testing.assert_close(model(torch.tensor(0.0), y), looped, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(model.prepared_vector_field()(torch.tensor(0.0), y), looped, rtol=1e-12,
                               atol=1e-14)


def test_zero_codes_give_the_root_network_everywhere():
    network = MLP(2, 2, (8,), generator=seeded(), dtype=torch.float64)
    model = Coda(network, 4, generator=seeded())
    y = torch.randn(4, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(model(torch.tensor(0.0), y), network(y))


def test_penalties():
    model = with_codes(Coda(MLP(2, 2, (8,), generator=seeded()), 3, weight_penalty=0.1, code_penalty=0.01,
                            generator=seeded()), seeded(1))
    rows = model.hypernetwork.detach().norm(dim=1).sum()
    codes = model.codes.detach().square().sum()
    torch.testing.assert_close(model.penalty().detach(), 0.1 * rows + 0.01 * codes)
    model_l2 = with_codes(Coda(MLP(2, 2, (8,), generator=seeded()), 3, regularization="l2",
                               weight_penalty=0.1, code_penalty=0.0, generator=seeded()), seeded(1))
    frobenius = model_l2.hypernetwork.detach().square().sum()
    torch.testing.assert_close(model_l2.penalty().detach(), 0.1 * frobenius)
    assert Coda(MLP(2, 2, (4,)), 2, weight_penalty=0, code_penalty=0).penalty() is None


def test_gradients_reach_root_hypernetwork_and_codes():
    model = with_codes(Coda(MLP(2, 2, (8,), generator=seeded()), 3, generator=seeded()), seeded(1))
    model(torch.tensor(0.0), torch.randn(3, 4, 2)).square().sum().backward()
    assert model.codes.grad.abs().min() > 0
    assert model.hypernetwork.grad.abs().sum() > 0
    assert all(parameter.grad is not None for parameter in model.network.parameters())


def test_adaptation_trains_only_new_codes():
    model = with_codes(Coda(MLP(2, 2, (8,), generator=seeded(), dtype=torch.float64), 3, generator=seeded()),
                       seeded(1))
    adapted = model.adapt(2)
    trainable = [name for name, parameter in adapted.named_parameters() if parameter.requires_grad]
    assert trainable == ["codes"] and torch.count_nonzero(adapted.codes) == 0
    assert adapted.penalty() is None  # the reference adaptation has no regulariser
    with torch.no_grad():
        adapted.codes.copy_(model.codes[1:])
    y = torch.randn(2, 4, 2, dtype=torch.float64)
    # with the original codes of environments 1 and 2, the adapted model is the original model there
    original = model(torch.tensor(0.0), torch.cat([y[:1], y]))[1:]
    torch.testing.assert_close(adapted(torch.tensor(0.0), y), original)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(n_environments=0), "n_environments"),
        (dict(code_dim=0), "code_dim"),
        (dict(regularization="l0"), "regularization"),
        (dict(weight_penalty=-1.0), "weight_penalty"),
    ],
)
def test_bad_arguments(arguments, message):
    options = dict(n_environments=2) | arguments
    with pytest.raises(ValueError, match=message):
        Coda(MLP(2, 2, (4,)), **options)
