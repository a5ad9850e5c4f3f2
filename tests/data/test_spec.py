"""Dataset specs: shipped specs load, bad specs fail naming the key, seeds follow the declared rule."""

import importlib.resources
import tomllib
from pathlib import Path

import numpy as np
import pytest

from physml.data import (
    SpecError,
    available_datasets,
    dataset_card,
    load_spec,
    parse_spec,
    plan_shards,
    sample_seed,
)

REPOSITORY = Path(__file__).resolve().parents[2]


def test_shipped_specs_load_and_have_cards():
    names = available_datasets()
    assert "aphynity_pendulum" in names
    for name in names:
        spec = load_spec(name)
        assert spec.name == name
        assert "## " in dataset_card(name)


def test_aphynity_pendulum_spec_matches_the_paper_setup():
    spec = load_spec("aphynity_pendulum")
    assert spec.system == "damped_pendulum" and spec.seeds.rule == "paper_index"
    assert spec.time.frames == 40 and spec.time.save_interval == 0.5 and spec.time.end == 20.0
    np.testing.assert_array_equal(spec.time.times()[:3], [0.0, 0.5, 1.0])
    assert (spec.solver.method, spec.solver.rtol) == ("dopri8", 1e-10)
    assert spec.scale("paper").sizes["train"] == 25 and spec.scale("paper").sizes["test"] == 25
    assert spec.parameters["omega0_squared"] == pytest.approx((2 * np.pi / 6) ** 2)


def test_specs_are_package_data_not_a_top_level_package():
    # importlib.resources finds them inside physml, which is what an installed wheel offers ...
    resource = importlib.resources.files("physml.data.specs") / "aphynity_pendulum.toml"
    assert resource.is_file()
    # ... through the link physml/data/specs -> datasets/ and the package-data patterns of pyproject.toml.
    link = REPOSITORY / "physml" / "data" / "specs"
    assert link.is_symlink() and link.resolve() == (REPOSITORY / "datasets").resolve()
    assert not (REPOSITORY / "datasets" / "__init__.py").exists()  # "datasets" stays Hugging Face's name
    package_data = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert {"*.toml", "*.md"} <= set(package_data["physml.data.specs"])


def test_setuptools_discovers_the_spec_directory():
    setuptools = pytest.importorskip("setuptools")
    packages = setuptools.find_namespace_packages(where=str(REPOSITORY), include=["physml*", "simulators*"])
    assert "physml.data.specs" in packages and "datasets" not in packages


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="unknown dataset 'pendulum'; known datasets are: .*aphynity_pendulum"
    ):
        load_spec("pendulum")


def test_unknown_scale_lists_the_scales():
    with pytest.raises(ValueError, match=r"scale 'huge' is not defined .* \['mini', 'paper'\]"):
        load_spec("aphynity_pendulum").scale("huge")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(colour="red"), r"unknown key\(s\) 'colour'"),
        (lambda d: d["solver"].update(rtoll=1e-3), r"unknown key\(s\) 'solver.rtoll'"),
        (lambda d: d["scales"]["mini"].update(valid=2), r"unknown key\(s\) 'scales.mini.valid'"),
        (lambda d: d["solver"].update(rtol="1e-8"), r"key 'solver.rtol' must be a number, got str '1e-8'"),
        (
            lambda d: d.update(samples_per_shard=2.5),
            r"key 'samples_per_shard' must be an integer, got float 2.5",
        ),
        (
            lambda d: d["parameters"].update(alpha=True),
            r"key 'parameters.alpha' must be a number, got bool True",
        ),
        (lambda d: d.update(references=[1]), r"key 'references' must be a string or an array of strings"),
        (
            lambda d: d["seeds"].update(rule="random"),
            r"key 'seeds.rule' must be one of \('spawn', 'paper_index', ",
        ),
        (lambda d: d.pop("system"), r"required key 'system' is missing"),
        (lambda d: d["time"].update(end=2.1), r"key 'time.end' = 2.1 must be start \+ k \* save_interval"),
        (lambda d: d["time"].update(frames=3), r"key 'time.frames' = 3 disagrees"),
        (lambda d: d["scales"]["mini"].pop("train"), r"table 'scales.mini' must give a 'train' size"),
        (lambda d: d["scales"]["mini"].update(test=0), r"key 'scales.mini.test' must be positive, got 0"),
        (
            lambda d: d.update(environments=[{"id": 0}, {"id": 0}]),
            r"key 'environments' must have distinct ids",
        ),
        (lambda d: d.update(dtype="float16"), r"key 'dtype' must be one of \('float32', 'float64'\)"),
    ],
)
def test_bad_specs_name_the_key(tiny_spec_data, edit, message):
    edit(tiny_spec_data)
    with pytest.raises(SpecError, match=message):
        parse_spec(tiny_spec_data, source="tiny.toml")


def test_spec_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nsystem = 3\n')
    with pytest.raises(SpecError, match=r"broken.toml: key 'system' must be a string, got int 3"):
        load_spec(path)
    path.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(path)


def test_to_dict_round_trips(tiny_spec_data):
    tiny_spec_data["environments"] = [{"id": 3, "alpha": 0.1}, {"id": 7, "alpha": 0.3}]
    spec = parse_spec(tiny_spec_data)
    again = parse_spec(spec.to_dict())
    assert again.to_dict() == spec.to_dict() and again.time == spec.time and again.scales == spec.scales
    assert [env.id for env in again.environments] == [3, 7]


def test_shards_are_fixed_by_the_spec(tiny_spec):
    shards = plan_shards(tiny_spec, "mini")
    assert [(shard.split, shard.start, shard.stop) for shard in shards] == [
        ("train", 0, 2),
        ("train", 2, 4),
        ("train", 4, 5),
        ("test", 0, 2),
        ("test", 2, 3),
    ]


def test_paper_index_seeds_follow_aphynity_and_leads():
    spec = load_spec("aphynity_pendulum")
    assert [sample_seed(spec, "train", 0, index)[1] for index in range(3)] == [0, 1, 2]
    assert [sample_seed(spec, "test", 0, index)[1] for index in range(3)] == [2**31 - 1, 2**31 - 2, 2**31 - 3]
    # LEADS seeds by the index within the environment: the same seed in every environment.
    assert sample_seed(spec, "train", 5, 2) == ("0-5-2", 2)
    # Splits the paper does not define come from SeedSequence spawn keys.
    key, seed = sample_seed(spec, "validation", 0, 2)
    expected = (
        np.random.SeedSequence(spec.seeds.entropy, spawn_key=(1, 0, 2)).generate_state(1, np.uint64)[0] >> 1
    )
    assert key == "1-0-2" and seed == int(expected)


def test_spawn_seeds_are_distinct_and_depend_only_on_the_key(tiny_spec):
    seeds = {
        sample_seed(tiny_spec, split, environment, index)[1]
        for split in ("train", "validation", "test")
        for environment in range(3)
        for index in range(50)
    }
    assert len(seeds) == 3 * 3 * 50 and all(0 <= seed < 2**63 for seed in seeds)
    assert sample_seed(tiny_spec, "test", 1, 7) == sample_seed(tiny_spec, "test", 1, 7)
