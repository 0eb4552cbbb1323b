#!/usr/bin/env bash
# DAG-of-commands benchmark: 1000 jobs (10 layers x 100, 2 random deps on the previous layer,
# seed 42), run by each peer tool with parallelism 2. Records wall time, wall/N, peak RSS
# (wall from bash $EPOCHREALTIME around the run; GNU time %M = largest single process; rss_tree = summed tree RSS sampled every 0.2 s) and,
# for the `true` variant, "tool launched -> first job command started" (layer-0 jobs run `stamp`).
#
# usage: run_dag_bench.sh [TOOL...]   TOOL in: forkexec shell make ninja doit luigi snakemake prefect ours
# env:   VARIANTS="true sleep"  REPS=5 (fast tools)  SLOW_REPS=1 (luigi/snakemake/prefect/doit)
#        TMO=600 (per run)  OUT=/tmp/perfpeers/results  BIN=/tmp/perfpeers/bin
#        VENV=/tmp/perfpeers/venv (doit, luigi)  VENV_SMK=/tmp/perfpeers/venv-smk  VENV_PREFECT=/tmp/perfpeers/venv-prefect
#  ---- Gantry (bench/dag.sh sets it) ----
#        OURS_DAG_CMD='gantry run {dir}/gantry.json --max-parallel 2 --data-dir {state}'
#   {dir} -> the generated folder (dag.json, gantry.json, ...), {dag} -> its dag.json, {state} -> fresh empty dir.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOOLS=$HERE/../tools
OUT=${OUT:-/tmp/perfpeers/results}; BIN=${BIN:-/tmp/perfpeers/bin}; VENV=${VENV:-/tmp/perfpeers/venv}
VENV_SMK=${VENV_SMK:-/tmp/perfpeers/venv-smk}; VENV_PREFECT=${VENV_PREFECT:-/tmp/perfpeers/venv-prefect}
VARIANTS=${VARIANTS:-"true sleep"}; GEN_ARGS=${GEN_ARGS:-}; # e.g. GEN_ARGS="--layers 2 --width 5" for a smoke test
 REPS=${REPS:-5}; SLOW_REPS=${SLOW_REPS:-1}; TMO=${TMO:-600}
TOOLS_LIST=("$@"); [ ${#TOOLS_LIST[@]} -eq 0 ] && TOOLS_LIST=(forkexec shell make ninja doit luigi snakemake prefect)
RES=$OUT/dag-results.jsonl; mkdir -p "$OUT"
[ -x "$BIN/stamp" ] || BIN=$BIN "$TOOLS/build.sh"
for v in $VARIANTS; do
  D=$OUT/dag-$v
  if [ "$v" = true ]; then python3 "$HERE/gen_dag.py" "$D" --cmd true --stamp-first "$BIN/stamp" $GEN_ARGS
  else python3 "$HERE/gen_dag.py" "$D" --cmd "sleep 0.01" $GEN_ARGS; fi
done

runone() { # tool variant rep cmd...  (cwd = fresh work dir $WD)
  local tool=$1 v=$2 rep=$3; shift 3
  rm -f "$D/first.ns" "$WD/t0.ns"; local ts=$EPOCHREALTIME
  ( cd "$WD" && exec /usr/bin/time -f '%e %M' -o "$WD/time.txt" timeout "$TMO" "$BIN/t0exec" "$WD/t0.ns" "$@" ) \
    > "$WD/out-$rep.log" 2>&1 &
  local pid=$!
  python3 "$TOOLS/rss_tree.py" "$pid" 1e9 0.2 > "$WD/rss.txt" &
  local rpid=$!
  wait "$pid"; local rc=$?; local te=$EPOCHREALTIME; wait "$rpid"
  read -r _ maxrss < <(grep -E '^[0-9.]+ [0-9]+$' "$WD/time.txt" | tail -1)
  local wall; wall=$(python3 -c "print(round($te-$ts,4))")   # bash-side wall clock, us resolution
  local tree; tree=$(sed -n 's/RSS_JSON //p' "$WD/rss.txt" | python3 -c 'import json,sys;print(json.load(sys.stdin)["peak_kib"])')
  local first=null nstamp=0
  if [ -s "$D/first.ns" ] && [ -s "$WD/t0.ns" ]; then
    first=$(python3 -c "t0=int(open('$WD/t0.ns').read());s=[int(x) for x in open('$D/first.ns')];print(round((min(s)-t0)/1e6,2))")
    nstamp=$(wc -l < "$D/first.ns")
  fi
  local line="{\"tool\":\"$tool\",\"variant\":\"$v\",\"rep\":$rep,\"rc\":$rc,\"wall_s\":${wall:-null},\"us_per_job\":$(python3 -c "print(round(${wall:-0}/$N*1e6))"),\"maxrss_kib\":${maxrss:-null},\"tree_rss_kib\":${tree:-null},\"first_job_ms\":$first,\"layer0_stamps\":$nstamp}"
  echo "$line" | tee -a "$RES"
}

for v in $VARIANTS; do
  D=$OUT/dag-$v; CMD=(true); N=$(python3 -c "import json;print(len(json.load(open('$D/dag.json'))['jobs']))"); [ "$v" = sleep ] && CMD=(sleep 0.01)
  for tool in "${TOOLS_LIST[@]}"; do
    reps=$REPS; case $tool in doit|luigi|snakemake|prefect) reps=$SLOW_REPS;; esac
    for rep in $(seq "$reps"); do
      WD=$OUT/work-$tool-$v; rm -rf "$WD"; mkdir -p "$WD/state"
      case $tool in
        forkexec) runone forkexec-seq-fork "$v" "$rep" "$BIN/forkexec" $N 1 fork "$(type -P "${CMD[0]}")" "${CMD[@]:1}"
                  runone forkexec-p2-fork "$v" "$rep" "$BIN/forkexec" $N 2 fork "$(type -P "${CMD[0]}")" "${CMD[@]:1}"
                  runone forkexec-p2-spawn "$v" "$rep" "$BIN/forkexec" $N 2 spawn "$(type -P "${CMD[0]}")" "${CMD[@]:1}" ;;
        shell)    runone bash-loop-seq "$v" "$rep" bash -c "for i in \$(seq $N); do $(type -P "${CMD[0]}") ${CMD[*]:1}; done"
                  runone xargs-P2 "$v" "$rep" bash -c "seq $N | xargs -P2 -I{} $(type -P "${CMD[0]}") ${CMD[*]:1}" ;;
        make)     runone make-j2 "$v" "$rep" make -j2 -s -f "$D/Makefile" all ;;
        ninja)    runone ninja-j2 "$v" "$rep" ninja -j2 -f "$D/build.ninja" ;;
        doit)     runone doit-n2 "$v" "$rep" "$VENV/bin/doit" -f "$D/dodo.py" --db-file "$WD/state/doit.db" -n 2 ;;
        luigi)    runone luigi-w2 "$v" "$rep" env DAG_STATE="$WD/state" PYTHONPATH="$D" "$VENV/bin/luigi" --module luigi_dag All \
                    --local-scheduler --workers 2 --no-lock --log-level WARNING ;;
        snakemake) runone snakemake-c2 "$v" "$rep" "$VENV_SMK/bin/snakemake" -s "$D/Snakefile" -d "$WD" --cores 2 --quiet all ;;
        prefect)  mkdir -p "$OUT/prefect-home"
                  runone prefect-t2 "$v" "$rep" env PREFECT_HOME="$OUT/prefect-home" PREFECT_LOGGING_LEVEL=WARNING \
                    PREFECT_SERVER_ANALYTICS_ENABLED=false "$VENV_PREFECT/bin/python" "$D/prefect_dag.py" ;;
        ours)     : "${OURS_DAG_CMD:?set OURS_DAG_CMD (bench/dag.sh sets it)}"
                  c=${OURS_DAG_CMD//\{dag\}/$D/dag.json}; c=${c//\{dir\}/$D}; c=${c//\{state\}/$WD/state}
                  runone ours "$v" "$rep" bash -c "exec $c" ;;
      esac
    done
  done
done
