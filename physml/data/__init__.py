"""Datasets: declarative specs, one xarray schema (netCDF4 or Zarr), generation sweeps, torch loading.

- :func:`load_spec`, :func:`available_datasets`: the specs shipped in ``datasets/`` (also inside the wheel),
  including multi-environment sets with adaptation splits, reference solutions and subsampled grids;
- :func:`build_dataset`, :func:`write_dataset`, :func:`open_dataset`: the schema and its atomic IO;
- :func:`validate`: every schema violation of a file, directory or Dataset;
- :func:`generate`: fixed shards, per-sample seeds, serial or dask.distributed, consolidation, train stats;
- :class:`TrajectoryWindows`: a lazy map-style torch ``Dataset`` of (sample, start time) windows.
"""

from ._generate import GenerationReport as GenerationReport
from ._generate import Shard as Shard
from ._generate import generate as generate
from ._generate import plan_shards as plan_shards
from ._generate import sample_seed as sample_seed
from ._generate import up_to_date as up_to_date
from ._schema import QC_FLAG_MEANINGS as QC_FLAG_MEANINGS
from ._schema import QC_FLAG_VALUES as QC_FLAG_VALUES
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._schema import attach_statistics as attach_statistics
from ._schema import build_dataset as build_dataset
from ._schema import checksums as checksums
from ._schema import compute_statistics as compute_statistics
from ._schema import list_splits as list_splits
from ._schema import open_dataset as open_dataset
from ._schema import qc_flags as qc_flags
from ._schema import write_dataset as write_dataset
from ._spec import ADAPTATION_SPLITS as ADAPTATION_SPLITS
from ._spec import SPLIT_IDS as SPLIT_IDS
from ._spec import DatasetSpec as DatasetSpec
from ._spec import SpecError as SpecError
from ._spec import available_datasets as available_datasets
from ._spec import dataset_card as dataset_card
from ._spec import load_spec as load_spec
from ._spec import parse_spec as parse_spec
from ._summary import summarize as summarize
from ._validate import validate as validate
from ._windows import TrajectoryWindows as TrajectoryWindows
