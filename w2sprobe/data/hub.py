"""Where each registry dataset lives on the Hugging Face hub today, and loading it from there.

``datasets`` 4 and later refuse loading scripts ("Dataset scripts are no longer supported, but
found piqa.py"), and several ids of the reference study are legacy repos that hold only such a
script.  ``HUB_SOURCES`` resolves every registry entry to something that loads without one: the
canonical repo id, a pinned revision where one is known, and the config name *that revision*
uses.  A repo whose main revision is script-only is read from its auto-converted parquet branch
(``refs/convert/parquet``), where datasets infers one config named ``default`` and the original
configs are folders (``<config>/<split>/0000.parquet``), or from a copy verified against the
original.  Each entry says why, with the public evidence.

``load_hub_dataset`` is the single place that asks the hub for data; ``load_with_fallback``
retries a script-only repo once on its parquet branch and says so; every failure becomes one
``UsageError`` line naming the dataset, the repo tried and what to do instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError, first_line
from ..hubnet import UNREACHABLE, is_unreachable_error, offline_unless_reachable

PARQUET_REVISION = "refs/convert/parquet"
#: The one config datasets infers for a repo without a loading script or config metadata.
INFERRED_CONFIG = "default"
SCRIPT_ERROR = "Dataset scripts are no longer supported"

log = logging.getLogger("w2sprobe.data")


@dataclass(frozen=True)
class HubSource:
    """Where one dataset's rows come from on the hub.

    ``config`` is the name to pass to ``load_dataset`` at ``revision`` (``None``: the repo's only
    or default config).  ``revision`` is a commit sha (pinned), ``PARQUET_REVISION``, or ``None``
    (main; no sha was found in public evidence, so the dataset fingerprint is what detects a
    change).  On the parquet branch, ``export_dir`` names the folder of the original config
    (``<export_dir>/<split>/*.parquet``); ``None`` lets datasets infer the splits (single-config
    repos).  ``splits`` are the hub splits the registry reads; ``why`` the evidence.
    """

    repo: str
    config: str | None
    splits: tuple[str, ...]
    revision: str | None = None
    export_dir: str | None = None
    why: str = ""
    manual_download: bool = False

    @property
    def on_parquet_branch(self) -> bool:
        return self.revision == PARQUET_REVISION

    def describe(self) -> str:
        """``repo (config) @revision`` for messages."""
        config = f" ({self.config})" if self.config else ""
        folder = f" folder {self.export_dir}" if self.export_dir else ""
        return f"{self.repo}{config}{folder} @{self.revision or 'main'}"


def _parquet(
    repo: str, splits: tuple[str, ...], why: str, export_dir: str | None = None
) -> HubSource:
    return HubSource(repo, INFERRED_CONFIG, splits, PARQUET_REVISION, export_dir, why)


_TRAIN_VAL = ("train", "validation")
_TRAIN_TEST = ("train", "test")
_SUPER_GLUE_SHA = "3de24cf8022e94f4ee4b9d55a6f539891524d646"
_PORTAL = "sha pinned in the PorTAL 14-task suite card (ramp-public/portallib)"
_ETHICS_WHY = (
    "hendrycks/ethics is built by a loading script (it maps *_test.csv -> validation, "
    "*_test_hard.csv -> test; see ../shared/data/README.md); read its parquet export, "
    "one folder per config; lm-eval #3171 lists the EleutherAI copy as script-based too"
)


def _ethics(config: str) -> HubSource:
    return _parquet("hendrycks/ethics", _TRAIN_TEST, _ETHICS_WHY, export_dir=config)


#: Registry name -> hub source.  One table; tests check every entry.
HUB_SOURCES: dict[str, HubSource] = {
    "anli-r2": HubSource(
        "facebook/anli",
        None,
        ("train_r2", "test_r2"),
        why="lm-eval #3171 sweep: bare `anli` should be `facebook/anli`; public task code loads "
        "it by name with datasets 5 (splits train_r3/dev_r3 style)",
    ),
    "boolq": HubSource(
        "google/boolq",
        None,
        _TRAIN_VAL,
        "35b264d03638db9f4ce671b711558bf7ff0f80d5",
        why=f"bare `boolq` moved to google/boolq (parquet on main); {_PORTAL}",
    ),
    "cola": HubSource(
        "nyu-mll/glue",
        "cola",
        _TRAIN_VAL,
        why="GLUE lives at nyu-mll/glue with parquet configs; loaded by name in public task code",
    ),
    "cosmos_qa": _parquet(
        "allenai/cosmos_qa",
        _TRAIN_VAL,
        "script-based (public dataset survey marks allenai/cosmos_qa `script-based`); public "
        "task code loads it with revision=refs/convert/parquet",
    ),
    "dream": _parquet(
        "dataset-org/dream",
        ("train", "test"),
        "script-based (same survey); its export holds plain_text/<split>/0000.parquet (commit "
        "ca4c45fe pinned by a public collector); tasksource loads revision=PARQUET, "
        "data_dir=plain_text",
    ),
    "ethics-commonsense": _ethics("commonsense"),
    "ethics-deontology": _ethics("deontology"),
    "ethics-justice": _ethics("justice"),
    "ethics-utilitarianism": _ethics("utilitarianism"),
    "ethics-virtue": _ethics("virtue"),
    "hellaswag": HubSource(
        "Rowan/hellaswag",
        None,
        _TRAIN_VAL,
        "218ec52e09a7e7462a5400043bb9a69a41d06b76",
        why=f"Xilinx/brevitas #1624: Rowan/hellaswag loads fine under datasets 5.x; {_PORTAL}",
    ),
    "mc_taco": _parquet(
        "CogComp/mc_taco",
        ("test", "validation"),
        "lm-eval #3171 sweep lists CogComp/mc_taco as script-based; public eval code reads it "
        "via the refs/convert/parquet branch",
    ),
    "multirc": HubSource(
        "aps/super_glue",
        "multirc",
        _TRAIN_VAL,
        _SUPER_GLUE_SHA,
        why="bare `super_glue` is aps/super_glue, converted to parquet (lm-eval #2821: "
        f"aps/super_glue discussions/16); {_PORTAL}",
    ),
    "openbookqa": HubSource(
        "allenai/openbookqa",
        "main",
        _TRAIN_TEST,
        "388097ea7776314e93a529163e0fea805b8a6454",
        why=f"parquet on main, configs main/additional; {_PORTAL}",
    ),
    "paws": HubSource(
        "google-research-datasets/paws",
        "labeled_final",
        _TRAIN_TEST,
        why="canonical id of bare `paws`; public code loads it with config labeled_final",
    ),
    "piqa": _parquet(
        "ybisk/piqa",
        _TRAIN_VAL,
        "Xilinx/brevitas #1624: main is script-only (piqa.py); refs/convert/parquet loads, "
        "config `default` instead of `plain_text`",
    ),
    "quail": _parquet(
        "textmachinelab/quail",
        _TRAIN_VAL,
        "public code loads textmachinelab/quail, config `default`, revision=refs/convert/parquet",
    ),
    "quartz": HubSource(
        "allenai/quartz",
        None,
        _TRAIN_TEST,
        why="no script; loaded by plain load_dataset('allenai/quartz') in public code",
    ),
    "sciq": HubSource(
        "allenai/sciq",
        None,
        ("train", "validation", "test"),
        "2c94ad3e1aafab77146f384e23536f97a4849815",
        why=f"parquet on main; {_PORTAL}",
    ),
    "sciq_with_support": HubSource(
        "allenai/sciq",
        None,
        ("train", "validation", "test"),
        "2c94ad3e1aafab77146f384e23536f97a4849815",
        why=f"as sciq; {_PORTAL}",
    ),
    "social_i_qa": HubSource(
        "lighteval/siqa",
        None,
        _TRAIN_VAL,
        why="allenai/social_i_qa is script-only; lm-eval #3943 swapped it for lighteval/siqa after "
        "md5 of every used column matched (train 33,410 / validation 1,954)",
    ),
    "sst2": HubSource(
        "stanfordnlp/sst2",
        None,
        _TRAIN_VAL,
        why="parquet on main; loaded by name in public task code",
    ),
    "story_cloze": HubSource(
        "LSDSem/story_cloze",
        "2016",
        ("validation", "test"),
        manual_download=True,
        why="the hub script needs files fetched by hand (manual download): mirror folder only",
    ),
    "tweet_eval_hate": HubSource(
        "cardiffnlp/tweet_eval",
        "hate",
        _TRAIN_TEST,
        why="parquet configs on main; loaded by name with config hate in public task code",
    ),
    "tweet_eval_sentiment": HubSource(
        "cardiffnlp/tweet_eval",
        "sentiment",
        _TRAIN_TEST,
        why="as tweet_eval_hate, config sentiment",
    ),
    "twitter-sentiment": HubSource(
        "EleutherAI/twitter-sentiment",
        None,
        _TRAIN_TEST,
        why="the reference code's own loader: hf_loader('EleutherAI/twitter-sentiment'); no script",
    ),
    "wic": HubSource(
        "aps/super_glue",
        "wic",
        _TRAIN_VAL,
        _SUPER_GLUE_SHA,
        why=f"as multirc (aps/super_glue, parquet); {_PORTAL}",
    ),
    "amazon_polarity": HubSource(
        "fancyzhx/amazon_polarity",
        None,
        _TRAIN_TEST,
        why="bare `amazon_polarity` moved to fancyzhx/amazon_polarity (parquet on main); "
        "loaded by name in public task code",
    ),
    "anthropic_hh": HubSource(
        "Anthropic/hh-rlhf",
        None,
        _TRAIN_TEST,
        why="jsonl.gz data files, no script; loaded by name in public task code",
    ),
}


@dataclass
class HubLoad:
    """What a hub load returned and how: the dataset(s), the source asked, and any notice."""

    data: Any  # datasets.Dataset (one split) or DatasetDict (split=None)
    source: HubSource
    notice: str | None = None


def load_hub_dataset(
    repo: str,
    *,
    config: str | None,
    split: str | None,
    revision: str | None = None,
    data_files: dict | None = None,
) -> Any:
    """``datasets.load_dataset`` on a hub repo: the only call in w2sprobe that reaches the hub.

    Without a route to the hub it reads the local hub cache only (``hubnet``), at once.
    """
    import datasets

    kwargs: dict[str, Any] = {"split": split}
    if revision is not None:
        kwargs["revision"] = revision
    if data_files is not None:
        kwargs["data_files"] = data_files
    with offline_unless_reachable():
        return datasets.load_dataset(repo, config, **kwargs)


def export_data_files(export_dir: str | None, splits: tuple[str, ...] | list[str]) -> dict | None:
    """``data_files`` selecting one config folder of a parquet export, or ``None`` to infer."""
    if export_dir is None:
        return None
    return {split: f"{export_dir}/{split}/*.parquet" for split in splits}


def parquet_fallback(source: HubSource) -> HubSource:
    """The same dataset on the repo's parquet branch: config ``default``, the old config a folder.

    The export names the folder after the script's config (``plain_text`` for piqa); with no
    config given, datasets infers the splits from the branch's folders.
    """
    return HubSource(
        source.repo,
        INFERRED_CONFIG,
        source.splits,
        PARQUET_REVISION,
        export_dir=source.config if source.config != INFERRED_CONFIG else None,
        why=f"fallback: {source.repo}@{source.revision or 'main'} is script-only",
    )


def load_with_fallback(source: HubSource, split: str | None, dataset: str) -> HubLoad:
    """Load ``split`` (``None``: all splits) of ``source``; retry the parquet branch once.

    Only the loading-script error triggers the retry; everything else, and a failed retry,
    is a ``UsageError`` for ``dataset``.
    """
    try:
        return HubLoad(_load(source, split), source)
    except Exception as exc:  # noqa: BLE001 - classified below: datasets raises many types
        if SCRIPT_ERROR not in str(exc) or source.on_parquet_branch:
            raise hub_error(dataset, source, exc) from None
    fallback = parquet_fallback(source)
    try:
        data = _load(fallback, split)
    except Exception as exc:  # noqa: BLE001 - as above: one line for the user
        raise hub_error(dataset, fallback, exc, script_only=True) from None
    notice = (
        f"{dataset}: {source.repo}@{source.revision or 'main'} holds only a loading script; "
        f"loaded its auto-converted {PARQUET_REVISION} branch instead (config "
        f"{INFERRED_CONFIG}"
        + (f", folder {fallback.export_dir}" if fallback.export_dir else "")
        + ")"
    )
    log.warning(notice)
    return HubLoad(data, fallback, notice)


def _load(source: HubSource, split: str | None) -> Any:
    files = None
    if source.on_parquet_branch and source.export_dir:
        files = export_data_files(source.export_dir, [split] if split else list(source.splits))
    return load_hub_dataset(
        source.repo, config=source.config, split=split, revision=source.revision, data_files=files
    )


def hub_error(
    dataset: str, source: HubSource, exc: Exception, script_only: bool = False
) -> UsageError:
    """One line: which dataset, which repo was tried, what went wrong, and what to do."""
    message = first_line(exc)
    tried = source.describe()
    remedy = "pass --data-dir with a local mirror, or give the rows as a file or folder"
    if is_unreachable_error(exc):
        what = f"could not be read: {UNREACHABLE}"
    elif "Revision" in message and "doesn't exist" in message:
        what = (
            "holds only a loading script and has no parquet branch"
            if script_only or source.on_parquet_branch
            else f"has no revision {source.revision}"
        )
    elif "doesn't exist on the Hub" in message or "cannot be accessed" in message:
        what = "was not found on the hub (or is gated)"
    elif "BuilderConfig" in message and "not found" in message:
        what = f"has no config {source.config!r} ({message.split('Available:')[-1].strip()})"
        remedy = "pick one of those configs, " + remedy
    elif "No (supported) data files" in message or "Unable to find" in message:
        what = (
            f"has no folder {source.export_dir!r} on its parquet branch"
            if source.export_dir
            else "has no data files at that revision"
        )
        remedy = "check the config name, or " + remedy
    elif "Unknown split" in message:
        what = f"lacks a split ({message})"
    elif SCRIPT_ERROR in message:
        what = "holds only a loading script"
    else:
        what = f"could not be loaded ({message})"
    return UsageError(f"dataset {dataset}: hub repo {tried} {what}; {remedy}")
