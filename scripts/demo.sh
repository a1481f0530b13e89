#!/usr/bin/env bash
# make demo: generate a small image project and walk it through init, commit, edit, commit, log, restore, push, clone.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work="${PVC_DEMO_DIR:-$here/demo}"  # (tests/test_demo.py runs it in a temporary folder)
rm -rf "$work"
mkdir -p "$work"
proj="$work/project"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; local t0=$EPOCHREALTIME; "$@"; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "  (%.3f s)\n", b - a }'; }

run python -m pvc.sample "$proj" --items 200 --datasets 2 --seed 7
cd "$proj"
run pvc init
run pvc commit -m "checkpoint-1" --description "200 generated images"
run pvc commit -m "checkpoint-1 again"
step "python -c 'mutate_image_project(...)'   # edit 1% of annotations, add and delete items"
python -c "from pathlib import Path; from pvc.sample import mutate_image_project as m; import json; print(json.dumps(m(Path('.'), seed=3, edit=0.05, add=0.02, delete=0.02)))"
run pvc status
run pvc commit -m "after-edit" --description "edited annotations, added and removed items"
run pvc diff 1 2 --stat
run pvc log
run pvc show 2
run pvc restore v1 --to "$work/project-v1"
run pvc restore latest --to "$work/project-v2" --json
step "diff -r --exclude=.pvc project project-v2   # the latest version is the working tree, byte for byte"
diff -r --exclude=.pvc "$proj" "$work/project-v2" && echo "  identical"
run pvc remote add origin "$work/remote"        # a shared folder; s3://bucket/prefix works the same way
run pvc push
run pvc clone "$work/remote" "$work/clone" --version 1
step "diff -r --exclude=.pvc project-v1 clone   # a clone on another machine gets the same bytes"
diff -r --exclude=.pvc "$work/project-v1" "$work/clone" && echo "  identical"
step "pvc ls 1 --json > ls-v1.json; head -20 ls-v1.json   # (piped into head, pvc would exit 1 when head stops reading)"
pvc ls 1 --json > "$work/ls-v1.json"
head -20 "$work/ls-v1.json"
printf '\nDemo finished: project in %s, restored versions in %s and %s, a remote in %s and its clone in %s\n' \
  "$proj" "$work/project-v1" "$work/project-v2" "$work/remote" "$work/clone"
