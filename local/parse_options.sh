#!/usr/bin/env bash
# Icefall/Kaldi-style option parsing: for every variable `foo_bar` already defined by the
# calling script, `--foo-bar VALUE` (or `--foo-bar=VALUE`) overrides it. Source this file
# after defining the defaults; positional arguments are left in "$@".

while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message" >&2; fi
      exit 0 ;;
    --*=*)
      name="${1%%=*}"; value="${1#*=}"; shift 1 ;;
    --*)
      name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $name needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  var="$(echo "${name#--}" | sed 's/-/_/g')"
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$var" '%s' "$value"
done
unset name value var
true
