#!/usr/bin/env bash
# Helpers for recipe stages (sourced by run.sh before recipes/NAME/recipe.sh).

# skip_if_done OUTPUT...: true when every output exists and --force is not set
skip_if_done() {
  [ "$force" = true ] && return 1
  local f
  for f in "$@"; do [ -e "$f" ] || return 1; done
  log "outputs exist ($*); skipping (--force true redoes)"
}

# abs_path VAR...: a relative path the user typed as an option names a file relative to the
# folder run.sh was started from (run.sh itself works from the repository root)
abs_path() {
  local v
  for v in "$@"; do
    [[ " ${given_options[*]} " == *" $v "* && -n "${!v}" && "${!v}" != /* ]] || continue
    [ "$invocation_dir" = "$PWD" ] || printf -v "$v" '%s' "$invocation_dir/${!v}"
  done
}

# one_of VAR WORD...: die unless the option's value is one of the words
one_of() {
  local v=$1 w; shift
  for w in "$@"; do [ "${!v}" = "$w" ] && return 0; done
  die "--${v//_/-} takes one of: $*; not '${!v}'"
}

# same_settings DIR STEP SETTINGS: STEP's outputs in DIR are (to be) made with SETTINGS. The
# first run records them; a rerun with other settings stops, since skipping the step would
# silently keep outputs made with the old ones. --force true redoes the step and records anew.
same_settings() {
  local f="$1/.settings_$2"
  if [ "$force" != true ] && [ -f "$f" ] && [ "$(cat "$f")" != "$3" ]; then
    die "$1 holds $2 outputs made with '$(cat "$f")', not '$3': add --force true to redo them"
  fi
  mkdir -p "$1" && printf '%s\n' "$3" > "$f"
}

# need INPUT STAGE: die with a one-line message if a previous stage's output is missing
need() {
  [ -e "$1" ] || die "$1 is missing: run stage $2 first (./run.sh --recipe $recipe ${size:+--size $size }--stage $2)"
}

# _timed STAGE CMD...: run CMD and record its wall time in $exp/.seconds_stage_STAGE (reports).
# A rerun that adds work to a stage (a new system) adds its time; --force true starts afresh.
_timed() {
  local t0=$SECONDS f="$exp/.seconds_stage_$1" before=0
  "${@:2}" || return  # the command's status (callers add `|| die ...`)
  mkdir -p "$exp"
  [ "${force:-false}" != true ] && [ -f "$f" ] && before=$(cat "$f")
  echo $((before + SECONDS - t0)) > "$f"
}
