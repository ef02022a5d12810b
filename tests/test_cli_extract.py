"""``w2sprobe extract`` / ``cache`` / ``config`` from the command line, and the bad-input matrix."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from conftest import build_tiny_model, run_cli

from w2sprobe.models.assets import alias_folder

SMALL = ["--n-train", "40", "--n-val", "10", "--n-test", "20"]


run = run_cli


def snapshot(root: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file under ``root`` (to prove nothing was touched)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.fixture
def workdir(tmp_path, monkeypatch, shared_data):
    """A working directory with a populated cache (one extraction of the tiny BERT on sst2)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return tmp_path


def extract_args(model: Path, *extra: str) -> list[str]:
    return [
        "extract",
        "--model",
        str(model),
        "--dataset",
        "sst2",
        *SMALL,
        "--cache-dir",
        "c",
        *extra,
    ]


def test_extract_json_then_cache_hit_then_ls_and_verify(capsys, workdir, tiny_models):
    code, out, err = run(capsys, *extract_args(tiny_models["bert"], "--layers", "1,3", "--json"))
    assert code == 0, err
    first = json.loads(out)
    assert first["cache_hit"] is False and first["layers"] == [1, 3]
    assert first["rows"] == {"weak_train": 20, "strong_train": 20, "val": 10, "test": 20}
    assert Path(first["path"]).is_file() and first["tokens"] > 0

    code, out, _ = run(capsys, *extract_args(tiny_models["bert"], "--layers", "1,3", "--json"))
    second = json.loads(out)
    assert code == 0 and second["cache_hit"] is True and second["key"] == first["key"]

    code, out, _ = run(capsys, "cache", "ls", "--cache-dir", "c", "--json")
    entries = json.loads(out)["entries"]
    assert code == 0 and len(entries) == 1
    assert entries[0]["key"] == first["key"] and entries[0]["complete"] and entries[0]["rows"] == 70
    assert entries[0]["layers"] == [1, 3] and entries[0]["dataset"] == "sst2"

    code, out, _ = run(capsys, "cache", "verify", "--cache-dir", "c", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_cache_verify_exits_1_on_a_truncated_file(capsys, workdir, tiny_models):
    code, out, _ = run(capsys, *extract_args(tiny_models["bert"], "--layers", "2", "--json"))
    path = Path(json.loads(out)["path"])
    path.write_bytes(path.read_bytes()[:4000])
    code, out, _ = run(capsys, "cache", "verify", "--cache-dir", "c")
    assert code == 1 and "BAD" in out and "truncated or corrupt" in out


def test_layer_16_exactly_as_written_with_a_config_file(capsys, workdir):
    model = build_tiny_model(workdir / "llama16", "llama", num_layers=16)
    (workdir / "w2sprobe.toml").write_text(
        f'strong_model = "{model}"\ndataset = "sst2"\ncache_dir = "c"\n'
        "n_train = 30\nn_val = 6\nn_test = 10\n"
    )
    code, _, err = run(capsys, "extract", "--layer", "16")
    assert code == 0, err
    files = list((workdir / "c" / "acts").rglob("*.h5"))
    assert len(files) == 1
    with h5py.File(files[0], "r") as handle:
        assert list(handle.attrs["layers"]) == [16] and handle.attrs["pooling"] == "last"
        assert handle["test"]["layer_016"].shape == (10, 16)

    code, out, _ = run(capsys, "config", "show", "--json")
    options = json.loads(out)["options"]
    assert options["strong_model"]["value"] == str(model)
    assert options["strong_model"]["source"].startswith("config ")
    assert (options["weak_model"]["value"], options["weak_model"]["source"]) == (
        "minilm",
        "default",
    )


def test_demo_default_model_refuses_layer_16_with_a_clear_line(capsys, workdir):
    # Prepared beforehand: on a fresh machine the first use unpacks MPNet and says so on
    # stderr, a notice that is not part of the error (and depends on test order).
    alias_folder("mpnet")
    capsys.readouterr()  # the notice went to the captured stderr, before the command
    code, _, err = run(capsys, "extract", "--layer", "16", "--cache-dir", "c", *SMALL)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith(
        "error: layer 16 is outside 0..12"
    )


def _file_with(tmp: Path, name: str, rows: list[dict]) -> Path:
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


BAD_INPUTS = {
    "unknown dataset": (lambda m, t: ["--dataset", "no-such-dataset"], "unknown dataset"),
    "missing field": (
        lambda m, t: ["--dataset", str(_file_with(t, "f.jsonl", [{"sentence": "a", "label": 0}]))],
        "text",
    ),
    "non-binary labels": (
        lambda m, t: [
            "--dataset",
            str(_file_with(t, "g.jsonl", [{"text": f"w{i}", "label": i % 3} for i in range(30)])),
        ],
        "binary",
    ),
    "empty split": (
        lambda m, t: [
            "--dataset",
            str(
                _file_with(
                    t, "h.jsonl", [{"text": f"w{i}", "label": int(i == 0)} for i in range(5)]
                )
            ),
        ],
        "empty",
    ),
    "unknown model": (lambda m, t: ["--model", "no-such-model"], "unknown model"),
    "unreadable folder": (lambda m, t: ["--model", str(t)], "unreadable"),
    "layer out of range": (lambda m, t: ["--layers", "0,7"], "layer 7 is outside 0..3"),
    "unknown pooling": (
        lambda m, t: ["--pool", "max"],
        "option --pool: 'max' is not one of last, mean, first",
    ),
    "max length": (lambda m, t: ["--max-length", "0"], "max-length must be > 0"),
    "unwritable cache": (
        lambda m, t: ["--cache-dir", str(_file_with(t, "plainfile", []) / "sub")],
        "not writable",
    ),
    "bad device": (
        lambda m, t: ["--device", "tpu"],
        "option --device: 'tpu' is not one of auto, cpu, cuda",
    ),
    "both layer options": (
        lambda m, t: ["--layer", "1", "--layers", "2"],
        "either --layer or --layers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_error_line_exit_2_and_cache_untouched(capsys, workdir, tiny_models, case):
    code, _, err = run(capsys, *extract_args(tiny_models["gpt2"], "--layers", "1"))
    assert code == 0, err
    before = snapshot(workdir / "c")
    make_args, message = BAD_INPUTS[case]
    inputs = workdir / "inputs"
    inputs.mkdir()
    args = extract_args(tiny_models["gpt2"], "--layers", "1")
    extra = make_args(tiny_models["gpt2"], inputs)
    if "--layers" in extra or "--layer" in extra:
        args = args[: args.index("--layers")]
    if "--dataset" in extra:  # extract takes one dataset: the case's replaces sst2
        at = args.index("--dataset")
        args = args[:at] + args[at + 2 :]
    code, out, err = run(capsys, *args, *extra)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err and out == ""
    assert snapshot(workdir / "c") == before


def test_corrupt_existing_file_is_an_error_and_kept(capsys, workdir, tiny_models):
    code, out, _ = run(capsys, *extract_args(tiny_models["gpt2"], "--layers", "1", "--json"))
    path = Path(json.loads(out)["path"])
    path.write_bytes(b"not an hdf5 file at all")
    code, _, err = run(capsys, *extract_args(tiny_models["gpt2"], "--layers", "1"))
    assert code == 2 and err.startswith("error: ") and "corrupt" in err
    assert path.read_bytes() == b"not an hdf5 file at all"


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_console_script_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "w2sprobe", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("data", "extract", "cache", "config"):
        assert command in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["extract", "--bogus"], "No such option: --bogus"),
        (
            ["extract", "--extract-batch-size", "x"],
            "option --extract-batch-size: expected an integer, got 'x'",
        ),
        (["nonsense"], "No such command"),
    ],
)
def test_option_errors_are_one_line_exit_2(capsys, workdir, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_bare_group_prints_help(capsys):
    code, out, err = run(capsys, "cache")
    assert code == 2 and "verify" in out + err and "error:" not in err


@pytest.mark.parametrize("layers", [["--layer", "2"], ["--layers", "1,3"], ["--layers", "all"]])
def test_no_build_builds_the_extraction_it_was_asked_for(capsys, workdir, tiny_models, layers):
    """The command's own target is built under --no-build (only prerequisites are refused): the
    study names an explicit-layer extraction ``extract:2`` and marks that very node."""
    code, out, err = run(
        capsys, *extract_args(tiny_models["bert"], *layers, "--no-build", "--json")
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cache_hit"] is False
    wanted = {"--layer": [2], "--layers": [1, 3] if layers[1] == "1,3" else [0, 1, 2, 3]}
    assert summary["layers"] == wanted[layers[0]]


def test_extract_layer_is_its_own_option_not_the_probe_layer(capsys, workdir, tiny_models):
    """A config file's probe ``layer`` does not narrow what ``extract`` caches."""
    Path("w2sprobe.toml").write_text("layer = 1\n")
    code, out, err = run(capsys, *extract_args(tiny_models["bert"], "--json"))
    assert code == 0, err
    assert json.loads(out)["layers"] == [0, 1, 2, 3]
    code, out, err = run(
        capsys, *extract_args(tiny_models["bert"], "--layer", "2", "--layers", "1")
    )
    assert code == 2 and err.startswith("error: give either --layer or --layers")
