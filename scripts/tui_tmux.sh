#!/usr/bin/env bash
# Drive the real `malles tui` in a real terminal (tmux) and save what each screen shows.
#
#   scripts/tui_tmux.sh [OUT_DIR] [BACKEND]
#
# OUT_DIR  where the captured screens go (default runs/tui-screens/<timestamp>): NN-name.txt is the
#          plain text of the pane, NN-name.ansi the same with colours (view with `less -R` or `cat`).
# BACKEND  the LLM backend of the run (default local: the bundled SmolLM2 GGUF through llama.cpp).
#
# Environment: ROUNDS (default 2) and ARCHETYPES (default 3) size the run; WIDTH x HEIGHT the terminal
# (default 160x48; WIDTH=80 HEIGHT=24 checks the narrow layout); TIMEOUT_S (default 600) is
# the backend's per-call timeout (a busy machine makes the local model slow).
#
# Needs tmux (apt-get install -y tmux) and the Ta Feng data (`malles data fetch all`).
# The prompt folder is a temporary copy (MALLES_PROMPTS), so the edits the script types never
# touch prompts/; the run database lives in OUT_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/runs/tui-screens/$(date +%Y%m%d-%H%M%S)}"
BACKEND="${2:-local}"
ROUNDS="${ROUNDS:-2}"
ARCHETYPES="${ARCHETYPES:-3}"
TIMEOUT_S="${TIMEOUT_S:-600}"
SESSION="malles-tui-$$"
WIDTH="${WIDTH:-160}"
HEIGHT="${HEIGHT:-48}"

command -v tmux >/dev/null || { echo "tmux is needed: apt-get install -y tmux" >&2; exit 2; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cp -r "$ROOT/prompts" "$WORK/prompts"
cat > "$WORK/tmux-demo.yaml" <<YAML
# Written by scripts/tui_tmux.sh: five persona households, a few archetypes and rounds, one debate round.
name: tmux-demo
description: TUI check in a real terminal (persona households, short answers)
kind: retail
seed: 0
backend: {name: $BACKEND, max_tokens: 48, max_concurrency: 2, max_retries: 1, timeout_s: $TIMEOUT_S}
population: {source: personas, personas_file: retail_households.yaml, archetypes: $ARCHETYPES}
environment: {n_subclasses: 1, n_candidates: 3, start_date: 2001-02-01}
mean_field: {max_rounds: $ROUNDS, epsilon: 0.000001}
decision: {debate_rounds: 1, samples: 1, retrieval: false}
YAML
cat > "$WORK/broken.yaml" <<YAML
name: broken
population: {archetypes: 0, n_customers: -5}
mean_field: {damping: 3}
YAML

n=0
shot() {  # shot NAME: save the pane as text and with colours
  n=$((n + 1))
  local name
  name=$(printf "%02d-%s" "$n" "$1")
  tmux capture-pane -t "$SESSION" -p > "$OUT/$name.txt"
  tmux capture-pane -t "$SESSION" -p -e > "$OUT/$name.ansi"
  echo "captured $name"
}

wait_for() {  # wait_for PATTERN SECONDS: until the pane shows PATTERN (an extended regex)
  local text="$1" limit="${2:-30}" waited=0
  until tmux capture-pane -t "$SESSION" -p | grep -qE -- "$text"; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge "$limit" ]; then
      echo "WARNING: timed out after ${limit}s waiting for: $text (capturing anyway)" >&2
      return 0
    fi
  done
}

keys() { tmux send-keys -t "$SESSION" "$@"; sleep "${PAUSE:-1}"; }

tmux new-session -d -s "$SESSION" -x "$WIDTH" -y "$HEIGHT" \
  "cd '$ROOT' && MALLES_PROMPTS='$WORK/prompts' MALLES_RUNS='$OUT/runs' \
   '$ROOT/.venv/bin/malles' tui --scenario '$WORK/tmux-demo.yaml' --store 'sqlite:///$OUT/store.sqlite'; \
   echo \"malles tui exited with status \$?\"; sleep 30"

wait_for "tmux-demo" 60
shot run-screen

keys F1
wait_for "Keys" 10
shot help
keys Escape

keys C-p
PAUSE=0.2 keys g o " " t o " " h i s
sleep 1
shot command-palette
keys Escape

keys C-r
wait_for "run id" 120
shot run-started
keys F3
wait_for "(persona|price_analyst|product_specialist|decide)  round" 900
sleep 5
shot live-debate
keys n
sleep 1
shot live-debate-next-agent
keys F4
wait_for "convergence distance" 30
shot population-during-run
keys F2
wait_for "(finished|failed|cancelled)  tmux-demo" 3600
shot run-finished
keys F3
sleep 2
shot live-debate-finished
keys F4
wait_for "convergence distance" 30
sleep 2
shot population-finished

keys F5
wait_for "tmux-demo-" 30
keys Enter  # the runs table has the focus: Enter opens the highlighted (newest) run
wait_for "K=$ARCHETYPES" 30
shot history-opened-run

keys F6
wait_for "valid" 20
shot editor
keys Tab
keys C-Home
PAUSE=0.2 keys "{" b o g u s "}" " "
sleep 1
shot editor-invalid
keys C-s
sleep 1
shot editor-save-refused
keys C-z
sleep 1
shot editor-undone

keys F2
keys C-o
wait_for "Open a scenario" 10
keys "$WORK/broken.yaml" Enter
sleep 2
shot broken-scenario
keys C-r
sleep 1
shot broken-scenario-start-refused

keys C-q
wait_for "malles tui exited with status" 60
shot after-quit
if cmp -s "$ROOT/prompts/persona.txt" "$WORK/prompts/persona.txt" && cmp -s "$ROOT/prompts/decide.txt" "$WORK/prompts/decide.txt"; then
  echo "prompt copies unchanged (the invalid edit was refused)"
fi
echo "screens saved in $OUT"
