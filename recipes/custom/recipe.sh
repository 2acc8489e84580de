# Any corpus: Kaldi-style data dirs (wav.scp, text, utt2spk[, segments]) or TSV files (audio
# path, transcript[, speaker]) for train/dev/test, plus an unpaired text file for the LM. Units:
# phones from CMUdict + G2P (English), phones from your lexicon (any language), or graphemes.
# See README.md "Adapting to a new corpus".
#
#   ./run.sh --recipe custom --train DIR|TSV --dev DIR|TSV --test DIR|TSV --lm-text FILE \
#     [--units phones|graphemes] [--lexicon FILE] [--base-lexicon cmudict|none] [--normalize english|none]
train=
dev=
test=
lm_text=
units=phones          # phones | graphemes
lexicon=              # word unit unit ... (takes precedence over the base lexicon)
base_lexicon=cmudict  # cmudict | none (non-English: your --lexicon only, or --units graphemes)
normalize=english     # english | none (whitespace only: keeps case, punctuation, any script)
word_decode=false     # true: also decode words (lexicon + word bigram) and report WER
seed=1
nj=2
feature=fbank
num_units=64
lm_order=3
num_restarts=4
restart_iters=20
num_epochs=3
stay_prob=0.1
work_dir=exp/custom   # data/ and exp/ of this corpus
prepare_stop_stage=2
bool_options=(word_decode)
check_options() {  # called by run.sh once the options are parsed
  abs_path train dev test lm_text lexicon work_dir
  one_of units phones graphemes
  one_of base_lexicon cmudict none
  one_of normalize english none
}
stage_names=(
  "corpus: lhotse manifests from the Kaldi dirs / TSV files (validated), normalised LM text"
  "tokens: fbank, per-speaker CMVN, unsupervised segments, k-means units"
  "lang: units of the LM text and transcripts (lexicon + G2P, or graphemes), unit n-gram LMs"
  "train: unsupervised EM, LM-only floor, supervised ceiling when train has transcripts"
  "decode: Viterbi (and words with --word-decode true), LM scale tuned on dev"
  "report: RESULTS.md, results.json and per.png"
)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

_setup() {
  corpus=$work_dir/data/corpus
  manifest_prefix=custom
  feats=$work_dir/data/$feature
  tokens=$work_dir/data/tokens
  lang=$work_dir/data/lang
  exp=$work_dir/exp
  results_dir=$work_dir
  title="recipes/custom: ${train:-$work_dir} (units: $units)"
  lm_scales="0.5,1,2,3"
  word_lm=
  [ "$word_decode" = true ] && word_lm=$lang/lm_words_2gram.arpa
  run_systems=(
    "r3_unsup-seg_lm-only|unsup|--supervision lm-only --topology loop --stay-prob $stay_prob"
    "r3_unsup-seg_table_unsup|unsup|--topology loop --stay-prob $stay_prob"
  )
  if [ -f $corpus/info.json ] && _train_transcribed; then
    run_systems+=("r3_unsup-seg_table_sup|unsup|--supervision sup --topology loop --stay-prob $stay_prob")
  fi
}

_train_transcribed() {  # every train utterance has a transcript (the supervised ceiling needs them)
  python -c "import json,sys; t=json.load(open(sys.argv[1]))['splits']['train']; sys.exit(t['transcribed_utterances'] < t['utterances'])" \
    $corpus/info.json
}

stage_0() {
  _setup
  [ -n "$train" ] && [ -n "$dev" ] && [ -n "$test" ] && [ -n "$lm_text" ] \
    || die "pass --train, --dev, --test (Kaldi data dir or TSV each) and --lm-text FILE (see README.md, 'Adapting to a new corpus')"
  skip_if_done $corpus/info.json && return 0
  local opts=()
  [ "$force" = true ] && opts+=(--force)
  _timed 0 uasr prepare-custom --train "$train" --dev "$dev" --test "$test" --lm-text "$lm_text" \
    --out-dir $corpus --normalize $normalize --sample-rate 16000 "${opts[@]}" \
    || die "stage 0 failed (see the message above)"
}

stage_2() {
  _setup
  [ "$units" = phones ] && [ "$base_lexicon" = cmudict ] && ensure_apt t2p flite
  need $corpus/info.json 0
  local settings="--units $units --base-lexicon $base_lexicon --normalize $normalize --orders 2,$lm_order${lexicon:+ --lexicon $lexicon} --word-decode $word_decode"
  same_settings $lang lang "$settings"
  skip_if_done $lang/lm.json && return 0
  local opts=()
  [ -n "$lexicon" ] && opts+=(--lexicon "$lexicon")
  [ "$word_decode" = true ] && opts+=(--word-orders 2)
  _timed 2 uasr prepare-lang --lm-text $corpus/lm_text.txt --units $units --base-lexicon $base_lexicon \
    --normalize $normalize --manifest-dir $corpus/manifests --manifest-prefix custom --out-dir $lang \
    --orders "2,$lm_order" "${opts[@]}" || die "stage 2 failed (see the message above)"
}

source local/asr_stages.sh  # stages 1, 3, 4, 5
