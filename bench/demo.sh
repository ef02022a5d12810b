#!/usr/bin/env bash
# The demo's `w2sprobe run` on an empty cache: a baseline commit, then this tree, one after the
# other; then the demo ceiling trained by each, interleaved, twice (the trainer's tokens/s).
#   W2SPROBE_DATA_DIR=../shared/data bash bench/demo.sh [BASELINE_REF]     (default 4bbe1cd)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ref="${1:-4bbe1cd}"
out="$(mktemp -d)"
git -C "$here" worktree add --detach "$out/baseline" "$ref" > /dev/null
trap 'git -C "$here" worktree remove --force "$out/baseline"' EXIT
run() {  # run TREE NAME ARGS...: w2sprobe from that tree, timed, JSON kept
  local tree="$1" name="$2"; shift 2
  (cd "$tree" && /usr/bin/time -f "$name: %e s wall, %M KiB peak RSS" \
      python -m w2sprobe "$@" --json > "$out/$name.json")
}
run "$out/baseline" "run-before" run --cache-dir "$out/cache-before"
run "$here" "run-after" run --cache-dir "$out/cache-after"
for round in 1 2; do
  rm -rf "$out/ceiling-before" "$out/ceiling-after"
  run "$out/baseline" "ceiling-before-$round" train ceiling --cache-dir "$out/ceiling-before"
  run "$here" "ceiling-after-$round" train ceiling --cache-dir "$out/ceiling-after"
done
for f in "$out"/ceiling-*.json; do
  python -c "import json,sys; r=json.load(open(sys.argv[1]))['runs'][0]; \
print(sys.argv[1].rsplit('/',1)[1], round(r['tokens_per_second'], 1), 'tokens/s')" "$f"
done
echo "outputs in $out"
