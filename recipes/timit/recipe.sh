# TIMIT: read speech with time-aligned phones; Kaldi's splits (core test: 24 speakers, 192
# utterances; dev: 50 speakers, 400 utterances; SA sentences excluded), 61 -> 39 phone folding.
#
#   ./run.sh --recipe timit --timit-dir /data/TIMIT [--lm-text matched|FILE] [--stage 0 --stop-stage 5]
#
# --lm-text matched: the phone LM is estimated on the TIMIT train phone transcripts (wav2vec-U's
# matched setting); FILE: on an external word text phonemized with CMUdict + G2P (unmatched).
# Data under $work_dir/data, systems under $work_dir/exp (tests pass a temporary --work-dir).
timit_dir=
lm_text=matched
expected_counts=default  # the Kaldi counts stage 0 checks; none, or a JSON file of counts
seed=1
nj=2
feature=fbank
num_units=128        # k-means units over segments
lm_order=3           # LM prior of training and decoding (restarts use the bigram)
num_restarts=8
restart_iters=20
num_epochs=5
stay_prob=0.1        # loop topology over unsupervised segments
work_dir=recipes/timit
prepare_stop_stage=2
check_options() {  # called by run.sh once the options are parsed
  abs_path timit_dir work_dir
  [ "$lm_text" = matched ] || abs_path lm_text
  case "$expected_counts" in default|none) ;; *) abs_path expected_counts ;; esac
}
stage_names=(
  "corpus: lhotse manifests with Kaldi's TIMIT splits (counts checked), folded phone alignments"
  "tokens: fbank, per-speaker CMVN, TIMIT-boundary and unsupervised segments, k-means units"
  "lang: TIMIT-39 phone n-gram LMs (matched: train transcripts; unmatched: phonemized text)"
  "train: unsupervised EM (restarts chosen by training likelihood), LM-only floor, supervised ceiling"
  "decode: Viterbi, LM scale tuned on core-dev, PER on core-test"
  "report: RESULTS.md, results.json and per.png"
)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

_setup() {
  corpus=$work_dir/data/corpus
  manifest_prefix=timit
  feats=$work_dir/data/$feature
  tokens=$work_dir/data/tokens
  lang=$work_dir/data/lang_$([ "$lm_text" = matched ] && echo matched || echo unmatched)
  exp=$work_dir/exp/$(basename "$lang")
  results_dir=$exp  # one table per LM setting
  title="recipes/timit, LM text: $lm_text"
  lm_scales="0.5,1,2,3"
  run_systems=(
    "r2_timit-seg_lm-only|oracle|--supervision lm-only"
    "r2_timit-seg_table_unsup|oracle|"
    "r2_timit-seg_table_sup|oracle|--supervision sup"
    "r2_timit-seg_hybrid_unsup_from-table|oracle|--emission hybrid --init-from $exp/r2_timit-seg_table_unsup --num-epochs 3"
    "r3_unsup-seg_lm-only|unsup|--supervision lm-only --topology loop --stay-prob $stay_prob"
    "r3_unsup-seg_table_unsup|unsup|--topology loop --stay-prob $stay_prob"
    "r3_unsup-seg_table_sup|unsup|--supervision sup --topology loop --stay-prob $stay_prob"
  )
}

stage_0() {
  _setup
  [ -n "$timit_dir" ] || die "pass --timit-dir DIR (the LDC TIMIT copy: TRAIN/DR1/FCJF0/SA1.WAV with .PHN/.WRD/.TXT; lower case also works)"
  local force_opt=()  # prepare-timit skips work itself when its outputs match these options
  [ "$force" = true ] && force_opt=(--force)
  _timed 0 uasr prepare-timit --timit-dir "$timit_dir" --out-dir $corpus --lm-text "$lm_text" \
    --expected-counts "$expected_counts" "${force_opt[@]}" || die "stage 0 failed (see the message above)"
}

stage_2() {
  _setup
  need $corpus/info.json 0
  local settings="--lm-text $lm_text --orders 2,$lm_order"
  same_settings $lang lang "$settings"
  skip_if_done $lang/lm.json && return 0
  if [ "$lm_text" = matched ]; then
    _timed 2 uasr prepare-lang --units given --lm-units $corpus/lm_text_phones.txt --symbols timit39 \
      --out-dir $lang --orders "2,$lm_order" || die "stage 2 failed (see the message above)"
  else
    ensure_apt t2p flite
    _timed 2 uasr prepare-lang --lm-text $corpus/lm_text.txt --symbols timit39 \
      --out-dir $lang --orders "2,$lm_order" || die "stage 2 failed (see the message above)"
  fi
}

source local/asr_stages.sh  # stages 1, 3, 4, 5
