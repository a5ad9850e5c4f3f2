"""The periodic U-Net: shape, equivariance to even periodic shifts, conditioning, bad input."""

import pytest
import torch

from physml.generative.networks import TimeConditionedConvNet, sinusoidal_time_embedding


def network(**options):
    return TimeConditionedConvNet(1, width=8, generator=torch.Generator().manual_seed(0),
                                  dtype=torch.float64, **options)


def test_output_shape_and_periodic_shift_equivariance():
    model = network()
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    out = model(t, x)
    assert out.shape == x.shape
    # Circular padding and one 2x pooling level: shifts by an even number of cells commute with the network.
    shifted = model(t, torch.roll(x, shifts=(2, 4), dims=(-2, -1)))
    torch.testing.assert_close(shifted, torch.roll(out, shifts=(2, 4), dims=(-2, -1)))
    # A scalar time is broadcast over the batch.
    torch.testing.assert_close(model(torch.tensor(0.5, dtype=torch.float64), x)[1], out[1])


def test_class_condition_changes_the_output_and_null_label_is_the_default():
    model = network(num_classes=3)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    first = model(t, x, torch.tensor([0, 0]))
    second = model(t, x, torch.tensor([2, 2]))
    assert not torch.allclose(first, second)
    torch.testing.assert_close(model(t, x), model(t, x, torch.tensor([3, 3])))


def test_time_embedding_and_bad_input():
    features = sinusoidal_time_embedding(torch.tensor([0.0, 1.0]), 8, 2)
    assert features.shape == (2, 8)
    torch.testing.assert_close(features[0, 4:], torch.ones(4))  # cos(0) = 1
    model = network()
    with pytest.raises(ValueError, match="even height"):
        model(torch.tensor(0.1), torch.zeros(2, 1, 7, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_classes"):
        model(torch.tensor(0.1), torch.zeros(2, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="width"):
        TimeConditionedConvNet(1, width=0)
