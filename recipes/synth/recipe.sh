# Default recipe: an offline synthetic-speech corpus (Debian TTS voices speaking public-domain
# text), segment-level unsupervised training, decoding and the PER ladder (DESIGN.md §4).
# Stages are added as they land; run.sh lists the ones that exist.
size=tiny
prepare_stop_stage=2
stage_names=()
