#!/usr/bin/env bash
# Issue 29's study at the blog's sizes (10,000 / 1,000 / 5,000, capped by what each offline
# dataset holds: bench/blog_sizes.py) on every offline dataset: weak MiniLM trained with LoRA,
# as the study, and head students on the strong MPNet's cached activations.
#   W2SPROBE_DATA_DIR=../shared/data bash bench/blog_study.sh [WORK_DIR] [PHASES]
# WORK_DIR defaults to ./blog-cache; PHASES to "inputs heads":
#   inputs: per dataset, the strong model's activations (every layer), the weak run (its
#           predictions are the weak labels), the weak model's activations (head supervisors);
#   heads:  per dataset, every experiment as heads (`run --student head`): the head ceiling,
#           xent, logconf, entropy, product, adaptive, knn-filter, knn-relabel, logreg-relabel,
#           two strong-to-strong iterations and the probes' own predictions. Started on its own
#           beside a running "inputs" phase, it waits for each dataset's inputs.
# Resumable: each finished run and label set is copied into the committed record
# docs/results/blog/record (CSV files gzip-compressed: bench/study_record.py --gzip) after each
# command, and restored first; activation files are not recorded (hundreds of MB per dataset:
# extraction dominates the study's time, and is repeated after a lost workspace). The report is
# made from the working cache:
#   w2sprobe report --cache-dir WORK_DIR --student head --format md --out docs/results/blog
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/bench/background.sh"  # a niced study yields to other sessions too
work="${1:-blog-cache}"
phases="${2:-inputs heads}"
record="$here/docs/results/blog"
data_dir="${W2SPROBE_DATA_DIR:-../shared/data}"
# cheapest first (MPNet tokens per example: short tweets and sentences, then the passages)
datasets="wic sst2 cola tweet_eval_hate tweet_eval_sentiment ethics-justice ethics-deontology
  ethics-virtue ethics-utilitarianism sciq social_i_qa mc_taco piqa boolq sciq_with_support
  ethics-commonsense quail"
experiments="xent,logconf,entropy,product,adaptive,knn-filter,knn-relabel,logreg-relabel,s2s"
experiments="$experiments,knn-probe,logreg-probe"
mkdir -p "$work" "$record/logs"
python "$here/bench/study_record.py" restore "$record/record" "$work" > /dev/null

step() {  # step DATASET NAME COMMAND...: run one w2sprobe command, log its time, save the record
  local d="$1" name="$2" start code=0; shift 2
  start=$(date +%s)
  # shellcheck disable=SC2086  # sizes is a list of words
  nice -n 5 "$@" --cache-dir "$work" --dataset "$d" $sizes --quiet --json \
    > "$record/logs/$d.$name.json" 2> "$work/$d.$name.err" || code=$?
  echo "$d $name: exit $code after $(( $(date +%s) - start )) s" | tee -a "$record/logs/progress.log"
  python "$here/bench/study_record.py" save "$work" "$record/record" --gzip > /dev/null
  return "$code"
}

done_before() {  # done_before "DATASET STEP": did the record log it as exit 0?
  grep -q "^$1: exit 0" "$record/logs/progress.log" 2>/dev/null
}

inputs_ready() {  # inputs_ready DATASET: wait for a concurrent "inputs" phase; 1 if it failed
  local d="$1"
  until done_before "$d extract-weak"; do
    grep -q "^$d \(extract-strong\|weak\|extract-weak\): exit [1-9]" "$record/logs/progress.log" \
      2> /dev/null && return 1
    sleep 60
  done
}

for d in $datasets; do
  sizes="$(python "$here/bench/blog_sizes.py" "$d" --data-dir "$data_dir")"
  if [[ " $phases " == *" inputs "* ]]; then
    for name in extract-strong weak extract-weak; do
      done_before "$d $name" && continue
      case "$name" in
        extract-strong) step "$d" "$name" w2sprobe extract --layers all ;;
        weak) step "$d" "$name" w2sprobe train weak ;;
        extract-weak) step "$d" "$name" w2sprobe extract --model minilm --layers all ;;
      esac || continue 2
    done
  fi
  if [[ " $phases " == *" heads "* ]]; then
    done_before "$d heads" && continue
    inputs_ready "$d" || continue
    step "$d" heads w2sprobe run --student head --experiments "$experiments"
  fi
done
