"""Data parallelism: two gloo processes on the CPU give the single-process full-batch gradients."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as multiprocessing

from physml.training import DistributedContext, Trainer, TrainingConfig, draw_restart_mask

from .problems import leads_model, lotka_volterra

WORLD_SIZE = 2
TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(directory: Path, label: str) -> None:
    """First-minibatch gradients and the state after three epochs, in whatever process group this is."""
    torch.set_num_threads(1)
    train, validation = lotka_volterra(4, seed=0), lotka_volterra(2, seed=1)
    model = leads_model()
    settings = TrainingConfig(epochs=3, batch_size=4, learning_rate=1e-2, restart_probability=0.9,
                              restart_decay=0.9, seed=5, progress=False, handle_signals=False,
                              restore_best=False)
    trainer = Trainer(model, train, validation, settings)
    batch = next(trainer.minibatches())
    mask = draw_restart_mask(train.n_times, 0.5, torch.Generator().manual_seed(1))
    losses = trainer.compute_gradients(batch, mask)
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    result = trainer.fit(resume=False)
    torch.save({"gradients": gradients, "losses": losses, "state": model.state_dict(),
                "validation": [record["validation_mse"] for record in result.history],
                "world_size": trainer.distributed.world_size}, directory / f"{label}.pt")


def worker(rank: int, port: int, directory: Path) -> None:
    # What torchrun would set for this process.
    os.environ.update(WORLD_SIZE=str(WORLD_SIZE), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        run(directory, f"rank{rank}")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def compare(directory: Path) -> None:
    single = torch.load(directory / "single.pt")
    ranks = [torch.load(directory / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]
    assert single["world_size"] == 1 and all(result["world_size"] == WORLD_SIZE for result in ranks)
    for result in ranks:
        assert result["gradients"].keys() == single["gradients"].keys()
        for name, gradient in single["gradients"].items():
            assert gradient.abs().sum() > 0, name
            torch.testing.assert_close(result["gradients"][name], gradient, rtol=1e-10, atol=1e-15)
        for name, loss in single["losses"].items():
            assert result["losses"][name] == pytest.approx(loss, rel=1e-12)
        for name, value in single["state"].items():
            torch.testing.assert_close(result["state"][name], value, rtol=1e-9, atol=1e-12)
        assert result["validation"] == pytest.approx(single["validation"], rel=1e-9)
    for name, value in ranks[0]["state"].items():  # the processes never drift apart
        assert torch.equal(value, ranks[1]["state"][name]), name


def test_two_processes_average_to_the_full_batch_gradient(tmp_path, monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    multiprocessing.spawn(worker, args=(free_port(), tmp_path), nprocs=WORLD_SIZE, join=True)
    run(tmp_path, "single")
    compare(tmp_path)


def test_without_world_size_training_is_single_process(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert DistributedContext.from_environment() == DistributedContext(1, 0, 0)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not DistributedContext.from_environment().enabled
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"\['RANK', 'MASTER_ADDR', 'MASTER_PORT'\]"):
        DistributedContext.from_environment()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        DistributedContext.from_environment()


@pytest.mark.slow
def test_torchrun_launch(tmp_path, monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "launch.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nfrom tests.training.test_distributed import run\n"
        "import torch.distributed as dist\nimport os\n"
        "run(Path(sys.argv[1]), f\"rank{os.environ['RANK']}\")\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD_SIZE),
                    "--master_port", str(free_port()), str(script), str(tmp_path)], check=True, cwd=root,
                   env=environment, timeout=300)
    run(tmp_path, "single")
    compare(tmp_path)
