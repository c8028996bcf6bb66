#!/usr/bin/env bash
# Runs the ablation studies one after another at their full budget, resumably.
#
#   bash training/run_ablation_studies.sh [RUNS_ROOT] [STUDY ...]
#
# Each study's runs go to RUNS_ROOT/STUDY (default ~/ablation_runs; keep it
# outside the clone: it holds model files). Re-running the same command
# resumes: finished runs are read back, an interrupted one continues from its
# last completed epoch. Copy the finished results into the repository with
#   ssrnet-tf ablate STUDY --tables-only --output-dir RUNS_ROOT/STUDY
# (see README, "Ablation studies").
set -uo pipefail
cd "$(dirname "$0")/.."
root="${1:-$HOME/ablation_runs}"
shift || true
studies=("$@")
[ ${#studies[@]} -eq 0 ] && studies=(heads agn ssrnet_range multitask lae)
mkdir -p "$root"
for study in "${studies[@]}"; do
    echo "$(date -Is) start $study"
    ssrnet-tf ablate "$study" --output-dir "$root/$study" || echo "$(date -Is) $study stopped (exit $?)"
    echo "$(date -Is) end $study"
done
