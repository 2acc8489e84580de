# Default recipe: an offline synthetic-speech corpus (Debian TTS voices speaking public-domain
# text), segment-level unsupervised training, decoding and the PER ladder (DESIGN.md §4).
#
#   ./run.sh --stage 0 --stop-stage 5 [--size tiny|default|large] [--seed 1] [--nj 2] [--force true]
#
# Data under recipes/synth/data/<what>_<size>, systems under recipes/synth/exp/<size>/<system>.
size=default       # tiny: the CI-sized run (~2 min); default ~13 min on 2 cores; large: more speech
seed=1
nj=2
voices=default      # flite + festival (one CMU pronunciation source); all: + espeak-ng accents; or engine:voice,...
feature=fbank
num_units=0          # k-means units over segments (0 = by size: tiny 64, else 128)
speaker_norm=cmvn    # units from per-speaker CMVN or whitened features (whiten: results/<size>_speaker-norm-whiten)
lm_order=3           # the LM prior of training and decoding (restarts use a bigram)
num_restarts=0       # 0 = by size
# loop topology over unsupervised segments: chosen among 0.05/0.1/0.2/0.5 by training likelihood
# on the default corpus (-4.440/-4.430/-4.421/-4.345 per token, test PER 90.1/87.9/83.4/85.3;
# a scratch build of the same tokens), not by PER
stay_prob=0.5
systems=auto         # auto: the core ladder (every rung once + baselines); all: every system below
prepare_stop_stage=2
check_options() {  # called by run.sh once the options are parsed
  one_of size tiny default large
  one_of speaker_norm cmvn whiten
  one_of systems auto all
}
stage_names=(
  "corpus: flite/festival voices speak KJV sentences (lhotse manifests + phone alignments)"
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
  # another voice set is another corpus: its own data, systems and results
  local tag=$size
  [ "$voices" = default ] || tag=${size}_voices-${voices//[^A-Za-z0-9]/-}
  data=$synth_dir/data
  corpus=$data/corpus_$tag
  manifest_prefix=synth
  feats=$data/${feature}_$tag
  tokens=$data/tokens_$tag
  lang=$data/lang_$tag
  exp=$synth_dir/exp/$tag
  results_dir=$synth_dir  # the committed results of the default run
  [ "$tag" = default ] || results_dir=$synth_dir/results/$tag
  [ "$systems" = auto ] || results_dir=$synth_dir/results/${tag}_systems-$systems  # + diagnostics
  [ "$speaker_norm" = cmvn ] || results_dir=$synth_dir/results/${tag}_speaker-norm-$speaker_norm
  # the diagnostic rows on reference boundaries with one kind of segmenter error each
  [ "$systems" = all ] && oracle_errors=jitter:2,delete:0.15,insert:0.18
  [ "$size" = tiny ] && results_dir=$exp  # CI-size runs never overwrite committed results
  title="recipes/synth, --size $size, --voices $voices, seed $seed"
  report_notes="Voices: $voices. Systems: $systems (\`--systems all\` adds the diagnostic rows:
restarts from the supervised model, 16 restarts, Gaussian and hybrid unsupervised emissions,
rung-3 variants incl. the hybrid started from the rung-3 table, the loop topology on oracle
segments, which separates the topology's effect from the segmenter's, the bounded loop
\`--max-stay 1\` (a phone spans at most two segments) with the table and the hybrid (8 random
restarts, from the supervised model, from the bounded table), and the reference boundaries with one
kind of segmenter error each: \`oracle_jitter2\` (every boundary moved by up to 2 frames),
\`oracle_delete0.15\` (15 % of the boundaries dropped), \`oracle_insert0.18\` (18 % of the
segments split)). \`_from-table\`: the hybrid
starts from the unsupervised table's posteriors on the training tokens (no labels).
The mismatched variant (\`--voices all\`: + espeak-ng accents, whose pronunciations are not
CMUdict's) writes recipes/synth/results/default_voices-all/; \`--size large\` (5 x the
training speech) writes recipes/synth/results/large/."
  [ "$num_units" = 0 ] && num_units=$(_by_size 64 128)
  [ "$num_restarts" = 0 ] && num_restarts=$(_by_size 2 4)
  restart_iters=$(_by_size 20 40)
  # EM converges slowly: on tiny oracle segments test PER 72.6 (3 epochs) -> 46.6 (15) -> 40.7
  # (15, annealed restarts) -> 37.2 (30); tiny keeps 3 epochs for the CI time budget
  num_epochs=$(_by_size 3 20)
  train_opts="--anneal-from 0.3"
  lm_scales="0.5,1,2"
  max_lm_sentences=$(_by_size 8000 0)
  local here=("${all_systems[@]//EXPDIR/$exp}")
  here=("${here[@]//CTC_EPOCHS/$(_by_size 2 8)}")  # tiny: a smoke test of the CTC row
  here=("${here[@]//STAY/$stay_prob}")
  # the hybrid started from the table's posteriors: test PER 12.7 / 10.0 / 9.4 / 9.8 after
  # 1 / 2 / 3 / 5 epochs on the default corpus (38.1 right after fitting the table)
  here=("${here[@]//HYB_EPOCHS/$(_by_size 1 3)}")
  run_systems=("${here[@]}")
  if [ "$systems" = auto ]; then  # every rung once + its baselines, within the time budget
    run_systems=()
    local e
    for e in "${here[@]}"; do
      case "${e%%|*}" in
        r1_oracle-units_table_unsup|r2_oracle-seg_lm-only|r2_oracle-seg_table_unsup|r2_oracle-seg_table_sup|r2_oracle-seg_hybrid_unsup_from-table|r3_unsup-seg_table_unsup_loop|r3_unsup-seg_lm-only_loop|r3_unsup-seg_table_sup_loop|r4_frames_table_unsup|r4_frames_ctc_sup)
          run_systems+=("$e") ;;
        r2_oracle-seg_hybrid_sup)  # the neural ceiling of rung 2 (~1 min)
          [ "$size" = tiny ] || run_systems+=("$e") ;;
      esac
    done
  fi
}

_by_size() {  # _by_size TINY_VALUE OTHER_VALUE
  if [ "$size" = tiny ]; then echo "$1"; else echo "$2"; fi
}

# Systems of the ladder: name | tokens dir | extra train options. Stage 3 trains --nj of them
# at a time in this order, so the longest come first. `--systems auto` (the default) runs the
# core ladder; `--systems all` adds the diagnostics (restarts from the supervised model, 16
# restarts, Gaussian and hybrid unsupervised emissions, segment-level rung-3 variants, and the
# loop topology on oracle segments, which separates its effect from the segmenter's). A system
# with --init-from starts once the system it names has finished.
all_systems=(
  "r4_frames_ctc_sup|frames|ctc: --num-epochs CTC_EPOCHS"
  "r3_unsup-seg_table_unsup_loop|unsup|--topology loop --stay-prob STAY"
  "r2_oracle-seg_table_unsup|oracle|"
  "r1_oracle-units_table_unsup|oracle|--units oracle"
  "r2_oracle-seg_hybrid_unsup_from-table|oracle|--emission hybrid --init-from EXPDIR/r2_oracle-seg_table_unsup --num-epochs HYB_EPOCHS"
  "r2_oracle-seg_hybrid_sup|oracle|--emission hybrid --supervision sup"
  "r4_frames_table_unsup|frames|--topology loop --stay-prob 0.85 --lm-order 2 --num-epochs 3 --num-restarts 2 --restart-iters 20 --restart-utts 800"
  "r2_oracle-seg_table_sup|oracle|--supervision sup"
  "r2_oracle-seg_lm-only|oracle|--supervision lm-only"
  "r3_unsup-seg_lm-only_loop|unsup|--supervision lm-only --topology loop --stay-prob STAY"
  "r3_unsup-seg_table_sup_loop|unsup|--supervision sup --topology loop --stay-prob STAY"
  "r2_oracle-seg_table_unsup_from-sup|oracle|--init-from EXPDIR/r2_oracle-seg_table_sup/epoch-0.pt"
  "r2_oracle-seg_table_unsup_16r|oracle|--num-restarts 16 --restart-iters 30 --restart-utts 600"
  "r2_oracle-seg_gaussian_unsup|oracle|--emission gaussian"
  "r2_oracle-seg_gaussian_sup|oracle|--emission gaussian --supervision sup"
  "r2_oracle-seg_hybrid_unsup|oracle|--emission hybrid --num-restarts 2 --restart-iters 20 --num-epochs 3"
  "r3_unsup-seg_lm-only|unsup|--supervision lm-only"
  "r3_unsup-seg_table_unsup|unsup|"
  "r3_unsup-seg_table_unsup_loop_from-sup|unsup|--topology loop --stay-prob STAY --init-from EXPDIR/r3_unsup-seg_table_sup_loop/epoch-0.pt"
  "r2_oracle-seg_table_unsup_loop|oracle|--topology loop --stay-prob STAY"
  "r2_oracle-seg_table_unsup_loop-stay0.1|oracle|--topology loop --stay-prob 0.1"
  "r3_unsup-seg_table_sup|unsup|--supervision sup"
  "r3_unsup-seg_hybrid_unsup_loop_from-table|unsup|--emission hybrid --topology loop --stay-prob STAY --init-from EXPDIR/r3_unsup-seg_table_unsup_loop --num-epochs HYB_EPOCHS"
  "r4_frames_lm-only|frames|--supervision lm-only --topology loop --stay-prob 0.85 --lm-order 2"
  "r4_frames_table_sup|frames|--supervision sup --topology loop --stay-prob 0.85 --lm-order 2"
  # the bounded loop (a label spans at most 2 segments; stay 0.2 chosen among 0.05/0.1/0.2/0.5
  # by training likelihood on these tokens: -4.4489/-4.4396/-4.4396/-4.4473 per token)
  "r3_unsup-seg_table_unsup_loop-max1|unsup|--topology loop --stay-prob 0.2 --max-stay 1"
  "r3_unsup-seg_table_sup_loop-max1|unsup|--supervision sup --topology loop --stay-prob 0.2 --max-stay 1"
  "r3_unsup-seg_lm-only_loop-max1|unsup|--supervision lm-only --topology loop --stay-prob 0.2 --max-stay 1"
  "r3_unsup-seg_table_unsup_loop-max1_from-sup|unsup|--topology loop --stay-prob 0.2 --max-stay 1 --init-from EXPDIR/r3_unsup-seg_table_sup_loop-max1/epoch-0.pt"
  "r2_oracle-seg_table_unsup_loop-max1|oracle|--topology loop --stay-prob 0.2 --max-stay 1"
  # the hybrid under the bounded loop: label-free starts end at the floor, the supervised start
  # near its ceiling, and after 5 epochs the floor solution has the higher likelihood (README.md here)
  "r3_unsup-seg_hybrid_unsup_loop-max1|unsup|--emission hybrid --topology loop --stay-prob 0.2 --max-stay 1 --num-restarts 8 --restart-iters 20 --restart-utts 600 --num-epochs HYB_EPOCHS"
  "r3_unsup-seg_hybrid_sup_loop-max1|unsup|--emission hybrid --supervision sup --topology loop --stay-prob 0.2 --max-stay 1"
  "r3_unsup-seg_hybrid_unsup_loop-max1_from-sup|unsup|--emission hybrid --topology loop --stay-prob 0.2 --max-stay 1 --init-from EXPDIR/r3_unsup-seg_hybrid_sup_loop-max1/epoch-0.pt --num-epochs HYB_EPOCHS"
  "r3_unsup-seg_hybrid_unsup_loop-max1_from-table|unsup|--emission hybrid --topology loop --stay-prob 0.2 --max-stay 1 --init-from EXPDIR/r3_unsup-seg_table_unsup_loop-max1 --num-epochs HYB_EPOCHS"
  # reference boundaries with one kind of segmenter error (prepare-tokens --oracle-errors)
  "r2_oracle-jitter2_table_unsup|oracle_jitter2|"
  "r2_oracle-jitter2_table_sup|oracle_jitter2|--supervision sup"
  "r2_oracle-delete0.15_table_unsup|oracle_delete0.15|"
  "r2_oracle-delete0.15_table_sup|oracle_delete0.15|--supervision sup"
  "r2_oracle-insert0.18_table_unsup_loop-max1|oracle_insert0.18|--topology loop --stay-prob 0.2 --max-stay 1"
  "r2_oracle-insert0.18_table_sup_loop-max1|oracle_insert0.18|--supervision sup --topology loop --stay-prob 0.2 --max-stay 1"
)

stage_0() {
  _setup
  local cmd pkg  # the engines and voice packages --voices needs (flite, festival + voices, espeak-ng)
  while read -r cmd pkg; do ensure_apt "$cmd" "$pkg"; done < <(uasr prepare-synth --voices "$voices" --apt-packages)
  ensure_apt bible bible-kjv
  [ -f /usr/lib/bible.data ] || ensure_apt __no_such_cmd__ bible-kjv-text
  skip_if_done $corpus/lm_text.txt $corpus/manifests/synth_supervisions_test.jsonl.gz && return 0
  [ "$force" = true ] && rm -rf "$corpus"
  _timed 0 uasr prepare-synth --out-dir $corpus --size $size --seed $seed --nj $nj --voices $voices \
    || die "stage 0 failed (see the message above)"
}

stage_2() {
  _setup
  ensure_apt t2p flite
  need $corpus/lm_text.txt 0
  local settings="--orders 2,$lm_order --max-sentences $max_lm_sentences"
  same_settings $lang lang "$settings"
  skip_if_done $lang/lm.json && return 0
  _timed 2 uasr prepare-lang --lm-text $corpus/lm_text.txt --out-dir $lang \
    --orders "2,$lm_order" --max-sentences $max_lm_sentences \
    || die "stage 2 failed (see the message above)"
}

source local/asr_stages.sh  # stages 1, 3, 4, 5
