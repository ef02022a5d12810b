#!/usr/bin/env bash
# Issue 29's study at the blog's sizes (10,000 / 1,000 / 5,000, capped by what each offline
# dataset holds: bench/blog_sizes.py) on every offline dataset: weak MiniLM trained with LoRA,
# as the study, and the strong MPNet's cached activations.
#   W2SPROBE_DATA_DIR=../shared/data bash bench/blog_study.sh [WORK_DIR]   (default ./blog-cache)
# Per dataset, in one pass: the strong model's activations (every layer), the weak run (its
# predictions are the weak labels), the weak model's activations (for head weak supervisors).
# Resumable: each finished run and label set is copied into the committed record
# docs/results/blog/cache after each command (bench/study_record.py), and restored first.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-blog-cache}"
record="$here/docs/results/blog"
# cheapest first (MPNet tokens per example: short tweets and sentences, then the passages)
datasets="wic sst2 cola tweet_eval_hate tweet_eval_sentiment ethics-justice ethics-deontology
  ethics-virtue ethics-utilitarianism sciq social_i_qa mc_taco piqa boolq sciq_with_support
  ethics-commonsense quail"
mkdir -p "$work" "$record/logs"
python "$here/bench/study_record.py" restore "$record/cache" "$work"

step() {  # step DATASET NAME COMMAND...: run one w2sprobe command, log its time, save the record
  local d="$1" name="$2" start code=0; shift 2
  start=$(date +%s)
  nice -n 10 "$@" --cache-dir "$work" --dataset "$d" $sizes --quiet --json \
    > "$record/logs/$d.$name.json" 2> "$work/$d.$name.err" || code=$?
  echo "$d $name: exit $code after $(( $(date +%s) - start )) s" | tee -a "$record/logs/progress.log"
  python "$here/bench/study_record.py" save "$work" "$record/cache" > /dev/null
  return "$code"
}

for d in $datasets; do
  sizes="$(python "$here/bench/blog_sizes.py" "$d" --data-dir "${W2SPROBE_DATA_DIR:-../shared/data}")"
  step "$d" extract-strong w2sprobe extract --layers all || continue
  step "$d" weak w2sprobe train weak || continue
  step "$d" extract-weak w2sprobe extract --model minilm --layers all || continue
done
