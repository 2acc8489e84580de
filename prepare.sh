#!/usr/bin/env bash
# Data preparation only: the stages of a recipe up to its last data stage (`prepare_stop_stage`
# in recipes/NAME/recipe.sh; corpus, features, lang). Same options as run.sh.
set -euo pipefail
cd "$(dirname "$0")"
recipe=synth
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --recipe=*) recipe="${!i#--recipe=}" ;;
    --recipe) j=$((i + 1)); recipe="${!j:-}" ;;
  esac
done
stop=$(bash -c 'prepare_stop_stage=""; stage_names=(); source "recipes/$1/recipe.sh" 2>/dev/null; echo "${prepare_stop_stage}"' _ "$recipe")
exec ./run.sh "$@" ${stop:+--stop-stage "$stop"}
