#!/usr/bin/env bash
# Iterated Prisoner's Dilemma (10 rounds) in societas, Concordia and TextArena, side by side.
#
# Creates one virtual environment per peer (reused when present), installs the
# peer from the package index, runs every workload of every framework in its
# own process (each writes one JSON record), then prints the summary table.
#
#   bash benchmarks/peers/run.sh
#
# Environment: PEERS_VENV_DIR (default benchmarks/peers/.venvs), PEERS_OUT
# (where the JSON records go; default a new temporary folder), SOCIETAS_PYTHON
# (an interpreter with societas installed; default python3), PEERS_PYTHON (the
# interpreter the peers' environments are made from; default python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="${PEERS_VENV_DIR:-$HERE/.venvs}"
OUT="${PEERS_OUT:-$(mktemp -d -t societas-peers-XXXXXX)}"
SOCIETAS_PYTHON="${SOCIETAS_PYTHON:-python3}"
PEERS_PYTHON="${PEERS_PYTHON:-python3}"
CONCORDIA_SPEC="gdm-concordia==2.1.0"
TEXTARENA_SPEC="textarena==0.7.*"
mkdir -p "$VENVS" "$OUT"

# venv NAME DISTRIBUTION SPEC: make the environment unless it already has a matching version.
venv() {
  local name="$1" dist="$2" spec="$3" py="$VENVS/$1/bin/python"
  if [ -x "$py" ] && "$py" - "$dist" "$spec" <<'EOF' 2>/dev/null; then return; fi
import sys, importlib.metadata as m, fnmatch
dist, spec = sys.argv[1], sys.argv[2]
sys.exit(0 if fnmatch.fnmatch(m.version(dist), spec.split("==")[1]) else 1)
EOF
  echo "installing $spec into $VENVS/$name ..." >&2
  "$PEERS_PYTHON" -m venv "$VENVS/$name"
  "$VENVS/$name/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2
}
venv concordia gdm-concordia "$CONCORDIA_SPEC"
venv textarena textarena "$TEXTARENA_SPEC"
"$SOCIETAS_PYTHON" -c "import societas" || { echo "societas is not importable by $SOCIETAS_PYTHON (pip install -e .)" >&2; exit 1; }

# measure NAME PYTHON SCRIPT ARGS...: one process, one JSON record in $OUT/NAME.json.
measure() {
  local name="$1" py="$2" script="$3"
  shift 3
  echo "  $name" >&2
  (cd "$HERE" && "$py" "$script" "$@" --out "$OUT/$name.json" >/dev/null 2>>"$OUT/$name.log")
}

echo "measuring (records in $OUT) ..." >&2
S="$SOCIETAS_PYTHON"
C="$VENVS/concordia/bin/python"
T="$VENVS/textarena/bin/python"
for agents in llm scripted; do
  measure "societas-$agents-2-g200" "$S" societas_pd.py --agents "$agents" --players 2 --games 200
  measure "societas-$agents-2-g1" "$S" societas_pd.py --agents "$agents" --players 2 --games 1
  measure "societas-$agents-8-g50" "$S" societas_pd.py --agents "$agents" --players 8 --games 50
  measure "societas-$agents-8-g1" "$S" societas_pd.py --agents "$agents" --players 8 --games 1
  measure "societas-$agents-1000-g1" "$S" societas_pd.py --agents "$agents" --players 1000 --games 1
done
measure textarena-2-g200 "$T" textarena_pd.py --players 2 --games 200
measure textarena-8-g50 "$T" textarena_pd.py --players 8 --games 50
measure textarena-1000-g1 "$T" textarena_pd.py --players 1000 --games 1
measure concordia-minimal-2-g5 "$C" concordia_pd.py --players 2 --games 5
measure concordia-minimal-8-g2 "$C" concordia_pd.py --players 8 --games 2
measure concordia-basic-2-g1 "$C" concordia_pd.py --players 2 --games 1 --entity basic__Entity
measure concordia-basic-8-g1 "$C" concordia_pd.py --players 8 --games 1 --entity basic__Entity
# Concordia's 1,000-player workload is not run (hours at the measured rates); summary.py prints an
# estimate labelled as extrapolated.

echo >&2
"$SOCIETAS_PYTHON" "$HERE/summary.py" "$OUT"
