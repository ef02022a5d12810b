#!/usr/bin/env bash
# Issue 12's study at demo sizes over the offline mirror: weak MiniLM -> strong MPNet on every
# dataset, then SmolLM2 (a decoder: 30 Llama blocks, last-token pooling, probe layer 16) as the
# strong model on three; the blog's main experiments, and its probe-parameter sweeps (kNN k and
# logistic L2 over every layer); a report per study in docs/results/.
#   W2SPROBE_DATA_DIR=../shared/data bash bench/study.sh [WORK_DIR]     (default ./study-cache)
# Resumable across sessions: after each experiment its results go into the committed record
# docs/results/<study>/cache (bench/study_record.py), and a rerun restores that record first, so
# finished stages are cache hits and an unfinished dataset resumes at its first missing stage.
# Every stage's wall time is kept in the run logs,
# docs/results/<study>/logs/<dataset>.<unix time>[.<experiment>].json.
set -uo pipefail
saver=""  # the background loop that saves the record; stopped however the script ends
trap '[ -n "$saver" ] && kill "$saver" 2> /dev/null' EXIT
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/bench/background.sh"  # a niced study yields to other sessions too
work="${1:-study-cache}"
# what needs only the activations first (minutes: the extraction, the probes, then the sweeps),
# the students after (about an hour each on quail): a session that ends inside a long dataset
# has still added its probe results, filter precision and sweeps to the record
probe_experiments="knn-probe logreg-probe"
student_experiments="knn-filter knn-relabel xent logconf"
# the blog's "layer and parameter choice": k and the L2 penalty around its k=50, 1e-2
sweeps=("--probe knn --k 5,10,25,50,100,200" "--probe logreg --l2 1e-4,1e-3,1e-2,1e-1,1")
# cheapest first, so the most datasets finish per hour on a CPU: short texts, then boolq and
# sciq_with_support (MPNet tokens per example: mean 137 and 127, 1 % at the 512 limit), then
# ethics-commonsense (mean 219, but 14 % at 512: attention cost grows with the square of the
# length) and quail (mean 450)
encoder_datasets="sst2 cola tweet_eval_hate tweet_eval_sentiment ethics-justice ethics-deontology
  ethics-virtue ethics-utilitarianism wic sciq social_i_qa mc_taco piqa boolq sciq_with_support
  ethics-commonsense quail"
decoder_datasets="sst2 cola tweet_eval_hate"

study() {  # study NAME "DATASETS" "RUN FLAGS" MODEL FLAGS...
  local name="$1" datasets="$2" run_flags="$3"; shift 3
  local record="$here/docs/results/$name" cache="$work/$name"
  mkdir -p "$cache" "$record/logs"
  python "$here/bench/study_record.py" restore "$record/cache" "$cache"
  # One command can hold several long stages (quail's weak, ceiling and xent: about 2.5 h), so
  # the record is also saved every 10 minutes: it copies finished runs and whole label sets
  # only, and a file that changes after a save (a sweep table) is newer, so the next copies it.
  (
    trap 'kill "$!" 2> /dev/null; exit' TERM  # and the sleep it is waiting for
    while sleep 600 & wait "$!"; do
      python "$here/bench/study_record.py" save "$cache" "$record/cache"
    done
  ) > /dev/null &
  saver=$!
  for d in $datasets; do
    # A finished dataset is skipped: its commands would only read the record back.
    done_before "$name $d" && continue
    local start status=0; start=$(date +%s)
    # One experiment per command and the record saved after each: the work dir does not outlive
    # a session, and a long dataset (quail: hours) must not lose its finished stages to a
    # session's end. Each command reads what the ones before it built from the cache.
    for experiment in $probe_experiments sweeps $student_experiments; do
      if [ "$experiment" = sweeps ]; then  # a failed sweep is logged, and the students go on
        done_before "$name $d sweeps" || run_sweeps "$d" "$@"
      else
        run_experiment "$d" "$experiment" "$@" || status=$?
      fi
      [ "$status" -eq 0 ] || break
    done
    echo "$name $d: exit $status after $(( $(date +%s) - start )) s" \
      | tee -a "$record/logs/progress.log"
  done
  # from the repository root with relative paths: the report records its command and paths, and
  # the committed one must read the same on any clone
  kill "$saver"
  (cd "$here" && w2sprobe report --cache-dir "docs/results/$name/cache" --format md \
    --out "docs/results/$name" --quiet)
}

run_experiment() {  # run_experiment DATASET EXPERIMENT MODEL FLAGS...: one `w2sprobe run`
  local d="$1" experiment="$2" stamp code=0; shift 2
  stamp="$(date +%s).$experiment"
  # shellcheck disable=SC2086  # run_flags is a list of words
  nice -n 5 w2sprobe run --cache-dir "$cache" --experiments "$experiment" --dataset "$d" "$@" \
    $run_flags $(memory_flags "$d") --json > "$record/logs/$d.$stamp.json" \
    2> "$cache/$d.$stamp.err" || code=$?
  python "$here/bench/study_record.py" save "$cache" "$record/cache"
  return "$code"
}

run_sweeps() {  # run_sweeps DATASET MODEL FLAGS...: the probe-parameter sweeps over every layer
  local d="$1" start code=0; shift
  start=$(date +%s)
  for sweep in "${sweeps[@]}"; do
    # shellcheck disable=SC2086  # sweep is a list of words
    nice -n 5 w2sprobe sweep --cache-dir "$cache" --dataset "$d" "$@" $sweep --layers all \
      --quiet >> "$cache/$d.sweeps.out" 2>&1 || code=$?
  done
  echo "$name $d sweeps: exit $code after $(( $(date +%s) - start )) s" \
    | tee -a "$record/logs/progress.log"
  python "$here/bench/study_record.py" save "$cache" "$record/cache"
}

memory_flags() {  # memory_flags DATASET: micro-batch size for the long-text datasets
  # 32 x 512-token micro-batches of MPNet need more than this machine's 24 GB (the kernel
  # killed ethics-commonsense's ceiling at 24 GB resident); with the blog preset's 8 it runs in
  # 12.5 GB, and a step is the batch's mean gradient whatever the split
  # (tests/test_train_accumulation.py)
  case "$1" in
    ethics-commonsense | boolq | sciq_with_support | quail) echo "--minibatch 8" ;;
  esac
}

done_before() {  # done_before "STUDY DATASET[ sweeps]": did the record log it as exit 0?
  grep -q "^$1: exit 0" "$here/docs/results/${1%% *}/logs/progress.log" 2>/dev/null
}

# the decoder study first: three datasets of it make a finished result, while the encoder study
# still has many datasets to go
study smollm2 "$decoder_datasets" "--layer 16" --strong smollm2
study mpnet "$encoder_datasets" ""
