"""Vectorised evaluation of many parameter sets equals a loop over them."""

import pytest
import torch

from physml.nn.conv import ConvNet2d
from physml.nn.fno import FNO2d
from physml.nn.mlp import MLP
from physml.nn.stacked import StackedModules, stacked_forward, weight_matrices


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


class Gated(torch.nn.Module):
    """A module stacked_forward has no fast path for (exercises the vmap fallback)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
        self.register_buffer("offset", torch.randn(3, dtype=torch.float64))

    def forward(self, x):
        return torch.tanh(x * self.scale + self.offset).flip(-1)


F64 = {"dtype": torch.float64}
CASES = {
    "mlp": (lambda g: MLP(3, 3, (8, 8), generator=g, **F64), (5, 3)),
    "mlp_time_batch": (lambda g: MLP(3, 3, (8,), activation="tanh", generator=g, **F64), (4, 6, 3)),
    "conv_circular": (lambda g: ConvNet2d(2, 2, 6, 3, generator=g, **F64), (3, 2, 8, 8)),
    # 16 hidden channels: the middle layer runs as one grouped convolution, the thin ones per member
    "conv_wide": (lambda g: ConvNet2d(2, 2, 16, 3, output_scale=1e-3, generator=g, **F64), (3, 2, 8, 8)),
    "conv_batch_norm": (lambda g: ConvNet2d(2, 2, 6, 3, activation="relu", padding_mode="zeros",
                                            batch_norm=True, generator=g, **F64), (3, 2, 8, 8)),
    "fno": (lambda g: FNO2d(1, 1, modes=3, width=5, head_width=8, generator=g, **F64), (2, 1, 8, 8)),
    "fallback": (lambda g: Gated(), (4, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stacked_forward_equals_a_loop_over_members(case):
    factory, input_shape = CASES[case]
    generator = seeded(1)
    torch.manual_seed(0)  # only the fallback module draws from the global generator
    ensemble = StackedModules.from_factory(lambda: factory(generator), count=4)
    x = torch.randn(4, *input_shape, dtype=torch.float64, generator=seeded(2))
    looped = torch.stack([ensemble.member(index)(x[index]) for index in range(4)])
    torch.testing.assert_close(ensemble(x), looped, rtol=1e-12, atol=1e-12)
    # gradients reach every member's own parameters
    ensemble(x).square().sum().backward()
    for name, parameter in ensemble.members.named_parameters():
        assert parameter.grad is not None and torch.all(parameter.grad.flatten(1).abs().sum(1) > 0), name


def test_members_are_independent_copies():
    generator = seeded()
    modules = [MLP(2, 2, (4,), generator=generator) for _ in range(3)]
    ensemble = StackedModules(modules)
    assert not torch.equal(ensemble.member(0).layers[0].weight, ensemble.member(1).layers[0].weight)
    with torch.no_grad():
        modules[0].layers[0].weight.add_(1.0)  # the stack holds copies
    assert not torch.equal(ensemble.member(0).layers[0].weight, modules[0].layers[0].weight)
    state = ensemble.state_dict()
    assert state["members.layers.0.weight"].shape == (3, 4, 2)


def test_cached_parameters_follow_dtype_conversion():
    ensemble = StackedModules.from_factory(lambda: MLP(2, 2, (4,), generator=seeded()), count=2)
    ensemble(torch.randn(2, 3, 2))
    ensemble.double()
    assert ensemble(torch.randn(2, 3, 2, dtype=torch.float64)).dtype == torch.float64


def test_stacking_needs_one_architecture_and_matching_inputs():
    with pytest.raises(ValueError, match="architecture"):
        StackedModules([MLP(2, 2, (4,)), MLP(2, 2, (5,))])
    ensemble = StackedModules.from_factory(lambda: MLP(2, 2, (4,)), count=3)
    with pytest.raises(ValueError, match=r"\(3, \.\.\.\)"):
        ensemble(torch.randn(2, 5, 2))


def test_linear_stacked_forward_with_explicit_weights():
    layer = torch.nn.Linear(2, 3, bias=False)
    weights = {"weight": torch.randn(4, 3, 2)}
    x = torch.randn(4, 5, 2)
    expected = torch.einsum("moi,mbi->mbo", weights["weight"], x)
    torch.testing.assert_close(stacked_forward(layer, weights, x), expected)


def test_weight_matrices_cover_every_layer_and_skip_vectors():
    ensemble = StackedModules.from_factory(lambda: FNO2d(1, 1, modes=2, width=4, head_width=6), count=3)
    matrices = weight_matrices(ensemble.members, ensemble.stacked_parameters())
    assert matrices["spectral.0.weight_positive"].shape == (3, 4, 4 * 2 * 2)
    assert matrices["projection.weight"].shape == (3, 1, 6)
    assert not any("beta" in name or "bias" in name for name in matrices)
    # real part of the complex weights, out-channels as rows
    weight = ensemble.stacked_parameters()["spectral.1.weight_negative"]
    torch.testing.assert_close(matrices["spectral.1.weight_negative"][1, 2],
                               weight[1, :, 2, :, :, 0].reshape(-1))
