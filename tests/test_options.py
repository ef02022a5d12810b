"""Typed options.

One source of defaults, precedence, type checks, presets, paths from a config file.
"""

from __future__ import annotations

import dataclasses

import pytest

from w2sprobe.data.splits import SplitSizes
from w2sprobe.errors import UsageError
from w2sprobe.options import GROUPS, PRESETS, SPECS, Options, defaults, resolve


def write(tmp_path, text: str):
    path = tmp_path / "w2sprobe.toml"
    path.write_text(text)
    return path


def test_precedence_cli_over_env_over_file_over_preset_over_default(tmp_path):
    config = write(
        tmp_path, 'preset = "blog"\nn_val = 7\ncache_dir = "from-file"\nn_test = 11\n'
    )
    env = {"W2SPROBE_CACHE": "/env/cache", "W2SPROBE_DATA_DIR": "/env/data"}
    opts = resolve({"n_val": "9"}, config, environ=env)
    assert (opts.data.n_val, opts.sources["n_val"]) == (9, "command line")
    # the environment beats the file (the conventional order: a shell's export wins over a file)
    assert (opts.workspace.cache_dir, opts.sources["cache_dir"]) == (
        "/env/cache",
        "env W2SPROBE_CACHE",
    )
    assert (opts.data.n_test, opts.sources["n_test"]) == (11, f"config {config}")
    assert (opts.data.data_dir, opts.sources["data_dir"]) == ("/env/data", "env W2SPROBE_DATA_DIR")
    assert (opts.data.n_train, opts.sources["n_train"]) == (10_000, "preset blog")
    assert (opts.probe.k, opts.sources["k"]) == (50, "default")
    assert opts.preset == "blog"
    # without the environment, the file's path is taken relative to the file
    opts = resolve({}, config, environ={})
    assert opts.workspace.cache_dir == str(tmp_path / "from-file")
    assert opts.sources["cache_dir"] == f"config {config}"
    # and the command line beats the environment
    opts = resolve({"cache_dir": "/cli/cache"}, config, environ=env)
    assert (opts.workspace.cache_dir, opts.sources["cache_dir"]) == ("/cli/cache", "command line")


def test_config_keys_are_the_flag_names_and_field_names_are_aliases(tmp_path):
    flags = resolve({}, write(tmp_path, 'weak = "a"\nstrong = "b"\npool = "mean"\n'), environ={})
    aliases = resolve(
        {},
        write(tmp_path, 'weak_model = "a"\nstrong_model = "b"\npooling = "mean"\n'),
        environ={},
    )
    for opts in (flags, aliases):
        assert (opts.model.weak_model, opts.model.strong_model, opts.extract.pooling) == (
            "a",
            "b",
            "mean",
        )
    # every option's key is its flag's name (but the report's --dataset, see below)
    for spec in SPECS.values():
        if spec.name != "report_datasets":
            assert spec.key == spec.flag.removeprefix("--").replace("-", "_"), spec.name
    assert SPECS["report_datasets"].key == "report_datasets"  # `dataset` is the data option
    assert SPECS["weak_model"].aliases == ("weak_model",) and SPECS["k"].aliases == ()
    # the Python API takes both spellings as well
    assert resolve({"weak": "x", "strong_model": "y"}, None, environ={}).model.weak_model == "x"


def test_two_spellings_of_one_option_are_an_error(tmp_path):
    with pytest.raises(UsageError, match="'weak' and 'weak_model' both set weak; keep one"):
        resolve({}, write(tmp_path, 'weak = "a"\nweak_model = "b"\n'), environ={})
    with pytest.raises(UsageError, match="key 'weak_model': expected text"):
        resolve({}, write(tmp_path, "weak_model = [3]\n"), environ={})


def test_the_config_file_is_found_in_the_nearest_parent(tmp_path, monkeypatch):
    write(tmp_path, 'k = 7\ncache_dir = "cache"\ndata_dir = "data"\n')
    nested = tmp_path / "project" / "notebooks"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    opts = resolve({}, None, environ={})
    assert opts.config_path == tmp_path / "w2sprobe.toml" and opts.probe.k == 7
    # paths in it are relative to its folder, not to the working folder
    assert opts.workspace.cache_dir == str(tmp_path / "cache")
    assert opts.data.data_dir == str(tmp_path / "data")
    # the nearest one wins
    (tmp_path / "project" / "w2sprobe.toml").write_text("k = 9\n")
    assert resolve({}, None, environ={}).probe.k == 9


def test_an_explicit_config_path_is_made_absolute(tmp_path, monkeypatch):
    write(tmp_path, 'out = "reports"\n')
    monkeypatch.chdir(tmp_path)
    opts = resolve({}, "w2sprobe.toml", environ={})
    assert opts.config_path == tmp_path / "w2sprobe.toml" and opts.config_path.is_absolute()
    assert opts.report.out == str(tmp_path / "reports")


def test_command_line_preset_overrides_the_file_preset(tmp_path):
    config = write(tmp_path, 'preset = "blog"\n')
    opts = resolve({}, config, preset="demo", environ={})
    assert opts.data.n_train == 1_200 and opts.preset == "demo"


@pytest.mark.parametrize(
    "text, message",
    [
        ('k = "50"', "key 'k': expected an integer, got the string '50'"),
        ("k = 2.5", "key 'k': expected an integer, got 2.5"),
        ("l2 = true", "key 'l2': expected a number, got True"),
        ("probe = true", "key 'probe': expected text, got True"),  # names: checked by the probe
        ('standardize = "yes"', "key 'standardize': expected true or false"),
        ("seeds = [0, 1.5]", "key 'seeds': expected an integer, got 1.5"),
        ("nosuch = 1", "unknown option(s) nosuch"),
        ('preset = "paper"', "unknown preset 'paper'"),
        ("k = ", "cannot read config file"),
    ],
)
def test_config_values_are_type_checked_naming_the_key(tmp_path, text, message):
    with pytest.raises(UsageError, match=None) as info:
        resolve({}, write(tmp_path, text + "\n"), environ={})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "cli, message",
    [
        ({"k": "fifty"}, "option --k: expected an integer, got 'fifty'"),
        (
            {"loss": "hinge"},
            "option --loss: 'hinge' is not one of xent, kl, logconf, entropy, window",
        ),
        ({"device": "tpu"}, "option --device: 'tpu' is not one of auto, cpu, cuda"),
    ],
)
def test_command_line_values_are_type_checked(cli, message):
    with pytest.raises(UsageError) as info:
        resolve(cli, None, environ={})
    assert message in str(info.value)


def test_text_values_are_parsed_and_lists_split_on_commas(tmp_path):
    opts = resolve(
        {
            "k": "7",
            "l2": "1e-3",
            "standardize": True,
            "seeds": ["0,2", "5"],
            "dataset": ["a", "b,c"],
        },
        None,
        environ={},
    )
    assert (opts.probe.k, opts.probe.l2, opts.probe.standardize) == (7, 1e-3, True)
    assert opts.run.seeds == [0, 2, 5] and opts.data.dataset == ["a", "b", "c"]
    file_opts = resolve(
        {}, write(tmp_path, 'layers = [16]\nseeds = [1, 2]\ndataset = "cola"\n'), environ={}
    )
    assert (
        file_opts.extract.layers == "16"
        and file_opts.run.seeds == [1, 2]
        and file_opts.data.dataset == ["cola"]
    )


def test_absolute_paths_in_a_config_file_stay_as_written(tmp_path):
    opts = resolve({}, write(tmp_path, 'data_dir = "/abs/data"\nout = "reports"\n'), environ={})
    assert opts.data.data_dir == "/abs/data" and opts.report.out == str(tmp_path / "reports")


def test_every_field_has_a_doc_a_flag_and_a_unique_name():
    names = [f.name for cls in GROUPS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names)) == len(SPECS)
    for spec in SPECS.values():
        assert spec.doc.endswith(".") and spec.flag.startswith("--"), spec.name


def test_presets_name_only_real_options_with_valid_values():
    for name, values in PRESETS.items():
        assert set(values) <= set(SPECS), name
        resolve({}, None, preset=name, environ={})  # every value passes its type check


def test_defaults_live_once_and_the_library_objects_agree():
    """The split sizes and the training recipe built from the defaults are the documented ones."""
    from w2sprobe.train.inputs import train_config

    opts = defaults()
    sizes = SplitSizes(n_train=opts.data.n_train, n_val=opts.data.n_val, n_test=opts.data.n_test)
    assert (sizes.n_train, sizes.n_val, sizes.n_test) == (1_200, 100, 400)
    config = train_config(opts, "ceiling")
    assert (config.lr, config.minibatch, config.batch_size, config.epochs) == (5e-4, 32, 32, 3)
    blog = resolve({}, None, preset="blog", environ={})
    assert (
        train_config(blog, "ceiling").lr,
        train_config(blog, "weak").lr,
        blog.train.minibatch,
    ) == (8e-5, 5e-4, 8)


def test_replace_scopes_one_dataset_and_seed():
    opts = defaults().replace(dataset=["cola"], seed=3)
    assert opts.dataset == "cola" and opts.workspace.seed == 3 and opts.sources["seed"] == "plan"
    with pytest.raises(UsageError, match="takes one --dataset, got 2"):
        Options().replace(dataset=["a", "b"]).dataset
