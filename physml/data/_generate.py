"""Dataset generation: fixed shards, per-sample seeds, batched solves, atomic writes, consolidation.

Pattern "shard then consolidate": the spec fixes the shards (split x environment x sample range), so
the data are identical whatever the number of workers.  Each shard draws one initial state per sample
from that sample's own generator, integrates the whole shard in one batched ``system.simulate`` call,
and writes its own netCDF file under a temporary name before renaming it.  A re-run skips shards whose
file exists.  One process then concatenates the shards into one file per split (nobody ever writes
concurrently into one file), attaches the train-split statistics and writes the sidecars.

Per-sample realisations.  A system whose ``sample_initial_conditions`` also draws per-sample model
state (the SST system draws each sample's flow) keeps it in buffers registered as ``None`` and filled by
that call, one row per drawn state.  Since each sample is drawn by its own call, the generator collects
those rows after every call and installs their concatenation before the batched solve, so sample ``k``
of a shard is integrated with its own realisation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import types
import typing
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._schema import (
    NOT_APPLICABLE,
    QC_FLAG_MEANINGS,
    QC_FLAG_VALUES,
    _now,
    _physml_version,
    attach_statistics,
    build_dataset,
    checksums,
    compute_statistics,
    list_splits,
    write_dataset,
)
from ._spec import ADAPTATION_SPLITS, PAPER_INDEX_TOP, SPLIT_IDS, DatasetSpec, SpecError, load_spec

SHARD_DIRECTORY = "shards"
MANIFEST = "manifest.json"
STATISTICS = "statistics.json"


@dataclass(frozen=True)
class Shard:
    """Samples ``start .. stop - 1`` of one split and one environment: the unit of work and of storage."""

    split: str
    environment: int
    start: int
    stop: int

    @property
    def filename(self) -> str:
        return f"{self.split}-environment{self.environment:04d}-samples{self.start:07d}-{self.stop:07d}.nc"


@dataclass
class GenerationReport:
    """What :func:`generate` did: files per split, statistics, shards run and skipped, wall time."""

    directory: Path
    files: dict[str, Path]
    statistics: dict
    shards_run: int
    shards_skipped: int
    seconds: float
    qc_counts: dict[str, dict[str, int]] = field(default_factory=dict)


def plan_shards(spec: DatasetSpec, scale: str) -> list[Shard]:
    """The shards of one scale, in a fixed order (split, environment, sample range).

    Examples
    --------
    >>> spec = load_spec("aphynity_pendulum")
    >>> [shard.filename for shard in plan_shards(spec, "mini")][0]
    'train-environment0000-samples0000000-0000004.nc'
    """
    chosen = spec.scale(scale)
    shards = []
    for split in SPLIT_IDS:
        size = chosen.sizes.get(split)
        if size is None:
            continue
        for environment in spec.environments_for(split):
            for start in range(0, size, chosen.samples_per_shard):
                shards.append(
                    Shard(split, environment.id, start, min(size, start + chosen.samples_per_shard))
                )
    return shards


def sample_seed(spec: DatasetSpec, split: str, environment: int, index: int) -> tuple[str, int]:
    """Spawn key (as text) and the integer torch seed of one sample.

    ``spawn``: ``SeedSequence(entropy, spawn_key=(split_id, environment, index))`` gives 63 bits.
    ``paper_index`` (APHYNITY, LEADS, CoDA): train sample ``i`` uses seed ``i`` and test sample ``i`` seed
    ``2**31 - 1 - i``, in every environment (CoDA's adaptation splits likewise); splits the papers do not
    have fall back to ``spawn``.  ``paper_index_reversed`` (APHYNITY's wave data) swaps the two.
    ``deterministic``: no draw at all, the seed is recorded as -1.

    Examples
    --------
    >>> spec = load_spec("aphynity_pendulum")
    >>> sample_seed(spec, "train", 0, 3), sample_seed(spec, "test", 0, 3)
    (('0-0-3', 3), ('2-0-3', 2147483644))
    """
    split_id = SPLIT_IDS[split]
    key = f"{split_id}-{environment}-{index}"
    rule = spec.seeds.rule
    if rule == "deterministic":
        return key, -1
    if rule in ("paper_index", "paper_index_reversed") and split in ("train", "test", *ADAPTATION_SPLITS):
        low = split in ("train", "adaptation_train")
        if rule == "paper_index_reversed":
            low = not low
        return key, index if low else PAPER_INDEX_TOP - index
    sequence = np.random.SeedSequence(spec.seeds.entropy, spawn_key=(split_id, environment, index))
    # 63 bits: fits netCDF's int64 and makes seed collisions across millions of samples negligible.
    return key, int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _system_class(spec: DatasetSpec):
    from ..systems import get_system

    return get_system(spec.system)


def check_spec_against_system(spec: DatasetSpec, scale: str) -> None:
    """Check parameter names and system options against the system before anything is written.

    Errors name the spec key: a wrong parameter raises :class:`SpecError`; options the system's
    constructor rejects are reported under ``system_options``.
    """
    cls = _system_class(spec)
    known = {parameter.name for parameter in cls.parameter_specs}
    tables = [("parameters", spec.parameters)]
    tables += [(f"environments[{index}]", env.parameters) for index, env in enumerate(spec.environments)]
    for where, table in tables:
        unknown = sorted(set(table) - known)
        if unknown:
            raise SpecError(
                f"{spec.source}: key(s) {[f'{where}.{name}' for name in unknown]} are not parameters of "
                f"system {spec.system!r}; its parameters are {sorted(known)}"
            )
    for environment in spec.environment_list():
        options = spec.system_options_for(scale, environment)
        where = f"scale {scale!r}" + (f", environment {environment.id}" if spec.environments else "")
        try:  # one trial construction, so that a bad option fails here and not inside every shard
            system = build_system(
                spec,
                scale,
                {name: np.ones(1) * value for name, value in spec.parameters.items()},
                environment,
            )
        except (TypeError, ValueError) as error:
            raise SpecError(
                f"{spec.source}: system {spec.system!r} rejects system_options {options!r} of {where}: "
                f"{error}"
            ) from error
        _check_system_features(spec, scale, system)


def _check_system_features(spec: DatasetSpec, scale: str, system) -> None:
    """What the optional spec keys ask of the system: methods, functions, velocity, a divisible grid."""
    if spec.initial_condition is not None and not callable(getattr(system, spec.initial_condition, None)):
        raise SpecError(
            f"{spec.source}: key 'initial_condition' = {spec.initial_condition!r} is not a method of system "
            f"{spec.system!r}"
        )
    if spec.reference is not None:
        _reference_function(spec, system)
    if spec.output.velocity and not (
        getattr(system, "velocity_variables", None) and callable(getattr(system, "velocity", None))
    ):
        raise SpecError(
            f"{spec.source}: key 'output.velocity' = true needs a system with 'velocity_variables' and a "
            f"'velocity(times)' method; {spec.system!r} has none"
        )
    if spec.output.spatial_stride > 1:
        if system.grid is None:
            raise SpecError(
                f"{spec.source}: key 'output.spatial_stride' needs a spatial grid; {spec.system!r} has none"
            )
        try:
            strided_grid(system.grid, spec.output.spatial_stride)
        except ValueError as error:
            raise SpecError(
                f"{spec.source}: key 'output.spatial_stride' at scale {scale!r}: {error}"
            ) from None


def _reference_function(spec: DatasetSpec, system):
    """The reference function, looked up in the module that defines the system's class."""
    module = sys.modules[type(system).__module__]
    function = getattr(module, spec.reference.function, None)
    if not callable(function):
        raise SpecError(
            f"{spec.source}: key 'reference.function' = {spec.reference.function!r} is not a function of "
            f"module {module.__name__!r} (where system {spec.system!r} is defined)"
        )
    return function


def strided_grid(grid, stride: int):
    """Every ``stride``-th point of ``grid`` along each dimension, starting at its first point.

    Periodic dimensions need ``shape % stride == 0``; bounded ones ``(shape - 1) % stride == 0`` (both
    ends stay grid points).

    Examples
    --------
    >>> from physml.systems import Grid
    >>> grid = Grid(dims=("x",), shape=(8,), lower=(0.0,), upper=(1.0,), boundary=("periodic",))
    >>> strided_grid(grid, 4).coordinates()["x"].tolist()
    [0.0, 0.5]
    """
    if stride == 1:
        return grid
    shape = []
    for name, n, condition in zip(grid.dims, grid.shape, grid.boundary, strict=True):
        intervals = n if condition == "periodic" else n - 1
        if intervals % stride:
            raise ValueError(
                f"stride {stride} must divide the {intervals} grid intervals along {name!r} ({condition}, "
                f"{n} points)"
            )
        shape.append(intervals // stride + (0 if condition == "periodic" else 1))
    return dataclasses.replace(grid, shape=tuple(shape))


def _coerce_options(cls, options: dict) -> dict:
    """TOML tables given for constructor arguments annotated with a dataclass become that dataclass.

    TOML has tables but no objects: ``warm_up = {duration = 28.5, forcing = "f0", viscosity = 8e-4}``
    reaches a constructor declared ``warm_up: WarmUp | None`` as ``WarmUp(28.5, "f0", 8e-4)``.
    """
    tables = {name: value for name, value in options.items() if isinstance(value, dict)}
    if not tables:
        return options
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: leave the options as they are
        return options
    coerced = dict(options)
    for name, value in tables.items():
        hint = hints.get(name)
        is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        candidates = typing.get_args(hint) if is_union else (hint,)
        classes = [kind for kind in candidates if dataclasses.is_dataclass(kind) and isinstance(kind, type)]
        if len(classes) == 1:
            coerced[name] = classes[0](**value)
    return coerced


def build_system(spec: DatasetSpec, scale: str, parameters: dict[str, np.ndarray], environment=None):
    """The system in float64 with per-sample parameters: scalars when uniform, batched tensors otherwise.

    ``environment`` adds that environment's ``system_options``.
    """
    import torch

    values = {}
    for name, array in parameters.items():
        array = np.asarray(array, dtype=np.float64)
        values[name] = float(array[0]) if (array == array[0]).all() else torch.as_tensor(array)
    cls = _system_class(spec)
    options = _coerce_options(cls, spec.system_options_for(scale, environment))
    return cls(**options, **values, dtype=torch.float64)


def simulate_shard(system, initial_states, times, spec: DatasetSpec, scale: str | None = None):
    """One batched solve of a whole shard (a module-level function so tests can inject failures)."""
    solver = spec.solver if scale is None else spec.solver_for(scale)
    return system.simulate(initial_states, times, **solver.simulate_arguments())


def _solver_record(spec: DatasetSpec, scale: str) -> dict:
    """Solver, tolerances and internal step as recorded in the files."""
    solver = spec.solver_for(scale)
    if solver is None:
        module = sys.modules[_system_class(spec).__module__].__name__
        return {
            "method": f"reference function {module}.{spec.reference.function}",
            "rtol": NOT_APPLICABLE,
            "atol": NOT_APPLICABLE,
            "internal_dt": NOT_APPLICABLE,
        }
    return {
        "method": solver.method,
        "rtol": solver.rtol if solver.rtol is not None else NOT_APPLICABLE,
        "atol": solver.atol if solver.atol is not None else NOT_APPLICABLE,
        "internal_dt": solver.internal_dt,
    }


def _global_attributes(spec: DatasetSpec, scale: str, config_json: str) -> dict:
    version = _physml_version()
    solver = _solver_record(spec, scale)
    tolerances = ", ".join(
        f"{name} {solver[name]:g}" for name in ("rtol", "atol") if not isinstance(solver[name], str)
    )
    attributes = {
        "title": spec.title,
        "summary": spec.summary,
        "references": "\n".join(spec.references),
        "license": spec.license,
        "product_version": spec.product_version,
        "id": f"physml:{spec.name}:{scale}",
        "source": f"physml {version}, system {spec.system}, solver {solver['method']}"
        + (f" ({tolerances})" if tolerances else ""),
        "history": f"{_now()} physml {version}: physml.data.generate({spec.name!r}, scale={scale!r})",
        "physml_dataset": spec.name,
        "physml_scale": scale,
        "physml_dt_save": spec.time_for(scale).save_interval,
        "physml_config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
    }
    if spec.output.spatial_stride > 1:
        attributes["physml_spatial_stride"] = spec.output.spatial_stride
    if spec.initial_condition is not None:
        attributes["physml_initial_condition"] = f"system method {spec.initial_condition}() (deterministic)"
    return attributes


def _add_environment_options(dataset, spec: DatasetSpec, scale: str, environment, n: int):
    """Text system options that differ between environments (e.g. a forcing) as coordinates on sample.

    Numeric differences between environments are parameters (coordinates already); a text option named in
    any environment's ``system_options`` gets a coordinate of that name in every shard of the dataset.
    """
    names = sorted(
        {
            name
            for env in spec.environments
            for name, value in env.system_options.items()
            if isinstance(value, str)
        }
    )
    options = spec.system_options_for(scale, environment)
    for name in names:
        if name in dataset.variables:
            raise SpecError(
                f"{spec.source}: environment system option {name!r} clashes with the variable or "
                f"coordinate {name!r}"
            )
        value = options.get(name)
        dataset = dataset.assign_coords(
            {
                name: (
                    "sample",
                    np.array([str(value) if value is not None else ""] * n, dtype=object),
                    {"long_name": f"system option {name!r} of the sample's environment"},
                )
            }
        )
    return dataset


def _realisation_buffers(system) -> list[str]:
    """Names of buffers registered as ``None``: per-sample state ``sample_initial_conditions`` may fill."""
    return [name for name, value in system._buffers.items() if value is None]


def _initial_states(spec: DatasetSpec, system, shard: Shard):
    """Seed keys, seeds and initial states of a shard; installs per-sample realisations (see the module)."""
    import torch

    keys, seeds, states = [], [], []
    realisation_names = _realisation_buffers(system)
    realisations: dict[str, list] = {name: [] for name in realisation_names}
    # A system that splits its sampler into a random draw and a deterministic spin-up (Navier-Stokes) has
    # each sample drawn from its own seed and the whole shard spun up in one batch: the same states,
    # a fraction of the cost of one spin-up per sample.
    batched_spin_up = (spec.initial_condition is None and not realisation_names
                       and callable(getattr(system, "draw_initial_conditions", None))
                       and callable(getattr(system, "spin_up", None)))
    for index in range(shard.start, shard.stop):
        key, seed = sample_seed(spec, shard.split, shard.environment, index)
        keys.append(key)
        seeds.append(seed)
        if spec.initial_condition is not None:
            states.append(getattr(system, spec.initial_condition)())
            continue
        if batched_spin_up:
            states.append(system.draw_initial_conditions(1, torch.Generator().manual_seed(seed)))
            continue
        states.append(system.sample_initial_conditions(1, torch.Generator().manual_seed(seed)))
        for name in realisation_names:
            value = getattr(system, name)
            if value is not None:
                realisations[name].append(value)
    n = shard.stop - shard.start
    for name, rows in realisations.items():
        if not rows:
            continue
        if len(rows) != n or any(row.shape[:1] != (1,) for row in rows):
            raise RuntimeError(
                f"buffer {name!r} of system {spec.system!r} was filled by sample_initial_conditions(1, ...) "
                f"with leading sizes {[tuple(row.shape[:1]) for row in rows]}; expected one row per sample"
            )
        setattr(system, name, torch.cat(rows))
    if batched_spin_up:
        return keys, seeds, system.spin_up(torch.cat(states))
    return keys, seeds, torch.cat(states)


def _reference_solution(spec: DatasetSpec, system, times, n: int):
    """The reference function's values repeated over ``n`` samples, ``(time, n, *state_shape)``."""
    import torch

    function = _reference_function(spec, system)
    arguments = dict(spec.reference.arguments)
    accepted = inspect.signature(function).parameters
    # The system's parameters the function takes (e.g. the viscosity): the stored coordinates then
    # describe the data.
    for name, value in system.parameter_values().items():
        if name in accepted and name not in arguments:
            arguments[name] = float(value)
    *coordinates, reference_times, values = function(**arguments)
    grid = system.grid
    expected = grid.coordinates() if grid is not None else {}
    if len(coordinates) != len(expected):
        raise SpecError(
            f"{spec.source}: reference function {spec.reference.function!r} returned {len(coordinates)} "
            f"coordinate array(s) before the times; the grid has dims {list(expected)}"
        )
    for (name, wanted), got in zip(expected.items(), coordinates, strict=True):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != wanted.shape or not np.allclose(got, wanted, rtol=0, atol=1e-12):
            raise SpecError(
                f"{spec.source}: coordinate {name!r} of reference function {spec.reference.function!r} "
                f"does not match the grid of system {spec.system!r} ({len(wanted)} points on "
                f"[{wanted[0]}, {wanted[-1]}]); check [reference] and system_options"
            )
    wanted_times = np.asarray(times, dtype=np.float64)
    got_times = np.asarray(reference_times, dtype=np.float64)
    if got_times.shape != wanted_times.shape or not np.allclose(got_times, wanted_times, rtol=0, atol=1e-12):
        raise SpecError(
            f"{spec.source}: the times of reference function {spec.reference.function!r} "
            f"({got_times.size} from {got_times[:1].tolist()} to {got_times[-1:].tolist()}) do not match "
            f"the spec's time grid ({wanted_times.size} from {wanted_times[0]} to {wanted_times[-1]})"
        )
    values = torch.as_tensor(values, dtype=torch.float64)
    state_shape = tuple(system.state_shape)
    if values.shape[1:] == state_shape[1:] and state_shape[0] == 1:
        values = values.unsqueeze(1)  # one-variable systems may omit the variable axis
    if tuple(values.shape) != (len(wanted_times), *state_shape):
        raise SpecError(
            f"{spec.source}: reference function {spec.reference.function!r} returned values of shape "
            f"{tuple(values.shape)}; expected (time, *state_shape) = ({len(wanted_times)}, "
            f"{', '.join(map(str, state_shape))})"
        )
    return values.unsqueeze(1).expand(len(wanted_times), n, *state_shape).clone()


def run_shard(spec: DatasetSpec, scale: str, shard: Shard, shard_directory: str) -> dict:
    """Simulate one shard and write it atomically; return a small summary (skips a finished shard).

    This runs in dask workers as well as in-process; it depends only on its arguments.
    """
    import torch

    path = Path(shard_directory) / shard.filename
    if path.exists():
        return {"shard": shard.filename, "skipped": True}
    started = time.perf_counter()
    config_json = json.dumps(spec.resolved_config(scale), sort_keys=True)
    environment = next(env for env in spec.environment_list() if env.id == shard.environment)
    n = shard.stop - shard.start
    parameters = {name: np.full(n, value) for name, value in spec.environment_parameters(environment).items()}
    system = build_system(spec, scale, parameters, environment)
    times = torch.as_tensor(spec.time_for(scale).times(), dtype=torch.float64)
    if spec.reference is not None:
        indices = range(shard.start, shard.stop)
        keys = [sample_seed(spec, shard.split, shard.environment, index)[0] for index in indices]
        seeds = [-1] * n
        trajectories, status, stats = _reference_solution(spec, system, times, n), "success", {}
    else:
        keys, seeds, initial_states = _initial_states(spec, system, shard)
        solution = simulate_shard(system, initial_states, times, spec, scale)
        trajectories, status, stats = solution.ys, solution.status, solution.stats
    auxiliary = []
    if spec.output.velocity:
        velocity = system.velocity(times)  # (time, sample, component, *grid)
        auxiliary = [
            (variable, velocity[:, :, index]) for index, variable in enumerate(system.velocity_variables)
        ]
    grid = system.grid
    stride = spec.output.spatial_stride
    if stride > 1:
        grid = strided_grid(system.grid, stride)
        index = (..., *(slice(None, None, stride) for _ in grid.dims))
        trajectories = trajectories[index]
        auxiliary = [(variable, values[index]) for variable, values in auxiliary]
    dataset = build_dataset(
        system,
        times,
        trajectories,
        split=shard.split,
        environment=shard.environment,
        parameters=None,
        seed_spawn_keys=keys,
        seeds=seeds,
        solver_failed=status != "success",
        solver=_solver_record(spec, scale),
        seed_entropy=spec.seeds.entropy,
        seed_rule=spec.seeds.rule,
        config=json.loads(config_json),
        attributes={**_global_attributes(spec, scale, config_json), "physml_shard": shard.filename},
        dtype=spec.dtype,
        grid=grid,
        auxiliary=auxiliary,
    )
    dataset = _add_environment_options(dataset, spec, scale, environment, n)
    write_dataset(dataset, path)
    stats = {key: value for key, value in stats.items() if isinstance(value, int)}
    return {
        "shard": shard.filename,
        "skipped": False,
        "status": status,
        "solver_stats": stats,
        "flagged": int((dataset["qc_flag"].values != 0).sum()),
        "seconds": time.perf_counter() - started,
    }


# -- orchestration ---------------------------------------------------------------------------------


def _write_json(path: Path, content) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    temporary.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _prepare_directory(directory: Path, config_json: str, overwrite: bool) -> Path:
    """Check for an existing output, then create (or resume) the shard directory."""
    shard_directory = directory / SHARD_DIRECTORY
    marker = shard_directory / "config.json"
    resumable = marker.is_file() and marker.read_text(encoding="utf-8") == config_json
    existing = [directory / MANIFEST] if (directory / MANIFEST).exists() else []
    if directory.is_dir():
        existing += [
            directory / f"{split}{ending}"
            for split in list_splits(directory)
            for ending in (".nc", ".zarr")
            if (directory / f"{split}{ending}").exists()
        ]
    if overwrite:
        if shard_directory.exists():
            shutil.rmtree(shard_directory)
        resumable = False
    elif marker.is_file() and not resumable:
        raise FileExistsError(
            f"{str(shard_directory)!r} holds shards of a different configuration; pass overwrite=True "
            "(CLI: --overwrite) to discard them"
        )
    elif existing and not resumable:
        raise FileExistsError(
            f"{str(directory)!r} already holds a dataset ({', '.join(path.name for path in existing)}); pass "
            "overwrite=True (CLI: --overwrite) to replace it"
        )
    shard_directory.mkdir(parents=True, exist_ok=True)
    if not resumable:
        marker.write_text(config_json, encoding="utf-8")
    return shard_directory


def _run_serial(tasks, progress_bar, results):
    for spec, scale, shard, shard_directory in tasks:
        results.append(run_shard(spec, scale, shard, shard_directory))
        progress_bar.update(1)


def _run_distributed(tasks, progress_bar, results, workers, scheduler, torch_threads):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "workers= and scheduler= need dask.distributed: pip install 'physml[distributed]'"
        ) from None
    if scheduler is not None:
        client, cluster = Client(scheduler), None
    else:
        # Processes, not threads: torch and HDF5 both hold process-wide state.  The nanny's environment
        # fixes torch's thread count in each worker (dask's default is already 1).
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": str(torch_threads)},
        )
        client = Client(cluster)
    futures = []
    try:
        futures = [client.submit(run_shard, *task, pure=False) for task in tasks]
        for future in as_completed(futures):
            results.append(future.result())
            progress_bar.update(1)
    finally:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()


def _consolidate(
    spec: DatasetSpec, scale: str, shards: list[Shard], shard_directory: Path, directory: Path, store: str
) -> tuple[dict[str, Path], dict, dict]:
    import xarray as xr

    from ._schema import open_dataset

    suffix = ".nc" if store == "netcdf" else ".zarr"
    splits = [split for split in SPLIT_IDS if any(shard.split == split for shard in shards)]
    version = _physml_version()
    sizes = {split: total for split, total in spec.split_totals(scale).items() if split in splits}

    def combine(split: str):
        parts = []
        for shard in (shard for shard in shards if shard.split == split):
            with open_dataset(shard_directory / shard.filename) as part:
                parts.append(part.load())
        combined = xr.concat(
            parts, dim="sample", data_vars="all", coords="minimal", compat="equals", combine_attrs="override"
        )
        combined = combined.assign_coords(
            sample=("sample", np.arange(combined.sizes["sample"], dtype=np.int64), parts[0]["sample"].attrs)
        )
        attrs = combined.attrs
        attrs.pop("physml_shard", None)
        flags = combined["qc_flag"].values
        attrs["physml_qc_counts"] = json.dumps(
            {
                meaning: int((flags == value).sum())
                for value, meaning in zip(QC_FLAG_VALUES.tolist(), QC_FLAG_MEANINGS.split(), strict=True)
            }
        )
        attrs["physml_split"] = split
        attrs["physml_split_sizes"] = json.dumps(sizes)
        attrs["history"] = (
            f"{attrs['history']}\n{_now()} physml {version}: consolidated "
            f"{len(parts)} shard(s) into {split}{suffix}"
        )
        return combined

    train = combine("train")
    statistics = compute_statistics(train)
    files, sums = {}, {}
    for split in splits:
        dataset = train if split == "train" else combine(split)
        attach_statistics(dataset, statistics)
        files[split] = write_dataset(dataset, directory / f"{split}{suffix}", overwrite=True)
        sums[split] = checksums(dataset)
        qc = json.loads(dataset.attrs["physml_qc_counts"])
        sums[split] = {"variables": sums[split], "samples": int(dataset.sizes["sample"]), "qc_counts": qc}
    return files, statistics, sums


def up_to_date(name_or_spec, scale: str = "mini", out: str | os.PathLike = "data") -> Path | None:
    """The output directory of :func:`generate` when it already holds this dataset with the same config.

    Returns ``None`` when nothing was generated there, the configuration differs, or a split file is
    missing, i.e. whenever :func:`generate` would have work to do (or would refuse without overwrite).
    """
    spec = name_or_spec if isinstance(name_or_spec, DatasetSpec) else load_spec(name_or_spec)
    directory = Path(out) / spec.name / scale
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return None
    recorded = json.loads(manifest.read_text(encoding="utf-8"))
    wanted = json.loads(json.dumps(spec.resolved_config(scale), sort_keys=True))
    files_present = all((directory / file).exists() for file in recorded.get("files", {}).values())
    return directory if recorded.get("config") == wanted and files_present else None


def generate(
    name_or_spec,
    scale: str = "mini",
    out: str | os.PathLike = "data",
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    store: str = "netcdf",
    torch_threads: int = 1,
) -> GenerationReport:
    """Generate a dataset from its spec into ``out/<name>/<scale>/`` (one file per split).

    Parameters
    ----------
    name_or_spec : str, path-like or DatasetSpec
        A shipped dataset name (see :func:`available_datasets`), a spec file, or a parsed spec.
    scale : str
        A scale of the spec (``"mini"``: seconds on a CPU; ``"paper"``: the paper's sizes).
    out : path-like
        Root output directory.
    workers : int, optional
        Run the shards on an embedded ``dask.distributed.LocalCluster`` with this many worker processes
        (one thread each).  ``None`` runs them in this process.
    scheduler : str, optional
        Address of a running dask scheduler (e.g. one started by dask-jobqueue on SLURM/PBS); its workers
        must see ``out`` on a shared filesystem.  Exclusive with ``workers``.
    overwrite : bool
        Replace an existing dataset in the output directory (otherwise :class:`FileExistsError`).
    progress : bool, optional
        Progress bar over shards: ``None`` shows it only on a terminal (tqdm ``disable=None``).
    store : {"netcdf", "zarr"}
        Format of the consolidated split files (shards are always netCDF4).
    torch_threads : int
        torch threads in each embedded worker process (this process's setting is left alone).

    Returns
    -------
    GenerationReport

    Examples
    --------
    >>> import tempfile
    >>> report = generate("aphynity_pendulum", "mini", out=tempfile.mkdtemp())
    >>> sorted(report.files), report.shards_run
    (['test', 'train', 'validation'], 3)
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    spec = name_or_spec if isinstance(name_or_spec, DatasetSpec) else load_spec(name_or_spec)
    spec.scale(scale)
    if workers is not None and scheduler is not None:
        raise ValueError(
            f"give workers or scheduler, not both (got workers={workers!r}, scheduler={scheduler!r})"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    if store not in ("netcdf", "zarr"):
        raise ValueError(f"store must be 'netcdf' or 'zarr', got {store!r}")
    check_spec_against_system(spec, scale)
    directory = Path(out) / spec.name / scale
    config = spec.resolved_config(scale)
    config_json = json.dumps(config, sort_keys=True)
    shard_directory = _prepare_directory(directory, config_json, overwrite)

    shards = plan_shards(spec, scale)
    pending = [shard for shard in shards if not (shard_directory / shard.filename).exists()]
    tasks = [(spec, scale, shard, str(shard_directory)) for shard in pending]
    results: list[dict] = []
    with tqdm(
        total=len(shards),
        initial=len(shards) - len(pending),
        unit="shard",
        desc=f"{spec.name} {scale}",
        disable=None if progress is None else not progress,
    ) as progress_bar:
        if workers is None and scheduler is None:
            _run_serial(tasks, progress_bar, results)
        else:
            _run_distributed(tasks, progress_bar, results, workers, scheduler, torch_threads)

    files, statistics, sums = _consolidate(spec, scale, shards, shard_directory, directory, store)
    if overwrite:  # files of the replaced dataset this run did not rewrite (other splits or format)
        for split in list_splits(directory):
            for stale in (directory / f"{split}.nc", directory / f"{split}.zarr"):
                if stale.exists() and stale != files.get(split):
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    seconds = time.perf_counter() - started
    _write_json(
        directory / STATISTICS,
        {
            "description": "normalisation statistics of the train split (samples with qc_flag 0); "
            "increments are differences between consecutive saved frames",
            "time_increment": spec.time_for(scale).save_interval,
            "variables": statistics,
        },
    )
    _write_json(
        directory / MANIFEST,
        {
            "dataset": spec.name,
            "scale": scale,
            "physml_version": _physml_version(),
            "date_created": _now(),
            "generation_seconds": round(seconds, 3),
            "shards": len(shards),
            "shards_run": len(pending),
            "files": {split: path.name for split, path in files.items()},
            "shard_results": sorted(results, key=lambda result: result["shard"]),
            "checksums_sha256_of_values": {split: entry["variables"] for split, entry in sums.items()},
            "samples": {split: entry["samples"] for split, entry in sums.items()},
            "qc_counts": {split: entry["qc_counts"] for split, entry in sums.items()},
            "config": config,
        },
    )
    # The shards duplicate the consolidated files: drop them once the manifest marks completion.
    shutil.rmtree(shard_directory)
    return GenerationReport(
        directory=directory,
        files=files,
        statistics=statistics,
        shards_run=len(pending),
        shards_skipped=len(shards) - len(pending),
        seconds=seconds,
        qc_counts={split: entry["qc_counts"] for split, entry in sums.items()},
    )
