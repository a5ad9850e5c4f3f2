"""Shared fixtures of the data tests: a tiny multi-shard spec and one generated `aphynity_pendulum` mini."""

import tomllib

import pytest

from physml.data import generate, parse_spec

#: A pendulum spec small enough to generate in a fraction of a second, with several shards per split
#: (samples_per_shard = 2) so that resuming and consolidation are exercised.
TINY_SPEC = """
name = "tiny_pendulum"
system = "damped_pendulum"
title = "Tiny pendulum"
summary = "A few short damped-pendulum trajectories for the tests."
references = "Yin et al. (2021), APHYNITY, ICLR"
license = "CC0-1.0"
product_version = "0.1"
samples_per_shard = 2
dtype = "float64"

[parameters]
alpha = 0.2

[time]
start = 0.0
end = 2.0
save_interval = 0.25

[solver]
method = "dopri5"
rtol = 1e-8
atol = 1e-10

[seeds]
rule = "spawn"
entropy = 12345

[scales.mini]
train = 5
test = 3
"""


@pytest.fixture
def tiny_spec_data() -> dict:
    """The tiny spec as a fresh dict (each test may modify its own copy)."""
    return tomllib.loads(TINY_SPEC)


@pytest.fixture
def tiny_spec(tiny_spec_data):
    return parse_spec(tiny_spec_data, source="tiny_pendulum.toml")


@pytest.fixture(scope="session")
def pendulum_mini(tmp_path_factory):
    """`aphynity_pendulum` at mini scale, generated once for the session (read-only for the tests)."""
    return generate("aphynity_pendulum", "mini", out=tmp_path_factory.mktemp("generated"), progress=False)
