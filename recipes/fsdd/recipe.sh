# Real speech, fully offline: FSDD recordings concatenated into digit strings under a digit
# bigram with a full-column-rank P_C, segment-level unsupervised training through synth's
# stages, and the isolated-digit control (N = 1, condition 2 fails). See recipes/fsdd/README.md.
#
#   ./run.sh --recipe fsdd [--stage 0 --stop-stage 5] [--size tiny|default] [--seed 1] [--force true]
#
# Data under recipes/fsdd/data/<what>_<size>/{strings,isolated}, systems under
# recipes/fsdd/exp/<size>/{strings,isolated}/<system>.
size=default
seed=1
nj=1
fsdd_dir=../shared/data/fsdd
test_speakers=nicolas,theo  # unseen: dev (takes 0-9) and test (takes 10-49)
feature=fbank
num_units=0          # k-means units over segments (0 = by size: tiny 16, else 64)
lm_order=3           # LM prior of training and decoding (restarts use the bigram)
num_restarts=0       # 0 = by size
stay_prob=0.85       # loop topology over unsupervised segments (~7 segments per digit)
work_dir=recipes/fsdd  # data/, exp/ and the default-size results go here (tests use a temp dir)
prepare_stop_stage=2
check_options() {  # called by run.sh once the options are parsed
  abs_path fsdd_dir work_dir
  one_of size tiny default
}
stage_names=(
  "corpus: FSDD digit strings (one speaker each, bigram digit LM, pauses) + isolated-digit control"
  "tokens: synth's prepare-tokens (fbank, per-speaker CMVN, oracle/unsup segments, k-means units)"
  "lang: digit symbol table + digit n-gram LMs (orders 1-3) from the disjoint LM text"
  "train: unsupervised EM (restarts chosen by training likelihood), LM-only floor, supervised ceiling"
  "decode: Viterbi, LM scale tuned on dev, digit error rate on the 2 unseen speakers"
  "report: RESULTS.md, results.json and der.png (strings vs isolated digits)"
)

conds=(strings isolated)

# Systems, trained for both conditions: name | tokens | extra train options
systems=(
  "r1_oracle-units_table_unsup|oracle|--units oracle"
  "r2_oracle-seg_lm-only|oracle|--supervision lm-only"
  "r2_oracle-seg_table_unsup|oracle|"
  "r2_oracle-seg_table_sup|oracle|--supervision sup"
  "r2_oracle-seg_hybrid_unsup_from-table|oracle|--emission hybrid --init-from EXPDIR/r2_oracle-seg_table_unsup --num-epochs 3"
  "r2_oracle-seg_hybrid_sup|oracle|--emission hybrid --supervision sup"
  "r2_oracle-seg_table_unsup_seed+1|oracle|--seed SEED1"  # other random restarts: the spread
  "r2_oracle-seg_table_unsup_seed+2|oracle|--seed SEED2"
  "r2_oracle-seg_gaussian_unsup|oracle|--emission gaussian"
  "r2_oracle-seg_gaussian_sup|oracle|--emission gaussian --supervision sup"
  "r3_unsup-seg_lm-only|unsup|--supervision lm-only --topology loop --stay-prob STAY"
  "r3_unsup-seg_table_unsup|unsup|--topology loop --stay-prob STAY"
  "r3_unsup-seg_table_sup|unsup|--supervision sup --topology loop --stay-prob STAY"
)
# --size tiny (CI) runs only these (every process start costs seconds)
_tiny_systems=" strings/r2_oracle-seg_lm-only strings/r2_oracle-seg_table_unsup strings/r2_oracle-seg_table_sup strings/r2_oracle-seg_hybrid_unsup_from-table isolated/r2_oracle-seg_table_unsup "

# Paths and size-dependent settings; called by every stage because options are parsed after
# this file is sourced.
_setup() {
  data=$work_dir/data
  corpus=$data/corpus_$size
  tokens=$data/tokens_$size
  feats=$data/${feature}_$size
  lang=$data/lang_$size
  exp=$work_dir/exp/$size
  if [ "$size" = tiny ]; then
    units=$num_units; [ "$units" = 0 ] && units=16
    restarts=$num_restarts; [ "$restarts" = 0 ] && restarts=2
    restart_iters=10; num_epochs=2; lm_scales="1,3"
  else
    units=$num_units; [ "$units" = 0 ] && units=64
    restarts=$num_restarts; [ "$restarts" = 0 ] && restarts=8
    restart_iters=30; num_epochs=5; lm_scales="0.5,1,2,3,5"
  fi
}

stage_0() {
  _setup
  [ -d "$fsdd_dir" ] || die "$fsdd_dir is missing: pass --fsdd-dir pointing at the Free Spoken Digit Dataset (recordings/{digit}_{speaker}_{take}.wav; git clone https://github.com/Jakobovski/free-spoken-digit-dataset)"
  skip_if_done $corpus/info.json && return 0
  _timed 0 uasr prepare-fsdd corpus --fsdd-dir "$fsdd_dir" --out-dir $corpus --size $size --seed $seed \
    --test-speakers $test_speakers || die "stage 0 failed (see the message above)"
}

_tokens_all() {
  local c
  for c in "${conds[@]}"; do
    if skip_if_done $tokens/$c/frames/test.pt; then continue; fi
    [ "$force" = true ] && rm -rf "$tokens/$c" "$feats/$c"
    log "tokens for $c"
    uasr prepare-tokens --manifest-dir $corpus/$c/manifests --feat-dir $feats/$c --out-dir $tokens/$c \
      --feature $feature --num-units $units --seed $seed --nj $nj || die "stage 1 ($c) failed"
  done
}

stage_1() {
  _setup
  need $corpus/info.json 0
  _timed 1 _tokens_all
}

_lang_all() {
  local c n
  for c in "${conds[@]}"; do
    if skip_if_done $lang/$c/lm.json; then continue; fi
    n=10; [ "$c" = isolated ] && n=1  # P_C over the positions an utterance has
    uasr prepare-fsdd lang --lm-text $corpus/$c/lm_text.txt --out-dir $lang/$c --orders 1,2,3 \
      --pc-positions $n || die "stage 2 ($c) failed"
  done
}

stage_2() {
  _setup
  need $corpus/info.json 0
  _timed 2 _lang_all
}

# _each CALLBACK: CALLBACK COND NAME TOKENS OPTS for every system of this size
_each() {
  local c entry name tok opts
  for c in "${conds[@]}"; do
    for entry in "${systems[@]}"; do
      IFS='|' read -r name tok opts <<< "$entry"
      [ "$size" = tiny ] && [[ "$_tiny_systems" != *" $c/$name "* ]] && continue
      opts=${opts//STAY/$stay_prob}
      opts=${opts//EXPDIR/$exp/$c}
      opts=${opts//SEED1/$((seed + 1))}
      "$1" "$c" "$name" "$tok" "${opts//SEED2/$((seed + 2))}"
    done
  done
}

_train_one() {
  local c=$1 name=$2 tok=$3 opts=$4 d=$exp/$1/$2
  if skip_if_done "$d/train.json"; then return 0; fi
  [ "$force" = true ] && rm -rf "$d"
  log "training $c/$name"
  # shellcheck disable=SC2086
  uasr train --tokens-dir $tokens/$c/$tok --lang-dir $lang/$c --exp-dir $d --lm-order $lm_order \
    --num-restarts $restarts --restart-iters $restart_iters --num-epochs $num_epochs --seed $seed $opts \
    || die "training $c/$name failed"
}

stage_3() {
  _setup
  need $tokens/isolated/frames/test.pt 1
  need $lang/isolated/lm.json 2
  _timed 3 _each _train_one
}

_decode_one() {
  local c=$1 name=$2 tok=$3 d=$exp/$1/$2
  need "$d/train.json" 3
  if skip_if_done "$d/decode.json"; then return 0; fi
  uasr decode --exp-dir $d --tokens-dir $tokens/$c/$tok --lang-dir $lang/$c --lm-scales "$lm_scales" \
    --insertion-bonuses 0,1,2 || die "decoding $c/$name failed"
}

stage_4() {
  _setup
  _timed 4 _each _decode_one
}

stage_5() {
  _setup
  local results_dir=$work_dir
  [ "$size" = tiny ] && results_dir=$exp  # CI-size runs never overwrite the committed results
  uasr fsdd-report --exp-dir $exp --corpus-dir $corpus --lang-dir $lang --tokens-dir $tokens \
    --results-dir $results_dir --title "recipes/fsdd, --size $size, seed $seed" \
    || die "stage 5 failed (see the message above)"
  log "wrote $results_dir/RESULTS.md, results.json, der.png"
}
