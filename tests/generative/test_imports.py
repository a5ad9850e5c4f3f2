"""physml.generative and physml.metrics import without POT; POT is only needed when a plan is computed."""

import os
import subprocess
import sys

SCRIPT = """
import sys
sys.modules["ot"] = None  # makes any 'import ot' fail, as on a machine without POT
import torch
import physml.generative, physml.metrics
from physml.generative.optimal_transport import exact_transport_plan
assert physml.metrics.energy_distance(torch.zeros(2, 1), torch.ones(2, 1)) == 2.0
try:
    exact_transport_plan(torch.zeros(2, 1), torch.ones(2, 1))
except ImportError as error:
    assert "pip install POT" in str(error), error
    print("lazy")
"""


def test_import_without_pot_and_helpful_error():
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "lazy"
