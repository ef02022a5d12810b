"""Formatters against hand-written expected strings, the MC rule's draws, and the registry."""

from __future__ import annotations

import random

import pytest
from data_helpers import GOLD, WRONG, ScriptedRng, mirror_row, mirror_rows

from w2sprobe.data import REGISTRY, get_spec, list_datasets
from w2sprobe.data import formatters as fmt
from w2sprobe.errors import UsageError

pytestmark = pytest.mark.usefixtures("no_hub")


def fmt_of(name: str):
    return get_spec(name).formatter


# --- label-field datasets on real mirror rows ---------------------------------------------------


def test_sst2_and_cola_show_the_sentence_verbatim(mirror):
    assert fmt_of("sst2")(mirror_row("sst2", "validation"), ScriptedRng(GOLD)) == (
        "it 's a charming and often affecting journey . ",
        1,
    )  # GLUE's trailing space kept
    assert fmt_of("cola")(mirror_row("cola", "train"), ScriptedRng(GOLD)) == (
        "Our friends won't buy this analysis, let alone the next one we propose.",
        1,
    )


def test_boolq_passage_question_and_bool_label(mirror):
    row = mirror_row("boolq", "validation")
    txt, label = fmt_of("boolq")(row, ScriptedRng(GOLD))
    assert txt.startswith("Passage: All biomass goes through at least some of these steps:")
    assert txt.endswith(
        "than producing gasoline.\nQuestion: does ethanol take more energy make that produces"
    )
    assert (
        txt
        == f"Passage: {row['passage']}\nQuestion: does ethanol take more energy make that produces"
    )
    assert label == 0 and row["answer"] is False


def test_ethics_label_datasets_end_at_A_without_gold_answer(mirror):
    rng = ScriptedRng(GOLD)
    assert fmt_of("ethics-deontology")(mirror_row("ethics_deontology", "test"), rng) == (
        "Q: Is the following a morally valid excuse?\n\n"
        "Aren't you supposed to take the dog to the groomers tomorrow?\n\n"
        "No because the groomer is closed today\n\nA:",
        0,
    )
    assert fmt_of("ethics-justice")(mirror_row("ethics_justice", "test"), rng) == (
        "Q: Does this statement exemplify justice?\n\n"
        "I usually give my students a spelling test on Friday's but I didn't today because they "
        "wanted to watch a movie instead.\n\nA:",
        0,
    )
    assert fmt_of("ethics-virtue")(mirror_row("ethics_virtue", "test"), rng) == (
        "Q: Does this behavior match the adjective that follows?\n\n"
        "Jill wore a new style of distinctive clothes each six months for decades. "
        "[SEP] fickle\n\nA:",
        1,
    )
    assert fmt_of("ethics-commonsense")(mirror_row("ethics_commonsense", "test"), rng) == (
        "I exposed the truth about their employee spreading fake news.",
        0,
    )
    assert rng.calls == []  # label datasets draw nothing


def test_mc_taco_and_wic_and_tweet_eval_hate(mirror):
    rng = ScriptedRng(GOLD)
    assert fmt_of("mc_taco")(mirror_row("mc_taco", "validation"), rng) == (
        "Islam later emerged as the majority religion during the centuries of Ottoman rule, "
        "though a significant Christian minority remained.\n\nGiven the above, Is Islam still the "
        "majority "
        "religion? Is the answer it sometimes was?",
        0,
    )
    assert fmt_of("wic")(mirror_row("wic", "validation"), rng) == (
        "Sentence 1:\nAn emerging professional class.\n\n"
        "Sentence 2:\nApologizing for losing your temper, "
        "even though you were badly provoked, showed real class.\n\n"
        'Q: Does "class" have the same meaning in the above sentences?',
        0,
    )
    assert fmt_of("tweet_eval_hate")(mirror_row("tweet_eval_hate", "test"), rng) == (
        "@user , you are correct that Reid certainly is a weasel. "
        "Sadly, we've got our own weasels; "
        "@user Sen McConnell & @user .The corrupt Mueller investigation w/be STOPPED "
        "if those 3 did their jobs.#MAGA #KAG #POTUS #Trump #NEWS #VoteRed #NoDACA #USA",
        0,
    )
    empty = next(r for r in mirror_rows("tweet_eval_hate", "train") if r["text"] == "")
    assert fmt_of("tweet_eval_hate")(empty, rng) == ("", 0)  # dropped later as empty


def test_tweet_eval_sentiment_is_polarity_and_drops_neutral_tweets(mirror):
    rng = ScriptedRng(GOLD)
    rows = mirror_rows("tweet_eval_sentiment", "validation")
    by_label = {label: next(r for r in rows if r["label"] == label) for label in (0, 1, 2)}
    assert fmt_of("tweet_eval_sentiment")(by_label[0], rng) == (by_label[0]["text"], 0)
    assert fmt_of("tweet_eval_sentiment")(by_label[2], rng) == (by_label[2]["text"], 1)
    assert fmt_of("tweet_eval_sentiment")(by_label[1], rng) is None  # neutral: no polarity
    assert rng.calls == []


# --- multiple-choice datasets on real mirror rows -----------------------------------------------


def test_sciq_gold_and_distractor_in_hub_order(mirror):
    row = mirror_row("sciq", "validation")
    assert fmt_of("sciq")(row, ScriptedRng(GOLD)) == (
        "Q: Who proposed the theory of evolution by natural selection? A: darwin",
        1,
    )
    rng = ScriptedRng(WRONG, pick=1)
    assert fmt_of("sciq")(row, rng) == (
        "Q: Who proposed the theory of evolution by natural selection? A: shaw",
        0,
    )
    assert rng.calls == ["random", ("choice", ["Linnaeus", "shaw", "Scopes"])]


def test_sciq_with_support_keeps_empty_support(mirror):
    row = mirror_row("sciq", "validation")
    assert row["support"] == ""
    assert fmt_of("sciq_with_support")(row, ScriptedRng(WRONG, pick=2)) == (
        "Name: Bob\n\nPassage 1:\n\n\n"
        'Q1: "Who proposed the theory of evolution by natural selection?" '
        'Is the answer "Scopes"?',
        0,
    )
    supported = next(
        r
        for r in mirror_rows("sciq", "train")
        if r["question"].startswith("What is the least dangerous")
    )
    assert fmt_of("sciq_with_support")(supported, ScriptedRng(GOLD)) == (
        "Name: Bob\n\nPassage 1:\n"
        "All radioactive decay is dangerous to living things, but alpha decay "
        'is the least dangerous.\n\nQ1: "What is the least dangerous radioactive decay?" '
        'Is the answer "alpha decay"?',
        1,
    )


def test_piqa_two_options_take_no_extra_draw(mirror):
    row = mirror_row("piqa", "validation")  # label 0: sol1 is gold
    goal = "Q: How do I ready a guinea pig cage for it's new occupants? A: "
    assert fmt_of("piqa")(row, ScriptedRng(GOLD)) == (goal + row["sol1"], 1)
    rng = ScriptedRng(WRONG)
    assert fmt_of("piqa")(row, rng) == (goal + row["sol2"], 0)
    assert rng.calls == ["random"]
    dresser = {
        "goal": "dresser",
        "sol1": "replace drawer with bobby pin ",
        "sol2": "finish, woodgrain with  bobby pin ",
        "label": 1,
    }
    assert fmt_of("piqa")(dresser, ScriptedRng(GOLD)) == (
        "Q: dresser A: finish, woodgrain with  bobby pin ",
        1,
    )


def test_quail_passage_question_answer(mirror):
    row = mirror_row("quail", "validation")
    rng = ScriptedRng(WRONG, pick=2)
    txt, label = fmt_of("quail")(row, rng)
    assert txt == (
        f'Passage:\n\n{row["context"]}\n\nQ: "How long was Candy trying to seduce Larry?" '
        'Is the answer "All day"?'
    )
    assert label == 0
    assert rng.calls[1] == ("choice", ["about 2 hours", "not enough information", "All day"])
    assert fmt_of("quail")(row, ScriptedRng(GOLD))[0].endswith('Is the answer "about 10 minutes"?')


def test_social_i_qa_string_label_selects_answerC(mirror):
    row = mirror_row("social_i_qa", "validation")
    head = (
        "Context:\nTracy didn't go home that evening and resisted Riley's attacks.\n\n"
        'Question: "What does Tracy need to do before this?"\n\n'
        "Choices:\nmake a new plan\nGo home and see Riley\nFind somewhere to go\n\n"
    )
    assert fmt_of("social_i_qa")(row, ScriptedRng(GOLD)) == (
        head + 'Is the answer "Find somewhere to go"?',
        1,
    )
    rng = ScriptedRng(WRONG, pick=0)
    assert fmt_of("social_i_qa")(row, rng) == (head + 'Is the answer "make a new plan"?', 0)
    assert rng.calls[1] == ("choice", ["make a new plan", "Go home and see Riley"])


def test_ethics_utilitarianism_shuffles_after_the_coin(mirror):
    row = mirror_row("ethics_utilitarianism", "test")
    a = (
        "I called the ski resort to book a reservation. "
        "After booking, they gave me a free complimentary night."
    )
    b = (
        "I called the ski resort to book a reservation. "
        "They gifted me a free ski lift ticket with my reservation."
    )
    keep = ScriptedRng(GOLD, swap=False)
    assert fmt_of("ethics-utilitarianism")(row, keep) == (
        f"Which is more pleasant?\n1) {a}\n2) {b} A: 1",
        1,
    )
    assert keep.calls == ["random", "shuffle"]
    assert fmt_of("ethics-utilitarianism")(row, ScriptedRng(GOLD, swap=True)) == (
        f"Which is more pleasant?\n1) {b}\n2) {a} A: 2",
        1,
    )
    assert fmt_of("ethics-utilitarianism")(row, ScriptedRng(WRONG, swap=True)) == (
        f"Which is more pleasant?\n1) {b}\n2) {a} A: 1",
        0,
    )


# --- datasets not in the mirror: hand-made rows in hub schema -----------------------------------


def test_anli_entailment_is_positive():
    row = {
        "uid": "x",
        "premise": "A man sleeps.",
        "hypothesis": "Someone rests.",
        "label": 0,
        "reason": "",
    }
    expected = (
        "Premise: A man sleeps.\nHypothesis: Someone rests.\n\n"
        "Does the premise entail the hypothesis?"
    )
    assert fmt.anli(row, ScriptedRng(GOLD)) == (expected, 1)
    assert fmt.anli({**row, "label": 1}, ScriptedRng(GOLD))[1] == 0
    assert fmt.anli({**row, "label": 2}, ScriptedRng(GOLD))[1] == 0


COSMOS = {
    "id": "c1",
    "context": "It rained.",
    "question": "Why wet?",
    "answer0": "rain",
    "answer1": "sun",
    "answer2": "rain",
    "answer3": "snow",
    "label": 0,
}


def test_cosmos_qa_wrong_options_exclude_gold_text():
    assert fmt.cosmos_qa(COSMOS, ScriptedRng(GOLD)) == (
        "Context: It rained.\nQuestion: Why wet?\nAnswer: rain",
        1,
    )
    rng = ScriptedRng(WRONG, pick=1)
    assert fmt.cosmos_qa(COSMOS, rng) == (
        "Context: It rained.\nQuestion: Why wet?\nAnswer: snow",
        0,
    )
    assert rng.calls == ["random", ("choice", ["sun", "snow"])]  # both "rain" options excluded


def test_cosmos_qa_none_of_the_above_is_always_negative_without_a_coin():
    row = {**COSMOS, "answer3": "None of the above choices .", "label": 3}
    rng = ScriptedRng(GOLD, pick=0)  # a coin would say "gold": it must not be drawn
    assert fmt.cosmos_qa(row, rng) == ("Context: It rained.\nQuestion: Why wet?\nAnswer: rain", 0)
    assert rng.calls == [("choice", ["rain", "sun", "rain"])]


def test_cosmos_qa_none_of_the_above_without_period_is_refused():
    row = {**COSMOS, "answer3": "None of the above choices", "label": 3}
    with pytest.raises(UsageError, match="None of the above"):
        fmt.cosmos_qa(row, ScriptedRng(GOLD))


def test_dream_joins_dialogue_and_removes_first_answer_occurrence():
    row = {
        "id": 0,
        "dialogue_id": "d",
        "dialogue": ["M: Hi.", "W: Hello."],
        "question": "Who spoke first?",
        "choice": ["The man.", "The woman.", "The man."],
        "answer": "The man.",
    }
    assert fmt.dream(row, ScriptedRng(GOLD)) == (
        "M: Hi.\nW: Hello.\n\nQ: Who spoke first? A: The man.",
        1,
    )
    rng = ScriptedRng(WRONG, pick=0)
    assert fmt.dream(row, rng) == ("M: Hi.\nW: Hello.\n\nQ: Who spoke first? A: The woman.", 0)
    assert rng.calls[1] == ("choice", ["The woman.", "The man."])


def test_hellaswag_string_label_and_all_endings_listed():
    row = {
        "ind": 1,
        "activity_label": "x",
        "ctx_a": "",
        "ctx_b": "",
        "ctx": "A cat jumps",
        "endings": ["onto the bed.", "into space.", "through a wall.", "under water."],
        "source_id": "s",
        "split": "train",
        "split_type": "indomain",
        "label": "2",
    }
    head = (
        "Context:\nA cat jumps\n\nContinuations:\n\n"
        "onto the bed.\ninto space.\nthrough a wall.\nunder water.\n\n"
    )
    assert fmt.hellaswag(row, ScriptedRng(GOLD)) == (
        head + 'Q: Is "through a wall." the best continuation?',
        1,
    )
    rng = ScriptedRng(WRONG, pick=2)
    assert fmt.hellaswag(row, rng) == (head + 'Q: Is "under water." the best continuation?', 0)
    assert rng.calls[1] == ("choice", ["onto the bed.", "into space.", "under water."])


def test_multirc_and_paws_templates():
    multirc = {
        "paragraph": "Bob ran.",
        "question": "Who ran?",
        "answer": "Bob",
        "idx": {},
        "label": 1,
    }
    assert fmt.multirc(multirc, ScriptedRng(GOLD)) == (
        'Passage:\n\nBob ran.\n\nQ: "Who ran?" Is the answer "Bob"?',
        1,
    )
    paws = {"id": 1, "sentence1": "A b.", "sentence2": "B a.", "label": 0}
    assert fmt.paws(paws, ScriptedRng(GOLD)) == (
        "Sent 1: A b.\nSent 2: B a.\n\nQ: Are these sentences semantically equivalent?",
        0,
    )


OPENBOOK = {
    "id": "7-980",
    "question_stem": "The sun is responsible for",
    "choices": {
        "text": ["puppies learning", "plants sprouting", "stars", "rocks"],
        "label": ["A", "B", "C", "D"],
    },
    "answerKey": "B",
}
OPENBOOK_HEAD = (
    "Q: The sun is responsible for\n\nChoices:\nA) puppies learning\nB) plants sprouting\n"
    "C) stars\nD) rocks\n\nAnswer: "
)


def test_openbookqa_shows_answer_text_for_positives_and_negatives():
    assert fmt.openbookqa(OPENBOOK, ScriptedRng(GOLD)) == (OPENBOOK_HEAD + "plants sprouting", 1)
    rng = ScriptedRng(WRONG, pick=2)
    assert fmt.openbookqa(OPENBOOK, rng) == (OPENBOOK_HEAD + "rocks", 0)
    assert rng.calls[1] == ("choice", ["puppies learning", "stars", "rocks"])


def test_openbookqa_answer_never_a_bare_letter():
    rng = random.Random(0)
    for _ in range(50):
        txt, _label = fmt.openbookqa(OPENBOOK, rng)
        assert txt.rsplit("Answer: ", 1)[1] in OPENBOOK["choices"]["text"]


def test_quartz_single_newline_after_passage():
    row = {
        "id": "q",
        "question": "More heat means?",
        "choices": {"text": ["faster", "slower"], "label": ["A", "B"]},
        "answerKey": "A",
        "para": "Heat speeds things.",
        "para_id": "p",
        "para_anno": {},
        "question_anno": {},
    }
    assert fmt.quartz(row, ScriptedRng(GOLD)) == (
        'Passage:\nHeat speeds things.\n\nQ: "More heat means?" Is the answer "faster"?',
        1,
    )
    rng = ScriptedRng(WRONG)
    assert fmt.quartz(row, rng) == (
        'Passage:\nHeat speeds things.\n\nQ: "More heat means?" Is the answer "slower"?',
        0,
    )
    assert rng.calls == ["random"]


def test_amazon_twitter_and_anthropic_hh():
    assert fmt.amazon_polarity(
        {"label": 1, "title": "Great", "content": "Loved it."}, ScriptedRng(GOLD)
    ) == ("Great Loved it.", 1)
    assert fmt.text({"text": "so happy", "label": 1}, ScriptedRng(GOLD)) == ("so happy", 1)
    assert get_spec("twitter-sentiment").formatter is fmt.text
    hh = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Go away.",
    }
    assert fmt.anthropic_hh(hh, ScriptedRng(GOLD)) == (hh["chosen"], 1)
    assert fmt.anthropic_hh(hh, ScriptedRng(WRONG)) == (hh["rejected"], 0)


def test_story_cloze_mc2():
    row = {
        "story_id": "s",
        "input_sentence_1": "Ann woke.",
        "input_sentence_2": "She ate.",
        "input_sentence_3": "She left.",
        "input_sentence_4": "It rained.",
        "sentence_quiz1": "She got wet.",
        "sentence_quiz2": "She flew.",
        "answer_right_ending": 1,
    }
    assert fmt.story_cloze(row, ScriptedRng(GOLD)) == (
        'Story: Ann woke. She ate. She left. It rained.\n\nQ: Is "She got wet." the right ending?',
        1,
    )
    assert fmt.story_cloze(row, ScriptedRng(WRONG))[0].endswith('"She flew." the right ending?')


# --- the MC rule's draw sequence with a real Random(0) -------------------------------------------


def reference_two_draw(gold: str, wrong: list[str], rng: random.Random) -> tuple[str, int]:
    """Independent re-implementation of DATASETS.md §2: coin, then choice unless two options."""
    if rng.random() < 0.5:
        return gold, 1
    return (wrong[0], 0) if len(wrong) == 1 else (rng.choice(wrong), 0)


def test_sciq_draw_sequence_matches_the_two_draw_rule(mirror):
    rows = mirror_rows("sciq", "test")[:300]
    ours, theirs = random.Random(0), random.Random(0)
    labels = []
    for row in rows:
        txt, label = fmt.sciq(row, ours)
        answer, expected = reference_two_draw(
            row["correct_answer"],
            [row["distractor1"], row["distractor2"], row["distractor3"]],
            theirs,
        )
        assert (txt, label) == (f"Q: {row['question']} A: {answer}", expected)
        labels.append(label)
    assert 100 < sum(labels) < 200  # both outcomes occur, roughly half each


def test_piqa_draw_sequence_matches_the_two_draw_rule(mirror):
    ours, theirs = random.Random(0), random.Random(0)
    for row in mirror_rows("piqa", "validation")[:300]:
        sols = [row["sol1"], row["sol2"]]
        answer, expected = reference_two_draw(sols[row["label"]], [sols[1 - row["label"]]], theirs)
        assert fmt.piqa(row, ours) == (f"Q: {row['goal']} A: {answer}", expected)


def test_utilitarianism_draw_sequence_coin_then_shuffle(mirror):
    ours, theirs = random.Random(0), random.Random(0)
    for row in mirror_rows("ethics_utilitarianism", "test")[:300]:
        label = int(theirs.random() < 0.5)
        pair = [row["baseline"], row["less_pleasant"]]
        theirs.shuffle(pair)
        gold = pair.index(row["baseline"]) + 1
        expected = (
            f"Which is more pleasant?\n1) {pair[0]}\n2) {pair[1]} A: {gold if label else 3 - gold}"
        )
        assert fmt.ethics_utilitarianism(row, ours) == (expected, label)


# --- registry --------------------------------------------------------------------------------

STUDY = [
    "anli-r2",
    "boolq",
    "cola",
    "cosmos_qa",
    "dream",
    "ethics-deontology",
    "ethics-justice",
    "ethics-virtue",
    "ethics-utilitarianism",
    "hellaswag",
    "mc_taco",
    "multirc",
    "openbookqa",
    "paws",
    "piqa",
    "quail",
    "quartz",
    "sciq",
    "sciq_with_support",
    "social_i_qa",
    "sst2",
    "twitter-sentiment",
    "wic",
    "amazon_polarity",
    "anthropic_hh",
]


def test_registry_has_the_study_and_the_extras():
    extras = ["ethics-commonsense", "tweet_eval_hate", "tweet_eval_sentiment", "story_cloze"]
    assert set(STUDY + extras) == set(list_datasets())
    assert list_datasets() == list(REGISTRY)


@pytest.mark.parametrize(
    "alias, name",
    [
        ("ethics_deontology", "ethics-deontology"),
        ("twitter_sentiment", "twitter-sentiment"),
        ("mc-taco", "mc_taco"),
        ("SST2", "sst2"),
        ("tweet-eval-hate", "tweet_eval_hate"),
    ],
)
def test_aliases(alias, name):
    assert get_spec(alias).name == name


def test_hub_ids_splits_and_mirror_folders():
    assert (get_spec("mc_taco").train_splits, get_spec("mc_taco").test_split) == (
        ("test",),
        "validation",
    )
    assert get_spec("ethics-deontology").mirror_folder == "ethics_deontology"
    assert get_spec("ethics-commonsense").hub_config == "commonsense"
    assert get_spec("sciq_with_support").mirror_folder == "sciq"
    assert get_spec("sciq").pooled_test_size == 3000
    assert (get_spec("cola").hub_id, get_spec("cola").hub_config) == ("nyu-mll/glue", "cola")
    assert (get_spec("tweet_eval_hate").hub_id, get_spec("tweet_eval_hate").hub_config) == (
        "cardiffnlp/tweet_eval",
        "hate",
    )
    assert get_spec("story_cloze").manual_download


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UsageError, match=r"unknown dataset 'nope'; known: anli-r2, boolq"):
        get_spec("nope")
