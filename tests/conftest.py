"""Shared fixtures: tiny random models of each architecture, saved as real HF folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

WORDS = [f"w{i}" for i in range(120)] + "the a good bad movie film great awful not very".split()


def make_tokenizer(with_pad: bool, cls_token: bool):
    """A word-level fast tokenizer over WORDS; decoders get no pad token (as GPT-2/Llama)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "</s>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if cls_token:
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    kwargs = {"unk_token": "[UNK]", "eos_token": "</s>"}
    if with_pad:
        kwargs["pad_token"] = "[PAD]"
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def tiny_config(arch: str, num_layers: int = 3):
    from transformers import (
        BertConfig,
        GPT2Config,
        LlamaConfig,
        MistralConfig,
        MPNetConfig,
        Qwen2Config,
    )

    vocab = 5 + len(WORDS)
    common = dict(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=32,
    )
    decoder = dict(common, num_key_value_heads=2, eos_token_id=4, bos_token_id=4, pad_token_id=None)
    return {
        "llama": lambda: LlamaConfig(**decoder),
        "qwen2": lambda: Qwen2Config(**decoder),
        "mistral": lambda: MistralConfig(**decoder),
        "gpt2": lambda: GPT2Config(
            vocab_size=vocab,
            n_embd=16,
            n_layer=num_layers,
            n_head=4,
            bos_token_id=4,
            eos_token_id=4,
        ),
        "bert": lambda: BertConfig(**common, pad_token_id=1),
        "mpnet": lambda: MPNetConfig(**common, pad_token_id=1),
    }[arch]()


ARCHS = ["gpt2", "llama", "qwen2", "mistral", "bert", "mpnet"]
DECODERS = {"gpt2", "llama", "qwen2", "mistral"}


def build_tiny_model(folder: Path, arch: str, num_layers: int = 3, seed: int = 0) -> Path:
    """Save a random tiny ``arch`` model plus tokenizer to ``folder`` and return it."""
    from transformers import AutoModel

    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_config(arch, num_layers))
    model.save_pretrained(folder)
    make_tokenizer(with_pad=arch not in DECODERS, cls_token=arch not in DECODERS).save_pretrained(
        folder
    )
    return folder


def modules_imported_by(commands: list[list[str]], modules: tuple[str, ...], cwd: Path) -> list:
    """Which of ``modules`` a fresh interpreter has imported after running each CLI command of
    ``commands`` in-process in ``cwd`` (their output swallowed, their exit codes ignored): a
    subprocess, so the imports are measured, not inherited from the test session."""
    import ast
    import subprocess
    import sys

    probe = (
        "import sys, io, contextlib\nfrom w2sprobe.cli.app import main\n"
        f"for args in {commands!r}:\n"
        "    try:\n"
        "        with contextlib.redirect_stdout(io.StringIO()):\n"
        "            main(args)\n"
        "    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the w2sprobe CLI in-process; returns (exit code, stdout, stderr)."""
    from w2sprobe.cli.app import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def tiny_bert_workspace(
    capsys, root: Path, tiny_models, layers: str, sizes=(300, 60, 80), settings: str = ""
) -> dict:
    """``root`` made a workspace of the tiny BERT on sst2 (its ``w2sprobe.toml``: cache ``c``,
    ``sizes`` rows of strong_train, val, test, and any further ``settings`` lines), with
    ``layers`` extracted and a noisy 'weak' label set (:func:`noisy_weak_set`). The data folder
    comes from ``settings`` or ``W2SPROBE_DATA_DIR``. Returns the activation file's ``path``
    and the label set's ``ids``, ``truth`` and ``soft`` per split."""
    import os

    from w2sprobe.cache import list_entries

    n_train, n_val, n_test = sizes
    (root / "w2sprobe.toml").write_text(
        f'strong_model = "{tiny_models["bert"]}"\ncache_dir = "c"\n'
        f"n_train = {n_train}\nn_val = {n_val}\nn_test = {n_test}\n{settings}"
    )
    before = Path.cwd()
    os.chdir(root)
    try:
        code, _, err = run_cli(capsys, "extract", "--layers", layers)
    finally:
        os.chdir(before)
    assert code == 0, err
    path = list_entries(root / "c")[0].path
    return {"path": path, **noisy_weak_set(path, root / "c")}


def noisy_weak_set(acts_path: Path, cache_dir: Path, flip: float = 0.3) -> dict:
    """A 'weak' label set on an activation file's ids: its ground truth with ``flip`` of the
    labels flipped (seeded), softened to 0.1 / 0.9; saved in ``cache_dir`` and returned."""
    import numpy as np

    from w2sprobe.cache import ActivationStore
    from w2sprobe.labels import LabelSet, save_label_set

    with ActivationStore.open(acts_path) as store:
        ids = {s: store.ids(s) for s in store.splits}
        truth = {s: store.labels(s) for s in store.splits}
    rng = np.random.default_rng(0)
    soft = {s: np.where(rng.random(len(y)) < flip, 1 - y, y) * 0.8 + 0.1 for s, y in truth.items()}
    save_label_set(LabelSet("weak", "sst2", ids, soft, {"made": f"{flip:.0%} flips"}), cache_dir)
    return {"ids": ids, "truth": truth, "soft": soft}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """One saved tiny model per architecture, built once per test session."""
    root = tmp_path_factory.mktemp("models")
    return {arch: build_tiny_model(root / arch, arch) for arch in ARCHS}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline dataset mirror beside the repo (../shared/data); its absence is a failure."""
    assert SHARED_DATA.is_dir(), f"offline dataset mirror missing: expected {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The shared offline dataset mirror; its absence is a failure, never a skip."""
    if not (SHARED_DATA / "sst2" / "train.jsonl").is_file():
        pytest.fail(
            f"offline dataset mirror not found at {SHARED_DATA} (expected <repo>/../shared/data)"
        )
    return SHARED_DATA


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach the hub fails the test loudly.

    Not autouse: the dataset test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("no_hub")``.
    """

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to load from the hub: {args}")

    monkeypatch.setattr("w2sprobe.data.sources.load_hub_split", refuse)
    monkeypatch.setattr("w2sprobe.data.hub.load_hub_dataset", refuse)


@pytest.fixture(autouse=True, scope="session")
def _no_stray_config_file(tmp_path_factory):
    """Commands find w2sprobe.toml in the working folder or any parent: one left in /tmp (or
    above the test folders) would be read by every test that runs a command in tmp_path."""
    base = tmp_path_factory.getbasetemp()
    stray = [p / "w2sprobe.toml" for p in base.parents if (p / "w2sprobe.toml").is_file()]
    assert not stray, f"remove {stray[0]}: every test would read it as its config file"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads the user's config file or env overrides; assets stay in a shared test dir."""
    for name in ("W2SPROBE_CACHE", "W2SPROBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # a fresh splits memo per test: a test that swaps a loader must not be served a memo
    monkeypatch.setenv("W2SPROBE_SPLITS_MEMO", str(tmp_path_factory.mktemp("splits-memo")))
