#!/usr/bin/env bash
# Icefall/Kaldi-style option parsing: for every option variable `foo_bar` already defined by
# the calling script, `--foo-bar VALUE` (or `--foo-bar=VALUE`) overrides it. An option variable
# is one the caller defined after listing the shell's own variables in `_not_options` (so
# `--PATH` or `--help-message` are refused). Every name set is added to `given_options`;
# anything that is not an option stops parsing and is left in "$@" for the caller to refuse.

given_options=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message" >&2; fi
      exit 0 ;;
    --*=*)
      name="${1%%=*}"; value="${1#*=}"; shift 1 ;;
    --?*)
      name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $name needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  var="$(echo "${name#--}" | sed 's/-/_/g')"
  if ! [[ "$var" =~ ^[a-z][a-z0-9_]*$ ]] || ! declare -p "$var" >/dev/null 2>&1 \
     || [[ " ${_not_options:-} " == *" $var "* ]]; then
    echo "$0: unknown option $name (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$var" '%s' "$value"
  given_options+=("$var")
done
unset name value var
true
