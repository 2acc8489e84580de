# Default recipe: an offline synthetic-speech corpus (Debian TTS voices speaking public-domain
# text), segment-level unsupervised training, decoding and the PER ladder (DESIGN.md §4).
#
#   ./run.sh --stage 0 --stop-stage 5 [--size tiny|default|large] [--seed 1] [--nj 2] [--force true]
#
# Data under recipes/synth/data/<what>_<size>, systems under recipes/synth/exp/<size>/<system>.
size=default       # tiny: the CI-sized run (~5 min); large: more speech
seed=1
nj=2
voices=kal16,awb,rms,slt
feature=fbank
num_units=0          # k-means units over segments (0 = by size: tiny 64, else 128)
lm_order=3           # the LM prior of training and decoding (restarts use a bigram)
num_restarts=0       # 0 = by size
systems=auto         # auto: the core ladder (every rung once + baselines); all: every system below
prepare_stop_stage=2
stage_names=(
  "corpus: flite voices speak KJV sentences (lhotse manifests + phone alignments)"
  "features (lhotse fbank, per-speaker CMVN), segments (oracle/unsupervised), k-means units"
  "lang: phonemize the disjoint LM text (CMUdict + flite G2P), phone n-gram LMs (ARPA)"
  "train: unsupervised EM through the graph engine + LM-only floor + supervised ceiling"
  "decode: Viterbi, LM scale tuned on dev, PER on unseen test speakers (kaldialign)"
  "report: RESULTS.md, results.json and per.png (the PER ladder)"
)

synth_dir=recipes/synth
# Small shared machines: one thread per process (the stages parallelise with --nj processes).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Size-dependent paths and settings; called by every stage (options are parsed after sourcing).
_setup() {
  data=$synth_dir/data
  corpus=$data/corpus_$size
  tokens=$data/tokens_$size
  lang=$data/lang_$size
  exp=$synth_dir/exp/$size
  [ "$num_units" = 0 ] && num_units=$(_by_size 64 128)
  [ "$num_restarts" = 0 ] && num_restarts=4
  restart_iters=20
  num_epochs=3
  lm_scales="0.5,1,2"
  max_lm_sentences=$(_by_size 8000 0)
  run_systems=("${all_systems[@]}")
  if [ "$systems" = auto ]; then  # every rung once + its baselines, within the time budget
    run_systems=()
    local e
    for e in "${all_systems[@]}"; do
      case "${e%%|*}" in
        r1_oracle-units_table_unsup|r2_oracle-seg_lm-only|r2_oracle-seg_table_unsup|r2_oracle-seg_table_sup|r3_unsup-seg_table_unsup_loop|r3_unsup-seg_lm-only_loop|r4_frames_table_unsup)
          run_systems+=("$e") ;;
        r2_oracle-seg_table_unsup_from-sup|r2_oracle-seg_table_unsup_16r)
          [ "$size" = tiny ] || run_systems+=("$e") ;;
      esac
    done
  fi
}

_by_size() {  # _by_size TINY_VALUE OTHER_VALUE
  if [ "$size" = tiny ]; then echo "$1"; else echo "$2"; fi
}

# Systems of the ladder: name | tokens dir | extra train options.
all_systems=(
  "r1_oracle-units_table_unsup|oracle|--units oracle"
  "r2_oracle-seg_lm-only|oracle|--supervision lm-only"
  "r2_oracle-seg_table_unsup|oracle|"
  "r2_oracle-seg_table_sup|oracle|--supervision sup"
  "r2_oracle-seg_table_unsup_from-sup|oracle|--init-from $synth_dir/exp/SIZE/r2_oracle-seg_table_sup/epoch-0.pt"
  "r2_oracle-seg_table_unsup_16r|oracle|--num-restarts 16 --restart-iters 30 --restart-utts 600 --num-epochs 5"
  "r2_oracle-seg_gaussian_unsup|oracle|--emission gaussian"
  "r2_oracle-seg_gaussian_sup|oracle|--emission gaussian --supervision sup"
  "r3_unsup-seg_lm-only|unsup|--supervision lm-only"
  "r3_unsup-seg_table_unsup|unsup|"
  "r3_unsup-seg_table_sup|unsup|--supervision sup"
  "r3_unsup-seg_table_unsup_loop|unsup|--topology loop --stay-prob 0.1"
  "r3_unsup-seg_lm-only_loop|unsup|--supervision lm-only --topology loop --stay-prob 0.1"
  "r4_frames_lm-only|frames|--supervision lm-only --topology loop --stay-prob 0.85 --lm-order 2"
  "r4_frames_table_unsup|frames|--topology loop --stay-prob 0.85 --lm-order 2"
  "r4_frames_table_sup|frames|--supervision sup --topology loop --stay-prob 0.85 --lm-order 2"
)

stage_0() {
  _setup
  ensure_apt flite flite
  ensure_apt bible bible-kjv
  [ -f /usr/lib/bible.data ] || ensure_apt __no_such_cmd__ bible-kjv-text
  skip_if_done $corpus/lm_text.txt $corpus/manifests/synth_supervisions_test.jsonl.gz && return 0
  [ "$force" = true ] && rm -rf "$corpus"
  _timed 0 uasr prepare-synth --out-dir $corpus --size $size --seed $seed --nj $nj --voices $voices \
    || die "stage 0 failed (see the message above)"
}

stage_1() {
  _setup
  need $corpus/manifests/synth_supervisions_test.jsonl.gz 0
  skip_if_done $tokens/frames/test.pt && return 0
  [ "$force" = true ] && rm -rf "$tokens" "$data/${feature}_$size"
  _timed 1 uasr prepare-tokens --manifest-dir $corpus/manifests --feat-dir $data/${feature}_$size \
    --out-dir $tokens --feature $feature --num-units $num_units --seed $seed --nj $nj \
    || die "stage 1 failed (see the message above)"
}

stage_2() {
  _setup
  ensure_apt t2p flite
  need $corpus/lm_text.txt 0
  skip_if_done $lang/lm.json && return 0
  _timed 2 uasr prepare-lang --lm-text $corpus/lm_text.txt --out-dir $lang \
    --orders "2,$lm_order" --max-sentences $max_lm_sentences \
    || die "stage 2 failed (see the message above)"
}

_train_one() {  # _train_one NAME TOKENS OPTS
  log "training $1"
  # shellcheck disable=SC2086
  uasr train --tokens-dir $tokens/$2 --lang-dir $lang --exp-dir $exp/$1 \
    --lm-order $lm_order --num-restarts $num_restarts --restart-iters $restart_iters \
    --num-epochs $num_epochs --seed $seed $3 > "$exp/$1.log" 2>&1 \
    || { log "training $1 failed; see $exp/$1.log"; return 1; }
  log "trained $1: $(tail -n 1 "$exp/$1.log")"
}

_train_all() {  # systems run --nj at a time; each logs to exp/<size>/<system>.log
  local entry name tok opts failed=0
  mkdir -p "$exp"
  for entry in "${run_systems[@]}"; do
    IFS='|' read -r name tok opts <<< "$entry"
    if skip_if_done "$exp/$name/train.json"; then continue; fi
    [ "$force" = true ] && rm -rf "$exp/$name"
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || failed=1; done
    if [[ "$opts" == *--init-from* ]]; then  # needs the system it starts from: let it finish
      while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
    fi
    _train_one "$name" "$tok" "${opts//SIZE/$size}" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ $failed = 0 ] || die "some systems failed to train (see the logs named above)"
}

stage_3() {
  _setup
  need $tokens/frames/test.pt 1
  need $lang/lm.json 2
  _timed 3 _train_all
}

_decode_one() {  # _decode_one NAME TOKENS
  uasr decode --exp-dir $exp/$1 --tokens-dir $tokens/$2 --lang-dir $lang \
    --lm-scales "$lm_scales" > "$exp/$1.decode.log" 2>&1 \
    || { log "decoding $1 failed; see $exp/$1.decode.log"; return 1; }
  grep PER "$exp/$1.decode.log" >&2
}

_decode_all() {  # --nj systems at a time
  local entry name tok opts failed=0
  for entry in "${run_systems[@]}"; do
    IFS='|' read -r name tok opts <<< "$entry"
    need "$exp/$name/train.json" 3
    if skip_if_done "$exp/$name/decode.json"; then continue; fi
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || failed=1; done
    _decode_one "$name" "$tok" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ $failed = 0 ] || die "some systems failed to decode (see the logs named above)"
}

stage_4() {
  _setup
  _timed 4 _decode_all
}

stage_5() {
  _setup
  local results_dir=$synth_dir
  [ "$size" = tiny ] && results_dir=$exp  # CI-size runs never overwrite the committed results
  local s
  for s in 0 1 2 3 4; do
    [ -f "$exp/.seconds_stage_$s" ] && echo "{\"seconds\": $(cat "$exp/.seconds_stage_$s")}" > "$exp/stage_$s.json"
  done
  local names
  names=$(for e in "${run_systems[@]}"; do printf '%s,' "${e%%|*}"; done)
  uasr report --exp-dir $exp --systems "${names%,}" --results-dir $results_dir --title "recipes/synth, --size $size, seed $seed" \
    --extra-json $lang/lm.json $tokens/unsup/segmentation.json $exp/stage_{0,1,2,3,4}.json \
    || die "stage 5 failed (see the message above)"
  log "wrote $results_dir/RESULTS.md, results.json, per.png"
}
