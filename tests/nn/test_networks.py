"""The dynamics networks: shapes, seeded initialisation, boundary handling, Fourier layers."""

import math

import pytest
import torch

from physml.nn.activations import Swish, make_activation, swish
from physml.nn.conv import ConvNet2d
from physml.nn.fno import FNO2d, SpectralConv2d
from physml.nn.initialization import initialize_
from physml.nn.mlp import MLP


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_swish_matches_its_formula_and_learns_its_slope():
    activation = Swish(dtype=torch.float64)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    beta = torch.nn.functional.softplus(torch.tensor(0.5, dtype=torch.float64))
    torch.testing.assert_close(activation(x), x * torch.sigmoid(beta * x) / 1.1)
    activation(x).sum().backward()
    assert activation.beta.grad is not None and activation.beta.grad.abs().item() > 0


def test_fused_swish_gradients():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([0.3, -0.2, 1.1], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(swish, (x, beta))
    torch.autograd.gradgradcheck(swish, (x, beta))
    stacked_beta = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)  # one slope per member
    torch.autograd.gradcheck(swish, (x, stacked_beta))
    per_member = torch.func.vmap(swish)(x, stacked_beta)
    torch.testing.assert_close(per_member, swish(x, stacked_beta))


def test_generator_makes_initialisation_reproducible_and_leaves_global_state_alone():
    state = torch.random.get_rng_state()
    first = MLP(2, 3, (8, 8), generator=seeded(1))
    second = MLP(2, 3, (8, 8), generator=seeded(1))
    other = MLP(2, 3, (8, 8), generator=seeded(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        if a.ndim == 2:
            assert not torch.equal(a, c)


def test_orthogonal_and_normal_schemes():
    network = MLP(4, 4, (4,), activation="relu", initialization="orthogonal", gain=0.2, generator=seeded())
    weight = network.layers[0].weight
    torch.testing.assert_close(weight @ weight.T, 0.04 * torch.eye(4), atol=1e-6, rtol=0)
    assert torch.count_nonzero(network.layers[0].bias) == 0
    wide = MLP(64, 64, (64,), initialization="normal", gain=0.05, generator=seeded())
    assert abs(float(wide.layers[0].weight.detach().std()) - 0.05) < 0.005


def test_default_scheme_bounds_match_pytorch():
    layer = initialize_(torch.nn.Linear(9, 5), generator=seeded())
    assert layer.weight.detach().abs().max().item() <= 1 / 3 + 1e-7
    assert layer.bias.detach().abs().max().item() <= 1 / 3 + 1e-7


def test_mlp_output_scale_and_shape():
    base = MLP(2, 2, (8,), generator=seeded(3))
    scaled = MLP(2, 2, (8,), output_scale=1e-3, generator=seeded(3))
    x = torch.randn(5, 7, 2)
    torch.testing.assert_close(scaled(x), 1e-3 * base(x))
    assert base(x).shape == (5, 7, 2)


def test_circular_convnet_is_translation_equivariant_on_the_torus():
    network = ConvNet2d(2, 2, hidden_channels=6, n_layers=3, generator=seeded(), dtype=torch.float64)
    field = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    shifted = torch.roll(field, shifts=(3, -5), dims=(-2, -1))
    torch.testing.assert_close(network(shifted), torch.roll(network(field), shifts=(3, -5), dims=(-2, -1)))
    zero_padded = ConvNet2d(2, 2, 6, 3, padding_mode="zeros", generator=seeded(), dtype=torch.float64)
    assert not torch.allclose(zero_padded(shifted), torch.roll(zero_padded(field), (3, -5), (-2, -1)))


def test_aphynity_convnet_batch_norm_uses_batch_statistics():
    network = ConvNet2d(2, 2, 16, 3, activation="relu", padding_mode="zeros", batch_norm=True,
                        generator=seeded())
    norms = [layer for layer in network.modules() if isinstance(layer, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 and not norms[0].track_running_stats
    x = torch.randn(4, 2, 8, 8)
    network.eval()
    evaluation = network(x)
    network.train()
    torch.testing.assert_close(network(x), evaluation)


def test_spectral_convolution_acts_only_on_retained_modes():
    layer = SpectralConv2d(1, 1, modes=(2, 2), generator=seeded(), dtype=torch.float64)
    ny = nx = 16
    y, x = torch.meshgrid(torch.arange(ny, dtype=torch.float64), torch.arange(nx, dtype=torch.float64),
                          indexing="ij")
    high_frequency = torch.cos(2 * math.pi * 5 * x / nx).view(1, ny, nx, 1)
    assert layer(high_frequency).detach().abs().max().item() < 1e-12
    low_frequency = torch.cos(2 * math.pi * 1 * x / nx).view(1, ny, nx, 1)
    assert layer(low_frequency).detach().abs().max().item() > 1e-3


def test_fno_shapes_and_mode_check():
    network = FNO2d(1, 1, modes=4, width=6, generator=seeded())
    assert network(torch.randn(3, 1, 16, 16)).shape == (3, 1, 16, 16)
    with pytest.raises(ValueError, match="modes"):
        network(torch.randn(3, 1, 6, 6))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: MLP(0, 2), "in_features"),
        (lambda: MLP(2, 2, (8, -1)), "hidden_sizes"),
        (lambda: ConvNet2d(2, 2, kernel_size=4), "odd"),
        (lambda: ConvNet2d(2, 2, padding_mode="wrap"), "padding_mode"),
        (lambda: ConvNet2d(2, 2, n_layers=1), "n_layers"),
        (lambda: make_activation("swishy"), "activation"),
        (lambda: MLP(2, 2, initialization="glorot"), "scheme"),
        (lambda: FNO2d(modes=(4, 0)), "modes"),
    ],
)
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
