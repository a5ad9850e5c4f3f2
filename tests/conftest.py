"""Test-suite settings: one torch thread (the small tensors here run far slower on two)."""

import torch

torch.set_num_threads(1)
