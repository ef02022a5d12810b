#!/usr/bin/env bash
# Issue 12's study: weak MiniLM -> strong MPNet at demo sizes on every dataset of the offline
# mirror, the blog's main experiments, then the report under docs/results/. Resumable: run it
# again and every finished stage is read from the cache.
#   W2SPROBE_DATA_DIR=../shared/data bash bench/study.sh [CACHE_DIR]      (default ./study-cache)
set -uo pipefail
cache="${1:-study-cache}"
experiments=xent,logconf,knn-probe,logreg-probe,knn-filter,knn-relabel
# shortest texts first: the most datasets finish per hour on a CPU
datasets="sst2 cola tweet_eval_hate ethics-justice ethics-commonsense ethics-deontology ethics-virtue
  ethics-utilitarianism wic sciq piqa social_i_qa mc_taco boolq sciq_with_support quail"
mkdir -p "$cache"
for d in $datasets; do
  start=$(date +%s)
  nice -n 5 w2sprobe run --cache-dir "$cache" --experiments "$experiments" --dataset "$d" --json \
    > "$cache/$d.run.json" 2> "$cache/$d.run.err"
  echo "$d: exit $? after $(( $(date +%s) - start )) s" | tee -a "$cache/progress.log"
done
w2sprobe report --cache-dir "$cache" --format md --out docs/results
