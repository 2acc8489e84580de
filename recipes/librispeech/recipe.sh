# LibriSpeech (mini_librispeech by default): read audiobooks, no time-aligned phones. Phone
# references and the LM text go through the lexicon (LibriSpeech's own when provided, else
# CMUdict) + flite G2P; decoding gives PER (phones) and WER (lexicon + word n-gram).
#
#   ./run.sh --recipe librispeech [--corpus-dir DIR] [--download true] [--stage 0 --stop-stage 5]
#
# Without network, put the data under --corpus-dir as LibriSpeech/<part>/<spk>/<chapter>/*.flac
# + *.trans.txt, and the LM text as librispeech-lm-norm.txt(.gz) (or pass --lm-text FILE).
corpus_dir=download/librispeech
download=false
train_part=train-clean-5
dev_part=dev-clean-2
test_part=test-clean
lm_text=none          # none: <corpus-dir>/librispeech-lm-norm.txt(.gz); or any text file
max_lm_sentences=200000
seed=1
nj=2
feature=fbank
num_units=128
lm_order=3
word_lm_order=2
num_restarts=8
restart_iters=20
num_epochs=5
stay_prob=0.1
work_dir=recipes/librispeech
prepare_stop_stage=2
bool_options=(download)
check_options() {  # called by run.sh once the options are parsed
  abs_path corpus_dir work_dir
  [ "$lm_text" = none ] || abs_path lm_text
}
stage_names=(
  "corpus: lhotse manifests of the train/dev/test parts, the LM text (overlaps with transcripts removed)"
  "tokens: fbank, per-speaker CMVN, unsupervised segments, k-means units (no phone alignments)"
  "lang: lexicon (LibriSpeech's or CMUdict) + G2P, phone n-gram LMs, word n-gram LM"
  "train: unsupervised EM, LM-only floor, supervised ceiling (EM on transcript graphs)"
  "decode: phone Viterbi (PER) and word decoding (WER), LM scale tuned on dev"
  "report: RESULTS.md, results.json and per.png"
)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

_setup() {
  corpus=$work_dir/data/corpus
  manifest_prefix=librispeech
  feats=$work_dir/data/$feature
  tokens=$work_dir/data/tokens
  lang=$work_dir/data/lang
  exp=$work_dir/exp
  results_dir=$exp
  [ "$work_dir" = recipes/librispeech ] && results_dir=$work_dir
  title="recipes/librispeech: train $train_part, dev $dev_part, test $test_part"
  lm_scales="0.5,1,2,3"
  word_lm=$lang/lm_words_${word_lm_order}gram.arpa
  run_systems=(
    "r3_unsup-seg_lm-only|unsup|--supervision lm-only --topology loop --stay-prob $stay_prob"
    "r3_unsup-seg_table_unsup|unsup|--topology loop --stay-prob $stay_prob"
    "r3_unsup-seg_table_sup|unsup|--supervision sup --topology loop --stay-prob $stay_prob"
  )
}

stage_0() {
  _setup
  skip_if_done $corpus/info.json && return 0
  local opts=()
  [ "$force" = true ] && opts+=(--force)
  [ "$download" = true ] && opts+=(--download)
  _timed 0 uasr prepare-librispeech --corpus-dir "$corpus_dir" --out-dir $corpus --train-part $train_part \
    --dev-part $dev_part --test-part $test_part --lm-text "$lm_text" --max-lm-sentences $max_lm_sentences \
    "${opts[@]}" || die "stage 0 failed (see the message above)"
}

stage_2() {
  _setup
  ensure_apt t2p flite
  need $corpus/info.json 0
  local settings="--orders 2,$lm_order --word-orders $word_lm_order"
  same_settings $lang lang "$settings"
  skip_if_done $lang/lm.json && return 0
  local lex=()
  [ -f $corpus/lexicon_extra.txt ] && lex=(--lexicon $corpus/lexicon_extra.txt)
  _timed 2 uasr prepare-lang --lm-text $corpus/lm_text.txt "${lex[@]}" --manifest-dir $corpus/manifests \
    --manifest-prefix librispeech --out-dir $lang --orders "2,$lm_order" --word-orders $word_lm_order \
    || die "stage 2 failed (see the message above)"
}

source local/asr_stages.sh  # stages 1, 3, 4, 5
