"""Dataset generation: fixed shards, per-sample seeds, batched solves, atomic writes, consolidation.

Pattern "shard then consolidate": the spec fixes the shards (split x environment x sample range), so
the data are identical whatever the number of workers.  Each shard draws one initial state per sample
from that sample's own generator, integrates the whole shard in one batched ``system.simulate`` call,
and writes its own netCDF file under a temporary name before renaming it.  A re-run skips shards whose
file exists.  One process then concatenates the shards into one file per split (nobody ever writes
concurrently into one file), attaches the train-split statistics and writes the sidecars.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._schema import (
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
from ._spec import PAPER_INDEX_TOP, SPLIT_IDS, DatasetSpec, SpecError, load_spec

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
        for environment in spec.environment_list():
            for start in range(0, size, chosen.samples_per_shard):
                shards.append(
                    Shard(split, environment.id, start, min(size, start + chosen.samples_per_shard))
                )
    return shards


def sample_seed(spec: DatasetSpec, split: str, environment: int, index: int) -> tuple[str, int]:
    """Spawn key (as text) and the integer torch seed of one sample.

    ``spawn``: ``SeedSequence(entropy, spawn_key=(split_id, environment, index))`` gives 63 bits.
    ``paper_index`` (APHYNITY, LEADS): train sample ``i`` uses seed ``i`` and test sample ``i`` seed
    ``2**31 - 1 - i``, in every environment; splits the papers do not have fall back to ``spawn``.

    Examples
    --------
    >>> spec = load_spec("aphynity_pendulum")
    >>> sample_seed(spec, "train", 0, 3), sample_seed(spec, "test", 0, 3)
    (('0-0-3', 3), ('2-0-3', 2147483644))
    """
    split_id = SPLIT_IDS[split]
    key = f"{split_id}-{environment}-{index}"
    if spec.seeds.rule == "paper_index" and split in ("train", "test"):
        return key, index if split == "train" else PAPER_INDEX_TOP - index
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
    options = spec.system_options_for(scale)
    try:  # one trial construction, so that a bad option fails here and not inside every shard
        build_system(spec, scale, {name: np.ones(1) * value for name, value in spec.parameters.items()})
    except (TypeError, ValueError) as error:
        raise SpecError(
            f"{spec.source}: system {spec.system!r} rejects system_options {options!r} of scale "
            f"{scale!r}: {error}"
        ) from error


def build_system(spec: DatasetSpec, scale: str, parameters: dict[str, np.ndarray]):
    """The system in float64 with per-sample parameters: scalars when uniform, batched tensors otherwise."""
    import torch

    values = {}
    for name, array in parameters.items():
        array = np.asarray(array, dtype=np.float64)
        values[name] = float(array[0]) if (array == array[0]).all() else torch.as_tensor(array)
    return _system_class(spec)(**spec.system_options_for(scale), **values, dtype=torch.float64)


def simulate_shard(system, initial_states, times, spec: DatasetSpec):
    """One batched solve of a whole shard (a module-level function so tests can inject failures)."""
    return system.simulate(
        initial_states,
        times,
        method=spec.solver.method,
        rtol=spec.solver.rtol,
        atol=spec.solver.atol,
        options=spec.solver.options(),
    )


def _global_attributes(spec: DatasetSpec, scale: str, config_json: str) -> dict:
    version = _physml_version()
    solver = spec.solver
    return {
        "title": spec.title,
        "summary": spec.summary,
        "references": "\n".join(spec.references),
        "license": spec.license,
        "product_version": spec.product_version,
        "id": f"physml:{spec.name}:{scale}",
        "source": (
            f"physml {version}, system {spec.system}, solver {solver.method} "
            f"(rtol {solver.rtol:g}, atol {solver.atol:g})"
        ),
        "history": f"{_now()} physml {version}: physml.data.generate({spec.name!r}, scale={scale!r})",
        "physml_dataset": spec.name,
        "physml_scale": scale,
        "physml_dt_save": spec.time.save_interval,
        "physml_config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
    }


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
    system = build_system(spec, scale, parameters)
    keys, seeds, initial_states = [], [], []
    for index in range(shard.start, shard.stop):
        key, seed = sample_seed(spec, shard.split, shard.environment, index)
        keys.append(key)
        seeds.append(seed)
        initial_states.append(system.sample_initial_conditions(1, torch.Generator().manual_seed(seed)))
    times = torch.as_tensor(spec.time.times(), dtype=torch.float64)
    solution = simulate_shard(system, torch.cat(initial_states), times, spec)
    dataset = build_dataset(
        system,
        times,
        solution.ys,
        split=shard.split,
        environment=shard.environment,
        parameters=None,
        seed_spawn_keys=keys,
        seeds=seeds,
        solver_failed=solution.status != "success",
        solver={
            "method": spec.solver.method,
            "rtol": spec.solver.rtol,
            "atol": spec.solver.atol,
            "internal_dt": spec.solver.internal_dt,
        },
        seed_entropy=spec.seeds.entropy,
        seed_rule=spec.seeds.rule,
        config=json.loads(config_json),
        attributes={**_global_attributes(spec, scale, config_json), "physml_shard": shard.filename},
        dtype=spec.dtype,
    )
    write_dataset(dataset, path)
    stats = {key: value for key, value in solution.stats.items() if isinstance(value, int)}
    return {
        "shard": shard.filename,
        "skipped": False,
        "status": solution.status,
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
    environments = len(spec.environment_list())
    sizes = {split: spec.scale(scale).sizes[split] * environments for split in splits}

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
            "time_increment": spec.time.save_interval,
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
