#!/usr/bin/env bash
# The deployer's two figures, against the release binary on a fresh data dir, with the
# repositories on a local git host (smart HTTP, bench/deploy/git_http.py) and AWS emulated
# (scripts/aws/emulator.py):
#  1. POST /deploy answered (202, the branch looked up with `git ls-remote`, the session
#     durable: its run and record committed) — N requests, one at a time and C at a time;
#     beside it, `git ls-remote` alone.
#  2. Gantry's own share of a CloudFormation deploy — K deploys of a bucket-and-table stack,
#     each session's time against the emulator's and the git host's (bench/deploy/share.py).
# env: N (1000), C (8), K (10).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${GANTRY_TEST_VENV:-$HOME/.cache/gantry/test-venv}
[ -x "$VENV/bin/python" ] || "$ROOT/scripts/test-deps"
cargo build --release -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

wait_for() {
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done
  echo "no '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# Two repositories: one with nothing deployable (for 1), a CloudFormation app (for 2).
mkdir -p "$work/git/acme"
for name in docs cfn-app; do
  git init --quiet --bare --initial-branch=main "$work/git/acme/$name.git"
  git init --quiet --initial-branch=main "$work/$name"
  git -C "$work/$name" remote add origin "$work/git/acme/$name.git"
  git -C "$work/$name" config user.name bench
  git -C "$work/$name" config user.email bench@localhost
done
echo "# nothing to deploy" >"$work/docs/README.md"
git -C "$work/docs" add -A
git -C "$work/docs" commit --quiet -m docs
git -C "$work/docs" push --quiet origin HEAD:main

python3 "$ROOT/bench/deploy/git_http.py" "$work/git" "$work/git-timings.jsonl" >"$work/git.out" 2>"$work/git.err" &
pids+=($!)
wait_for "$work/git.out" listening
githost=$(sed -n 's#git host listening on ##p' "$work/git.out")

"$VENV/bin/python" "$ROOT/scripts/aws/emulator.py" --timings "$work/timings.jsonl" >"$work/emulator.out" 2>"$work/emulator.err" &
pids+=($!)
wait_for "$work/emulator.out" listening
endpoint=$(sed -n 's#emulator listening on ##p' "$work/emulator.out")

AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_REGION=us-east-1 GANTRY_GIT_ALLOWED_URL_PREFIXES="$githost/" \
  "$TARGET/release/gantry" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>/dev/null &
pids+=($!)
wait_for "$work/out" listening
addr=$(sed -n 's#gantry listening on http://##p' "$work/out")
host=${addr%:*}; port=${addr##*:}

docs="$githost/acme/docs.git"
python3 "$ROOT/bench/deploy/post_deploy.py" "$host" "$port" "${N:-1000}" 1 "$docs"
python3 "$ROOT/bench/deploy/post_deploy.py" "$host" "$port" "${N:-1000}" "${C:-8}" "$docs"
# The sessions of 1 end before 2 starts.
for _ in $(seq 600); do
  busy=0
  for s in queued running; do
    n=$(curl -s "http://$addr/api/v1/runs?status=$s&limit=1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')
    busy=$((busy + n))
  done
  [ "$busy" = 0 ] && break; sleep 0.5
done
python3 "$ROOT/bench/deploy/share.py" "$host" "$port" "$work/cfn-app" \
  "$githost/acme/cfn-app.git" "$work/timings.jsonl" "$work/git-timings.jsonl" "${K:-10}"
