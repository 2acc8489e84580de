#!/usr/bin/env bash
# log MESSAGE...: timestamped message with the calling file, line and function (ESPnet/icefall style).
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
# die MESSAGE...: log an error (located at die's caller) and exit 1.
die() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) ERROR: $*" >&2
  exit 1
}
