"""Pure formatters: one hub row -> ``(txt, hard_label)`` for binary classification.

Every formatter has the same signature ``(row, rng) -> (txt, hard_label) | None`` so the registry
can call them alike; only the multiple-choice ones use ``rng``.  They follow the reference study's
templates and MC-k rule exactly (see ``DATASETS.md`` §2/§3), except for the documented fixes:

* openbookqa shows the answer *text* for positives too (the reference showed the letter, so the
  surface form alone leaked the label);
* ethics deontology/justice/virtue prompts end at ``A:`` (no gold ``yes``/``no`` appended).

Returning ``None`` or an empty ``txt`` means "drop this row"; the caller counts such drops.

Formatters that never touch ``rng`` are marked ``@rng_free``, and those that draw a fixed number
of ``rng.random()`` values per row ``@fixed_draws(n)``: the split builder may then format rows in
any order (storage order, or only the rows it keeps), which is what lets a 3.6M-row dataset
build its splits without a pass in shuffled order.

The MC-k rule, per row in post-shuffle order with the pool's ``random.Random``:
draw ``u = rng.random()``; label 1 iff ``u < 0.5``; label 1 shows the gold option, label 0 one
wrong option chosen with ``rng.choice`` over the wrong options in hub order (an extra draw), or,
with exactly two options, the other one (no extra draw).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import UsageError

#: One formatted example: the model input and its ground-truth 0/1 label.
Example = tuple[str, int]
Row = Mapping[str, Any]
Formatter = Callable[[Row, random.Random], Example | None]


def rng_free(formatter: Formatter) -> Formatter:
    """Mark a formatter whose output depends on the row alone (it never draws from ``rng``)."""
    formatter.rng_free = True  # type: ignore[attr-defined]
    return formatter


def is_rng_free(formatter: Formatter) -> bool:
    """Whether ``formatter`` was marked ``@rng_free``."""
    return bool(getattr(formatter, "rng_free", False))


def fixed_draws(n: int) -> Callable[[Formatter], Formatter]:
    """Mark a formatter that makes exactly ``n`` ``rng.random()`` calls per row, nothing else.

    Its draws do not depend on the row, so the split builder can draw them up front in
    shuffled order and format the rows in any order (anthropic_hh's coin).
    """

    def mark(formatter: Formatter) -> Formatter:
        formatter.draws_per_row = n  # type: ignore[attr-defined]
        return formatter

    return mark


def draws_per_row(formatter: Formatter) -> int | None:
    """``n`` for a ``@fixed_draws(n)`` formatter (0 for ``@rng_free``), else ``None``."""
    return 0 if is_rng_free(formatter) else getattr(formatter, "draws_per_row", None)


def _coin(rng: random.Random) -> int:
    """The MC rule's first draw: 1 (show gold) with probability 1/2."""
    return int(rng.random() < 0.5)


def _mc_pick(rng: random.Random, gold: str, wrong: Sequence[str]) -> Example:
    """Apply the MC rule to a gold option and the wrong options (hub order)."""
    label = _coin(rng)
    return (gold, 1) if label else (_wrong_option(rng, wrong), 0)


def _wrong_option(rng: random.Random, wrong: Sequence[str]) -> str:
    # Two-option datasets show "the other one" without consuming a draw, as the reference did.
    return wrong[0] if len(wrong) == 1 else rng.choice(list(wrong))


def _without_index(options: Sequence[str], index: int) -> list[str]:
    return [option for i, option in enumerate(options) if i != index]


# --- label-field datasets -------------------------------------------------------------------


@rng_free
def sentence(row: Row, rng: random.Random) -> Example:
    """cola, sst2: ``{sentence}``."""
    return row["sentence"], int(row["label"])


@rng_free
def text(row: Row, rng: random.Random) -> Example:
    """twitter-sentiment, tweet_eval_hate, user files: ``{text}``."""
    return row["text"] or "", int(row["label"])


#: TweetEval sentiment's hub label -> polarity; neutral (1) has none and its rows are dropped.
_TWEET_POLARITY = {0: 0, 2: 1}


@rng_free
def tweet_polarity(row: Row, rng: random.Random) -> Example | None:
    """tweet_eval_sentiment: ``{text}``, 1 = positive, 0 = negative; neutral tweets are dropped.

    The 3-class corpus becomes the binary polarity task of the reference's twitter-sentiment.
    """
    polarity = _TWEET_POLARITY.get(int(row["label"]))
    return None if polarity is None else (row["text"] or "", polarity)


@rng_free
def anli(row: Row, rng: random.Random) -> Example:
    """anli-r2: label 1 iff the hub label is 0 (entailment)."""
    txt = (
        f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}\n\n"
        "Does the premise entail the hypothesis?"
    )
    return txt, int(row["label"] == 0)


@rng_free
def boolq(row: Row, rng: random.Random) -> Example:
    """boolq: the bool ``answer`` is the label; no ``?`` is added to the question."""
    return f"Passage: {row['passage']}\nQuestion: {row['question']}", int(row["answer"])


@rng_free
def amazon_polarity(row: Row, rng: random.Random) -> Example:
    """amazon_polarity: ``{title} {content}``, label 1 = positive."""
    return f"{row['title']} {row['content']}", int(row["label"])


@fixed_draws(1)
def anthropic_hh(row: Row, rng: random.Random) -> Example:
    """anthropic_hh: a coin flip shows ``chosen`` (label 1) or ``rejected`` (label 0) verbatim."""
    label = _coin(rng)
    return (row["chosen"] if label else row["rejected"]), label


@rng_free
def ethics_commonsense(row: Row, rng: random.Random) -> Example:
    """ethics-commonsense: ``{input}``, label 1 = clearly wrong."""
    return row["input"], int(row["label"])


@rng_free
def ethics_deontology(row: Row, rng: random.Random) -> Example:
    """ethics-deontology: label 1 = valid excuse; the prompt ends at ``A:``."""
    txt = (
        f"Q: Is the following a morally valid excuse?\n\n{row['scenario']}\n\n{row['excuse']}\n\nA:"
    )
    return txt, int(row["label"])


@rng_free
def ethics_justice(row: Row, rng: random.Random) -> Example:
    """ethics-justice; the prompt ends at ``A:``."""
    return f"Q: Does this statement exemplify justice?\n\n{row['scenario']}\n\nA:", int(
        row["label"]
    )


@rng_free
def ethics_virtue(row: Row, rng: random.Random) -> Example:
    """ethics-virtue: label 1 = trait matches; the prompt ends at ``A:``."""
    txt = f"Q: Does this behavior match the adjective that follows?\n\n{row['scenario']}\n\nA:"
    return txt, int(row["label"])


@rng_free
def mc_taco(row: Row, rng: random.Random) -> Example:
    """mc_taco: label 1 = plausible answer (answer not quoted)."""
    txt = f"{row['sentence']}\n\nGiven the above, {row['question']} Is the answer {row['answer']}?"
    return txt, int(row["label"])


@rng_free
def multirc(row: Row, rng: random.Random) -> Example:
    """multirc (super_glue)."""
    txt = (
        f'Passage:\n\n{row["paragraph"]}\n\nQ: "{row["question"]}" Is the answer "{row["answer"]}"?'
    )
    return txt, int(row["label"])


@rng_free
def paws(row: Row, rng: random.Random) -> Example:
    """paws (labeled_final): label 1 = paraphrase."""
    txt = (
        f"Sent 1: {row['sentence1']}\nSent 2: {row['sentence2']}\n\n"
        "Q: Are these sentences semantically equivalent?"
    )
    return txt, int(row["label"])


@rng_free
def wic(row: Row, rng: random.Random) -> Example:
    """wic (super_glue): label 1 = same sense."""
    txt = (
        f"Sentence 1:\n{row['sentence1']}\n\nSentence 2:\n{row['sentence2']}\n\n"
        f'Q: Does "{row["word"]}" have the same meaning in the above sentences?'
    )
    return txt, int(row["label"])


# --- multiple-choice datasets (MC-k rule) ---------------------------------------------------


def cosmos_qa(row: Row, rng: random.Random) -> Example:
    """cosmos_qa, MC-4 with the reference's special case.

    Wrong options are those whose text differs from the gold text.  A gold answer containing
    ``None of the above choices .`` is always shown as a negative: no coin is drawn, but the wrong
    option still is.  A gold containing ``None of the above choices`` without `` .`` is a row the
    reference refused to handle; we refuse it too rather than guess.
    """
    options = [row[f"answer{i}"] for i in range(4)]
    gold = options[int(row["label"])]
    if "None of the above choices ." in gold:
        label = 0
    elif "None of the above choices" in gold:
        raise UsageError(
            f"cosmos_qa row has an unexpected 'None of the above' gold answer: {gold!r}"
        )
    else:
        label = _coin(rng)
    shown = gold if label else rng.choice([option for option in options if option != gold])
    return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {shown}", label


def dream(row: Row, rng: random.Random) -> Example:
    """dream, MC-3: gold = ``answer``; wrong = ``choice`` minus its first occurrence."""
    wrong = list(row["choice"])
    wrong.remove(row["answer"])
    shown, label = _mc_pick(rng, row["answer"], wrong)
    dialogue = "\n".join(row["dialogue"])
    return f"{dialogue}\n\nQ: {row['question']} A: {shown}", label


def ethics_utilitarianism(row: Row, rng: random.Random) -> Example:
    """ethics-utilitarianism, MC-2: after the coin the pair is always shuffled.

    The prompt asks which scenario is more pleasant and shows the position (1 or 2) of
    ``baseline`` (the more pleasant one) for label 1, the other position for label 0.
    """
    label = _coin(rng)
    pair = [row["baseline"], row["less_pleasant"]]
    rng.shuffle(pair)
    gold = pair.index(row["baseline"]) + 1
    shown = gold if label else 3 - gold
    return f"Which is more pleasant?\n1) {pair[0]}\n2) {pair[1]} A: {shown}", label


def hellaswag(row: Row, rng: random.Random) -> Example:
    """hellaswag, MC-4: the hub label is a string index into ``endings``."""
    endings = list(row["endings"])
    gold_index = int(row["label"])
    shown, label = _mc_pick(rng, endings[gold_index], _without_index(endings, gold_index))
    joined = "\n".join(endings)
    txt = (
        f"Context:\n{row['ctx']}\n\nContinuations:\n\n{joined}\n\n"
        f'Q: Is "{shown}" the best continuation?'
    )
    return txt, label


def openbookqa(row: Row, rng: random.Random) -> Example:
    """openbookqa, MC-4, **fixed**: the answer text is shown for positives and negatives alike.

    The reference showed the gold *letter* for positives and a distractor *text* for negatives,
    which let the surface form alone give the label away.
    """
    letters, texts = list(row["choices"]["label"]), list(row["choices"]["text"])
    gold_index = letters.index(row["answerKey"])
    shown, label = _mc_pick(rng, texts[gold_index], _without_index(texts, gold_index))
    choices = "\n".join(f"{letter}) {option}" for letter, option in zip(letters, texts))
    return f"Q: {row['question_stem']}\n\nChoices:\n{choices}\n\nAnswer: {shown}", label


def piqa(row: Row, rng: random.Random) -> Example:
    """piqa, MC-2: gold = ``sol2`` if label is 1 else ``sol1``."""
    solutions = [row["sol1"], row["sol2"]]
    gold_index = int(row["label"])
    shown, label = _mc_pick(rng, solutions[gold_index], [solutions[1 - gold_index]])
    return f"Q: {row['goal']} A: {shown}", label


def quail(row: Row, rng: random.Random) -> Example:
    """quail, MC-4: gold = ``answers[correct_answer_id]``."""
    answers = list(row["answers"])
    gold_index = int(row["correct_answer_id"])
    shown, label = _mc_pick(rng, answers[gold_index], _without_index(answers, gold_index))
    txt = f'Passage:\n\n{row["context"]}\n\nQ: "{row["question"]}" Is the answer "{shown}"?'
    return txt, label


def quartz(row: Row, rng: random.Random) -> Example:
    """quartz, MC-2: gold = the choice whose letter is ``answerKey``."""
    letters, texts = list(row["choices"]["label"]), list(row["choices"]["text"])
    gold_index = letters.index(row["answerKey"])
    shown, label = _mc_pick(rng, texts[gold_index], _without_index(texts, gold_index))
    return f'Passage:\n{row["para"]}\n\nQ: "{row["question"]}" Is the answer "{shown}"?', label


def _sciq_pick(row: Row, rng: random.Random) -> Example:
    wrong = [row["distractor1"], row["distractor2"], row["distractor3"]]
    return _mc_pick(rng, row["correct_answer"], wrong)


def sciq(row: Row, rng: random.Random) -> Example:
    """sciq, MC-4: gold = ``correct_answer``; wrong = distractor1..3."""
    shown, label = _sciq_pick(row, rng)
    return f"Q: {row['question']} A: {shown}", label


def sciq_with_support(row: Row, rng: random.Random) -> Example:
    """sciq_with_support, MC-4 as sciq; rows with an empty ``support`` are kept."""
    shown, label = _sciq_pick(row, rng)
    txt = (
        f"Name: Bob\n\nPassage 1:\n{row['support']}\n\n"
        f'Q1: "{row["question"]}" Is the answer "{shown}"?'
    )
    return txt, label


def social_i_qa(row: Row, rng: random.Random) -> Example:
    """social_i_qa, MC-3: the hub label is the string "1"/"2"/"3" (answerA/B/C)."""
    answers = [row["answerA"], row["answerB"], row["answerC"]]
    gold_index = int(row["label"]) - 1
    shown, label = _mc_pick(rng, answers[gold_index], _without_index(answers, gold_index))
    choices = "\n".join(answers)
    txt = (
        f'Context:\n{row["context"]}\n\nQuestion: "{row["question"]}"\n\n'
        f'Choices:\n{choices}\n\nIs the answer "{shown}"?'
    )
    return txt, label


def story_cloze(row: Row, rng: random.Random) -> Example:
    """story_cloze (2016), MC-2; not in the reference study, so the template is ours.

    ``{input_sentence_1..4}`` joined by spaces, then the question whether the shown ending is
    the right one; gold = ``sentence_quiz{answer_right_ending}``.
    """
    endings = [row["sentence_quiz1"], row["sentence_quiz2"]]
    gold_index = int(row["answer_right_ending"]) - 1
    shown, label = _mc_pick(rng, endings[gold_index], [endings[1 - gold_index]])
    story = " ".join(row[f"input_sentence_{i}"] for i in range(1, 5))
    return f'Story: {story}\n\nQ: Is "{shown}" the right ending?', label
