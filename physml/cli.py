"""Command-line interface: ``physml generate|validate|info|list|demo`` (``python -m physml`` works too).

The CLI (never the library) sets the number of torch threads: small-tensor solves on a 2-core CPU
run 100–500x slower with torch's default of two threads, so ``--threads`` defaults to 1.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch


def _van_der_pol(mu: float):
    def field(t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, mu * (1 - x**2) * v - x], dim=-1)

    return field


def _lotka_volterra(t, y):
    prey, predator = y[..., 0], y[..., 1]
    return torch.stack([0.5 * prey - 0.5 * prey * predator, -0.5 * predator + 0.5 * prey * predator], dim=-1)


def _robertson(t, y):
    y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
    return torch.stack(
        [-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2, 3e7 * y2**2], dim=-1
    )


def _scipy_reference(field, y0: torch.Tensor, times: torch.Tensor, stiff: bool) -> torch.Tensor:
    from scipy.integrate import solve_ivp

    def numpy_field(t, y):
        return field(torch.tensor(t), torch.from_numpy(y)).numpy()

    solution = solve_ivp(
        numpy_field, (float(times[0]), float(times[-1])), y0.numpy(), method="Radau" if stiff else "DOP853",
        t_eval=times.numpy(), rtol=1e-12, atol=1e-14,
    )
    return torch.from_numpy(solution.y.T)


def demo(threads: int) -> int:
    """Solve three classic problems with several methods and print a table of cost and accuracy."""
    torch.set_num_threads(threads)
    import physml

    problems = [
        ("Lotka-Volterra", _lotka_volterra, torch.tensor([2.0, 1.0], dtype=torch.float64),
         torch.linspace(0.0, 20.0, 41, dtype=torch.float64), ["rk4", "bosh3", "dopri5", "tsit5", "dopri8"], False),
        ("Van der Pol mu=5", _van_der_pol(5.0), torch.tensor([2.0, 0.0], dtype=torch.float64),
         torch.linspace(0.0, 10.0, 21, dtype=torch.float64), ["dopri5", "tsit5", "dopri8", "kvaerno3"], False),
        ("Robertson (stiff)", _robertson, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
         torch.tensor([0.0, 0.4, 4.0, 40.0, 400.0], dtype=torch.float64), ["kvaerno3"], True),
    ]
    header = f"{'problem':<20} {'method':<9} {'status':<8} {'nfe':>6} {'steps':>6} {'rejected':>8} {'max rel err':>12} {'ms':>8}"
    print(f"physml {physml.__version__} solver demo: rtol=1e-6, atol=1e-9, float64, {threads} thread(s)")
    print("errors against SciPy (DOP853, or Radau for the stiff problem) at rtol=1e-12\n")
    print(header)
    print("-" * len(header))
    for name, field, y0, times, methods, stiff in problems:
        reference = _scipy_reference(field, y0, times, stiff)
        for method in methods:
            options = {"step_size": 0.01} if method == "rk4" else None
            start = time.perf_counter()
            solution = physml.solve_ode(field, y0, times, method=method, rtol=1e-6, atol=1e-9, options=options)
            elapsed = 1e3 * (time.perf_counter() - start)
            error = ((solution.ys - reference).abs() / (reference.abs() + 1e-9)).max().item()
            stats = solution.stats
            print(f"{name:<20} {method:<9} {solution.status[:8]:<8} {stats['nfe']:>6} {stats['n_steps']:>6} "
                  f"{stats['n_rejected']:>8} {error:>12.2e} {elapsed:>8.1f}")
    # Per-sample step control on a batch mixing easy and stiff-ish members.
    mu = torch.tensor([0.5] * 31 + [20.0], dtype=torch.float64)
    batch_field = lambda t, y, m: torch.stack([y[:, 1], m * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], dim=-1)  # noqa: E731
    y0 = torch.tensor([[2.0, 0.0]] * 32, dtype=torch.float64)
    times = torch.linspace(0.0, 20.0, 11, dtype=torch.float64)
    print("\nbatch of 32 Van der Pol oscillators (31 with mu=0.5, one with mu=20), tsit5:")
    for per_sample in (False, True):
        start = time.perf_counter()
        if per_sample:
            solution = physml.solve_ode(batch_field, y0, times, per_sample=True, args=mu)
            steps = int(solution.stats["n_steps"].sum())
        else:
            solution = physml.solve_ode(lambda t, y: batch_field(t, y, mu), y0, times)
            steps = solution.stats["n_steps"] * 32
        elapsed = 1e3 * (time.perf_counter() - start)
        label = "per-sample control" if per_sample else "one step size    "
        print(f"  {label}: {steps:>6} member-steps in total, {elapsed:7.1f} ms")
    print("  (wall time follows the member-steps once evaluating the vector field, not the per-step\n"
          "   overhead, dominates: large states or networks)")
    return 0


def info(path: str | None = None) -> int:
    """Versions and methods; with a PATH, a summary of that dataset file or directory instead."""
    if path is not None:
        from .data import summarize

        try:
            print(summarize(path))
        except (OSError, ValueError) as error:
            print(f"physml info: error: {error}", file=sys.stderr)
            return 2
        return 0
    import numpy
    import scipy

    import physml

    print(f"physml {physml.__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"torch {torch.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")
    print("ODE methods (order): " + ", ".join(f"{name} ({spec['order']})" for name, spec in physml.METHODS.items()))
    if hasattr(physml, "SDE_METHODS"):
        print("SDE methods: " + ", ".join(sorted(physml.SDE_METHODS)))
    return 0


def list_datasets() -> int:
    """One line per shipped dataset: name, system, sizes per scale and title."""
    from .data import available_datasets, load_spec
    from .systems import available_systems

    installed = set(available_systems())
    names = available_datasets()
    if not names:
        print("no dataset specs found (is physml installed with its package data?)")
        return 1
    width = max(map(len, names))
    for name in names:
        spec = load_spec(name)
        # Sizes are per environment, and adaptation splits use only the adaptation environments.
        sizes = ", ".join(f"{scale} {sum(spec.split_totals(scale).values())}" for scale in spec.scales)
        missing = "" if spec.system in installed else f" [system {spec.system!r} not installed]"
        print(f"{name:<{width}}  {spec.title} (system {spec.system}; samples: {sizes}){missing}")
    return 0


def validate_path(path: str) -> int:
    """Print every schema violation of PATH; exit status 1 when there is any."""
    from .data import validate

    problems = validate(path)
    for problem in problems:
        print(f"{path}: {problem}")
    if problems:
        print(f"{len(problems)} schema violation(s) in {path}")
        return 1
    from .data import SCHEMA_VERSION

    print(f"OK: {path} follows the physml dataset schema {SCHEMA_VERSION}")
    return 0


def generate(arguments) -> int:
    """Generate a dataset, then print its summary and where its figure went."""
    from .data import SpecError, generate, summarize, up_to_date

    torch.set_num_threads(arguments.threads)
    try:
        existing = None if arguments.overwrite else up_to_date(arguments.name, arguments.scale, arguments.out)
    except (SpecError, ValueError, TypeError) as error:
        print(f"physml generate: error: {error}", file=sys.stderr)
        return 2
    if existing is not None:
        # Re-running the same command is a no-op, not an error: the data on disk are what it would write.
        print(f"{arguments.name} ({arguments.scale}) is up to date in {existing} (same configuration; "
              "--overwrite regenerates it)")
        print(summarize(existing))
        _report_figure(arguments, existing, existing / "train.nc")
        return 0
    try:
        report = generate(arguments.name, arguments.scale, arguments.out, workers=arguments.workers,
                          scheduler=arguments.scheduler, overwrite=arguments.overwrite, store=arguments.store,
                          torch_threads=arguments.threads)
    except (SpecError, ValueError, TypeError) as error:
        print(f"physml generate: error: {error}", file=sys.stderr)
        return 2
    except FileExistsError as error:
        print(f"physml generate: error: {error}", file=sys.stderr)
        return 1
    print(f"generated {arguments.name} ({arguments.scale}) in {report.seconds:.1f} s: "
          f"{report.shards_run} shard(s) run, {report.shards_skipped} reused -> {report.directory}")
    print(summarize(report.directory))
    _report_figure(arguments, report.directory, report.files["train"])
    return 0


def _report_figure(arguments, directory, train_file) -> None:
    if not arguments.figure:
        return
    try:
        from .plot import plot_dataset
    except ImportError:
        print("figure: skipped (matplotlib missing: pip install 'physml[viz]')")
        return
    print(f"figure: {plot_dataset(train_file, directory / 'train.png')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="physml", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command")
    demo_parser = subcommands.add_parser("demo", help="solve classic ODEs and print cost and accuracy")
    demo_parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    info_parser = subcommands.add_parser("info", help="versions and methods, or a summary of a dataset PATH")
    info_parser.add_argument("path", nargs="?", help="a dataset file (.nc, .zarr) or generated directory")
    subcommands.add_parser("list", help="the shipped datasets, one line each")
    validate_parser = subcommands.add_parser("validate", help="list every schema violation of a dataset")
    validate_parser.add_argument("path", help="a dataset file (.nc, .zarr) or generated directory")
    generate_parser = subcommands.add_parser(
        "generate", help="generate a dataset from its spec into OUT/NAME/SCALE/",
        description="Generate a dataset from its spec: one file per split in OUT/NAME/SCALE/, plus "
                    "statistics.json and manifest.json; a re-run after a crash reuses the finished shards.")
    generate_parser.add_argument("name", help="dataset name (see `physml list`) or a spec .toml file")
    generate_parser.add_argument("--scale", default="mini", help="scale of the spec: mini (default) or paper")
    generate_parser.add_argument("--out", default="data", help="root output directory (default ./data)")
    engine = generate_parser.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=int, help="worker processes of an embedded dask LocalCluster")
    engine.add_argument("--scheduler", help="address of a running dask scheduler (e.g. tcp://host:8786)")
    generate_parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    generate_parser.add_argument("--store", choices=("netcdf", "zarr"), default="netcdf",
                                 help="format of the split files (default netcdf)")
    generate_parser.add_argument("--threads", type=int, default=1,
                                 help="torch threads per process (default 1)")
    generate_parser.add_argument("--no-figure", dest="figure", action="store_false",
                                 help="do not draw OUT/NAME/SCALE/train.png")
    arguments = parser.parse_args(argv)
    threads = getattr(arguments, "threads", 1)
    if threads < 1:
        parser.error(f"--threads must be a positive integer, got {threads}")
    if getattr(arguments, "workers", None) is not None and arguments.workers < 1:
        parser.error(f"--workers must be a positive integer, got {arguments.workers}")
    if arguments.command in (None, "demo"):
        return demo(threads)
    if arguments.command == "info":
        return info(arguments.path)
    if arguments.command == "list":
        return list_datasets()
    if arguments.command == "validate":
        return validate_path(arguments.path)
    return generate(arguments)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
