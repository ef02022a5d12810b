"""The dataset registry: name -> where the rows come from and how one row becomes an example.

Splits and label meanings follow the reference study (``DATASETS.md`` §1); hub repos, revisions
and configs come from the resolution table in ``hub.py`` (the reference's ids, resolved to what
loads today); mirror folders follow the offline mirror's layout (§7).  Names may be written with
``-`` or ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from . import formatters as fmt
from .formatters import Formatter
from .hub import HUB_SOURCES, INFERRED_CONFIG, HubSource


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    ``train_splits`` feed the train pool and ``test_split`` the test pool (hub split names).
    When ``pooled_test_size`` is set, the ``train_splits`` are instead concatenated in order and a
    fixed seed-0 permutation puts its first ``pooled_test_size`` rows in the test pool and the
    rest in the train pool (sciq).  ``manual_download`` marks datasets the hub cannot serve
    without files the user fetched by hand: they load only from a local mirror folder.
    """

    name: str
    hub_id: str
    hub_config: str | None
    train_splits: tuple[str, ...]
    test_split: str | None
    mirror_folder: str
    formatter: Formatter
    label_note: str
    description: str
    pooled_test_size: int | None = None
    manual_download: bool = False

    @property
    def hub(self) -> HubSource:
        """Where this dataset loads from on the hub (the resolution table's entry)."""
        return HUB_SOURCES[self.name]

    @property
    def hub_splits(self) -> tuple[str, ...]:
        """Every hub split this dataset reads."""
        return self.train_splits + ((self.test_split,) if self.test_split else ())

    @property
    def pools_text(self) -> str:
        """Which hub splits feed the train / test pools, e.g. ``test / validation`` (mc_taco)."""
        if self.pooled_test_size:
            return f"{'+'.join(self.train_splits)} pooled / fixed {self.pooled_test_size}"
        return f"{'+'.join(self.train_splits)} / {self.test_split}"


def _spec(
    name: str,
    train: str,
    test: str,
    folder: str,
    formatter: Formatter,
    label_note: str,
    description: str,
    **extra,
) -> DatasetSpec:
    return _with_hub(name, (train,), test, folder, formatter, label_note, description, **extra)


def _with_hub(
    name: str,
    train: tuple[str, ...],
    test: str | None,
    folder: str,
    formatter: Formatter,
    label_note: str,
    description: str,
    **extra,
) -> DatasetSpec:
    """A spec whose hub id, config and manual-download flag come from the resolution table.

    ``hub_config`` is the config as users know it (``commonsense``), also where the parquet
    branch keeps it as a folder under the inferred ``default`` config.
    """
    hub = HUB_SOURCES[name]
    config = hub.export_dir or (None if hub.config == INFERRED_CONFIG else hub.config)
    return DatasetSpec(
        name,
        hub.repo,
        config,
        train,
        test,
        folder,
        formatter,
        label_note,
        description,
        manual_download=hub.manual_download,
        **extra,
    )


_MC = "MC rule: 1 = the gold option is shown, 0 = a wrong one"
_ETHICS = "hendrycks/ethics; hub test = the hard test set"

_SPECS: tuple[DatasetSpec, ...] = (
    _spec(
        "anli-r2",
        "train_r2",
        "test_r2",
        "anli",
        fmt.anli,
        "1 = entailment (hub label 0)",
        "Adversarial NLI round 2",
    ),
    _spec(
        "boolq",
        "train",
        "validation",
        "boolq",
        fmt.boolq,
        "answer (true = 1)",
        "Yes/no questions about a passage",
    ),
    _spec(
        "cola",
        "train",
        "validation",
        "cola",
        fmt.sentence,
        "1 = acceptable",
        "Grammatical acceptability (GLUE CoLA)",
    ),
    _spec(
        "cosmos_qa",
        "train",
        "validation",
        "cosmos_qa",
        fmt.cosmos_qa,
        _MC + "; 'None of the above choices .' gold rows are always 0",
        "Commonsense reading comprehension",
    ),
    _spec("dream", "train", "test", "dream", fmt.dream, _MC, "Dialogue reading comprehension"),
    _spec(
        "ethics-commonsense",
        "train",
        "test",
        "ethics_commonsense",
        fmt.ethics_commonsense,
        "1 = clearly wrong",
        _ETHICS + "; not in the reference study",
    ),
    _spec(
        "ethics-deontology",
        "train",
        "test",
        "ethics_deontology",
        fmt.ethics_deontology,
        "1 = valid excuse",
        _ETHICS,
    ),
    _spec(
        "ethics-justice",
        "train",
        "test",
        "ethics_justice",
        fmt.ethics_justice,
        "1 = reasonable",
        _ETHICS,
    ),
    _spec(
        "ethics-utilitarianism",
        "train",
        "test",
        "ethics_utilitarianism",
        fmt.ethics_utilitarianism,
        "1 = the shown position is the more pleasant scenario",
        _ETHICS,
    ),
    _spec(
        "ethics-virtue",
        "train",
        "test",
        "ethics_virtue",
        fmt.ethics_virtue,
        "1 = trait matches",
        _ETHICS,
    ),
    _spec(
        "hellaswag", "train", "validation", "hellaswag", fmt.hellaswag, _MC, "Sentence continuation"
    ),
    # The hub's test split is the larger one, so the reference swapped them on purpose.
    _spec(
        "mc_taco",
        "test",
        "validation",
        "mc_taco",
        fmt.mc_taco,
        "1 = plausible answer",
        "Temporal commonsense (train/test swapped)",
    ),
    _spec(
        "multirc",
        "train",
        "validation",
        "multirc",
        fmt.multirc,
        "1 = correct answer",
        "Multi-sentence reading comprehension",
    ),
    _spec(
        "openbookqa",
        "train",
        "test",
        "openbookqa",
        fmt.openbookqa,
        _MC + " (answer text in both cases: the reference's letter leak is fixed)",
        "Open-book science questions",
    ),
    _spec("paws", "train", "test", "paws", fmt.paws, "1 = paraphrase", "Paraphrase adversaries"),
    _spec("piqa", "train", "validation", "piqa", fmt.piqa, _MC, "Physical commonsense"),
    _spec("quail", "train", "validation", "quail", fmt.quail, _MC, "Reading comprehension"),
    _spec(
        "quartz", "train", "test", "quartz", fmt.quartz, _MC, "Qualitative relationship questions"
    ),
    _with_hub(
        "sciq",
        ("train", "validation", "test"),
        None,
        "sciq",
        fmt.sciq,
        _MC,
        "Science exam questions (hub splits pooled, fixed 3,000 test)",
        pooled_test_size=3000,
    ),
    _with_hub(
        "sciq_with_support",
        ("train", "validation", "test"),
        None,
        "sciq",
        fmt.sciq_with_support,
        _MC,
        "Science questions with the support passage",
        pooled_test_size=3000,
    ),
    _spec(
        "social_i_qa",
        "train",
        "validation",
        "social_i_qa",
        fmt.social_i_qa,
        _MC,
        "Social commonsense",
    ),
    _spec(
        "sst2",
        "train",
        "validation",
        "sst2",
        fmt.sentence,
        "1 = positive",
        "Movie review sentiment",
    ),
    _spec(
        "story_cloze",
        "validation",
        "test",
        "story_cloze",
        fmt.story_cloze,
        _MC,
        "Story endings (hub needs a manual download)",
    ),
    _spec(
        "tweet_eval_hate",
        "train",
        "test",
        "tweet_eval_hate",
        fmt.text,
        "1 = hate",
        "Hate speech in tweets; not in the reference study",
    ),
    _spec(
        "tweet_eval_sentiment",
        "train",
        "test",
        "tweet_eval_sentiment",
        fmt.tweet_polarity,
        "1 = positive, 0 = negative (neutral tweets dropped)",
        "Tweet sentiment polarity (TweetEval); not in the reference study",
    ),
    _spec(
        "twitter-sentiment",
        "train",
        "test",
        "twitter_sentiment",
        fmt.text,
        "1 = positive",
        "Tweet sentiment",
    ),
    _spec("wic", "train", "validation", "wic", fmt.wic, "1 = same sense", "Word in context"),
    _spec(
        "amazon_polarity",
        "train",
        "test",
        "amazon_polarity",
        fmt.amazon_polarity,
        "1 = positive",
        "Amazon review polarity",
    ),
    _spec(
        "anthropic_hh",
        "train",
        "test",
        "anthropic_hh",
        fmt.anthropic_hh,
        "1 = the chosen response is shown, 0 = the rejected one",
        "Helpful/harmless preference dialogues",
    ),
)

#: Registry name -> spec, in the order above.
REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def _alias_key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


_ALIASES: dict[str, str] = {_alias_key(name): name for name in REGISTRY}


def list_datasets() -> list[str]:
    """Every registered dataset name, in registry order."""
    return list(REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """The spec for ``name``; ``-`` and ``_`` are interchangeable (``ethics_deontology`` works)."""
    canonical = _ALIASES.get(_alias_key(name))
    if canonical is None:
        raise UsageError(f"unknown dataset '{name}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[canonical]
