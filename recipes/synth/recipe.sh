# Default recipe: an offline synthetic-speech corpus (Debian TTS voices speaking public-domain
# text), segment-level unsupervised training, decoding and the PER ladder (DESIGN.md §4).
#
#   ./run.sh --stage 0 --stop-stage 5 [--size tiny|default|large] [--seed 1] [--nj 2] [--force true]
size=tiny
seed=1
nj=2
voices=kal16,awb,rms,slt
num_units=0          # k-means units over segments (0 = by size: tiny 64, else 128)
lm_order=3
prepare_stop_stage=2
stage_names=("corpus: flite voices speak KJV sentences (lhotse manifests + phone alignments)")

synth_dir=recipes/synth
data=$synth_dir/data
exp=$synth_dir/exp

# skip_if_done OUTPUT...: true when every output exists and --force is not set
skip_if_done() {
  [ "$force" = true ] && return 1
  local f
  for f in "$@"; do [ -e "$f" ] || return 1; done
  log "outputs exist ($*); skipping (--force true redoes)"
}

stage_0() {
  ensure_apt flite flite
  ensure_apt bible bible-kjv
  [ -f /usr/lib/bible.data ] || ensure_apt __no_such_cmd__ bible-kjv-text
  local corpus=$data/corpus_$size
  skip_if_done $corpus/lm_text.txt $corpus/manifests/synth_supervisions_test.jsonl.gz && return 0
  [ "$force" = true ] && rm -rf "$corpus"
  uasr prepare-synth --out-dir $corpus --size $size --seed $seed --nj $nj --voices $voices \
    || die "stage 0 failed (see the message above)"
}
