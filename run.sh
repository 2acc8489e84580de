#!/usr/bin/env bash
# Runs a recipe's stages. Creates or repairs the environment first (see local/env.sh).
#
#   ./run.sh [--recipe NAME] [--stage N] [--stop-stage M] [recipe options...]
#
# A recipe lives in recipes/NAME/recipe.sh: it sets its option defaults, lists its stages in
# `stage_names` (index = stage number) and defines one shell function `stage_N` per stage.
set -euo pipefail
invocation_dir=$PWD  # relative paths typed as options are taken from here (abs_path)
cd "$(dirname "$0")"
source local/log.sh

_not_options="$(compgen -v | tr '\n' ' ') prepare_stop_stage invocation_dir help_message stage_names bool_options given_options i j known"
recipe=synth
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --recipe=*) recipe="${!i#--recipe=}" ;;
    --recipe) j=$((i + 1)); recipe="${!j:-}" ;;
  esac
done
unset i j
if [ ! -f "recipes/$recipe/recipe.sh" ]; then
  known=$(find recipes -mindepth 2 -maxdepth 2 -name recipe.sh -printf '%h\n' 2>/dev/null \
          | xargs -rn1 basename | sort | tr '\n' ' ')
  die "unknown recipe '$recipe' (recipes/$recipe/recipe.sh not found). Known recipes: ${known:-none}"
fi

stage=0
stop_stage=100
force=false
prepare_only=false
prepare_stop_stage=""
stage_names=()
bool_options=()   # a recipe lists its true/false options here
source local/stage_lib.sh
# shellcheck disable=SC1090
source "recipes/$recipe/recipe.sh"

help_message="Usage: $0 [--recipe NAME] [--stage N] [--stop-stage M] [--force true] [--prepare-only true] [options]
Recipe '$recipe' stages:
$(for n in "${!stage_names[@]}"; do echo "  $n  ${stage_names[$n]}"; done)
Options (current value; see recipes/$recipe/recipe.sh for what each does):
$(for v in $(compgen -v); do
    [[ "$v" =~ ^[a-z][a-z0-9_]*$ && " $_not_options " != *" $v "* ]] || continue
    [[ "$(declare -p "$v")" == "declare -a"* ]] || echo "  --${v//_/-} '${!v}'"
  done)"
source local/parse_options.sh
[ $# -eq 0 ] || die "unexpected argument '$1': options are --name value (see $0 --recipe $recipe --help)"
for opt in force prepare_only "${bool_options[@]}"; do
  [[ "${!opt}" =~ ^(true|false)$ ]] || die "--${opt//_/-} takes true or false, not '${!opt}'"
done
if declare -F check_options >/dev/null; then check_options; fi  # the recipe's own checks

[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop-stage take integers"
if [ ${#stage_names[@]} -eq 0 ]; then
  die "recipe '$recipe' has no stages implemented yet (see recipes/$recipe/README.md)"
fi
last=$(( ${#stage_names[@]} - 1 ))
[ "$stop_stage" -eq 100 ] && stop_stage=$last
if [ "$prepare_only" = true ]; then
  [ -n "$prepare_stop_stage" ] || die "recipe '$recipe' sets no prepare_stop_stage (no separate data stages)"
  [ "$stop_stage" -gt "$prepare_stop_stage" ] && stop_stage=$prepare_stop_stage
fi
have=$(for n in "${!stage_names[@]}"; do printf '%s ' "$n"; done)
[ "$stage" -le "$stop_stage" ] || die "--stage $stage is after --stop-stage $stop_stage (recipe '$recipe' has stages ${have% })"
for ((s = stage; s <= stop_stage; s++)); do
  if [ -z "${stage_names[$s]:-}" ] || ! declare -F "stage_$s" >/dev/null; then
    die "recipe '$recipe' has no stage $s (its stages: ${have% }). Use --stage/--stop-stage within that range."
  fi
done

source local/env.sh
for ((s = stage; s <= stop_stage; s++)); do
  log "recipe $recipe, stage $s: ${stage_names[$s]}"
  "stage_$s"
done
log "recipe $recipe: stages $stage..$stop_stage done"
