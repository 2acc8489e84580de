#!/usr/bin/env bash
# Stages 1 (tokens), 3 (train), 4 (decode) and 5 (report) shared by the speech recipes. A recipe
# sources this file after its option defaults, defines stage_0 (its corpus) and stage_2 (its
# lang), and a `_setup` function that every stage calls first and that sets:
#
#   corpus manifest_prefix   stage-0 output: $corpus/manifests/<prefix>_{recordings,supervisions}_<split>.jsonl.gz
#   feats tokens lang exp    feature storage, stage-1 tokens, stage-2 lang dir, experiments
#   results_dir title        where stage 5 writes RESULTS.md/results.json/per.png, its title
#   num_units num_restarts restart_iters num_epochs lm_scales   (train/decode settings)
#   insertion_bonuses        optional: loop-topology bonuses per new token tuned on dev (default 0,1,2)
#   oracle_errors            optional: diagnostic token sets, reference boundaries with injected
#                            errors (prepare-tokens --oracle-errors, e.g. delete:0.15)
#   speaker_norm             optional: cmvn (default) or whiten, the features of the units
#                            (prepare-tokens --speaker-norm)
#   train_opts               optional: options every system's `uasr train` gets
#   run_systems              array of "name|tokens|extra train options" (tokens: oracle, unsup, frames;
#                            options "ctc: ..." train the supervised CTC baseline with `uasr train-ctc`)
#   word_lm                  optional: a word ARPA; stage 4 then also decodes words (WER)
#   report_extra report_notes  optional: extra JSON files for the report's context; a paragraph
#
# and the options feature, seed, nj, lm_order. Systems run --nj at a time, each logging to
# $exp/<system>.log; every step is skipped when its outputs exist (--force true redoes it).

stage_1() {
  _setup
  need $corpus/manifests/${manifest_prefix}_supervisions_test.jsonl.gz 0
  local outs=("$tokens/frames/test.pt") e errors=${oracle_errors:-}
  for e in ${errors//,/ }; do outs+=("$tokens/oracle_${e/:/}/test.pt"); done
  local settings="--feature $feature --num-units $num_units --seed $seed --speaker-norm ${speaker_norm:-cmvn}\
${errors:+ --oracle-errors $errors}"
  [ "$force" = true ] && rm -rf "$tokens" "$feats"
  same_settings "$tokens" tokens "$settings"
  skip_if_done "${outs[@]}" && return 0
  # shellcheck disable=SC2086
  _timed 1 uasr prepare-tokens --manifest-dir $corpus/manifests --manifest-prefix $manifest_prefix \
    --feat-dir $feats --out-dir $tokens --nj $nj $settings || die "stage 1 failed (see the message above)"
}

_shared_train_opts() {  # the recipe's train options every system starts from
  echo "--lm-order $lm_order --num-restarts $num_restarts --restart-iters $restart_iters \
--num-epochs $num_epochs --seed $seed ${train_opts:-}"
}

_train_one() {  # _train_one NAME TOKENS OPTS   (OPTS "ctc: ..." = the supervised CTC baseline)
  log "training $1"
  if [[ "$3" == ctc:* ]]; then  # trains on the frames' features and decodes dev/test itself
    # shellcheck disable=SC2086
    uasr train-ctc --feat-dir $feats --tokens-dir $tokens/$2 --lang-dir $lang --exp-dir $exp/$1 \
      --seed $seed ${3#ctc:} > "$exp/$1.log" 2>&1 || { log "training $1 failed; see $exp/$1.log"; return 1; }
    log "trained $1: $(grep -h PER "$exp/$1.log" | tr '\n' ' ')"
    return 0
  fi
  local opts
  opts=$(_override_opts "$(_shared_train_opts)" "$3")
  # shellcheck disable=SC2086
  uasr train --tokens-dir $tokens/$2 --lang-dir $lang --exp-dir $exp/$1 $opts > "$exp/$1.log" 2>&1 \
    || { log "training $1 failed; see $exp/$1.log"; return 1; }
  log "trained $1: $(tail -n 1 "$exp/$1.log" | sed 's/^.* INFO //')"
}

# _override_opts "BASE" "OVERRIDES": BASE without the --options that OVERRIDES sets again (and
# their values), then OVERRIDES; so the logged command (and RESULTS.md) names each option once.
_override_opts() {
  local -a base over out
  read -ra base <<< "$1"
  read -ra over <<< "$2"
  local i
  for ((i = 0; i < ${#base[@]}; i++)); do
    if [[ "${base[i]}" == --* && " ${over[*]} " == *" ${base[i]} "* ]]; then
      [[ $((i + 1)) -lt ${#base[@]} && "${base[i + 1]}" != --* ]] && i=$((i + 1))
      continue
    fi
    out+=("${base[i]}")
  done
  echo "${out[*]} ${over[*]}"
}

_train_all() {
  local entry name tok opts failed=0
  mkdir -p "$exp"
  for entry in "${run_systems[@]}"; do
    IFS='|' read -r name tok opts <<< "$entry"
    if skip_if_done "$exp/$name/train.json"; then continue; fi
    [ "$force" = true ] && rm -rf "$exp/$name"
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || failed=1; done
    if [[ "$opts" == *--init-from* ]]; then  # needs the system it starts from: let it finish
      local src=${opts#*--init-from }
      src=${src%% *}
      [[ "$src" == *.pt ]] && src=$(dirname "$src")
      while [ ! -f "$src/train.json" ] && [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
    fi
    _train_one "$name" "$tok" "$opts" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ $failed = 0 ] || die "some systems failed to train (see the logs named above)"
}

stage_3() {
  _setup
  need $tokens/frames/test.pt 1
  need $lang/lm.json 2
  local entry name tok
  for entry in "${run_systems[@]}"; do  # e.g. the error sets stage 1 builds for --systems all
    IFS='|' read -r name tok _ <<< "$entry"
    [ -e "$tokens/$tok/test.pt" ] || die "$tokens/$tok/test.pt (tokens of \
$name) is missing: run stage 1 with the same options (e.g. --systems) first"
  done
  local settings
  settings=$(_shared_train_opts)
  same_settings "$exp" train "$settings"
  _timed 3 _train_all
}

_decode_opts() {  # what stage 4 tunes on dev (the loop topology's insertion bonus included)
  echo "--lm-scales $lm_scales --insertion-bonuses ${insertion_bonuses:-0,1,2}"
}

_decode_one() {  # _decode_one NAME TOKENS
  # shellcheck disable=SC2046
  uasr decode --exp-dir $exp/$1 --tokens-dir $tokens/$2 --lang-dir $lang $(_decode_opts) > "$exp/$1.decode.log" 2>&1 \
    || { log "decoding $1 failed; see $exp/$1.decode.log"; return 1; }
  grep PER "$exp/$1.decode.log" >&2
  [ -n "${word_lm:-}" ] || return 0
  uasr decode-words --exp-dir $exp/$1 --tokens-dir $tokens/$2 --lang-dir $lang --word-lm $word_lm \
    --lm-scales "$lm_scales" > "$exp/$1.decode_words.log" 2>&1 \
    || { log "word decoding $1 failed; see $exp/$1.decode_words.log"; return 1; }
  grep WER "$exp/$1.decode_words.log" >&2
}

_decode_all() {
  local entry name tok opts failed=0
  for entry in "${run_systems[@]}"; do
    IFS='|' read -r name tok opts <<< "$entry"
    need "$exp/$name/train.json" 3
    [[ "$opts" == ctc:* ]] && continue  # train-ctc decoded dev/test already
    if skip_if_done "$exp/$name/decode.json" ${word_lm:+"$exp/$name/decode_words.json"}; then continue; fi
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || failed=1; done
    _decode_one "$name" "$tok" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ $failed = 0 ] || die "some systems failed to decode (see the logs named above)"
}

stage_4() {
  _setup
  local settings
  settings="$(_decode_opts)${word_lm:+ --word-lm $word_lm}"
  same_settings "$exp" decode "$settings"
  _timed 4 _decode_all
}

stage_5() {
  _setup
  local s names extra=()
  for s in 0 1 2 3 4; do
    [ -f "$exp/.seconds_stage_$s" ] && echo "{\"seconds\": $(cat "$exp/.seconds_stage_$s")}" > "$exp/stage_$s.json"
    [ -f "$exp/stage_$s.json" ] && extra+=("$exp/stage_$s.json")
  done
  [ -f "$tokens/unsup/segmentation.json" ] && extra+=("$tokens/unsup/segmentation.json")
  names=$(for e in "${run_systems[@]}"; do printf '%s,' "${e%%|*}"; done)
  # shellcheck disable=SC2086
  uasr report --exp-dir $exp --systems "${names%,}" --results-dir $results_dir --title "$title" \
    --extra-json $lang/lm.json "${extra[@]}" ${report_extra:-} --notes "${report_notes:-}" \
    || die "stage 5 failed (see the message above)"
  log "wrote $results_dir/RESULTS.md, results.json, per.png"
}
