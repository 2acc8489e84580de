# The paper's simulation (arXiv:2603.02285, |X|=4, |C|=3, N=3): Theorem 1 and its Pinsker form on
# random instances, necessity controls, a learning check through uasr.graph, and sigma_min(P_C)
# of phone LMs on real text (KJV). See recipes/simulation/README.md.
#
#   ./run.sh --recipe simulation [--stage 0 --stop-stage 4] [--trials 100000] [--seed 0] [--force true]
trials=100000
seed=0
learn_sizes="100 1000 10000"
learn_steps=300
learn_restarts=2
ngram_orders="2 3"
pc_lengths="5 10 20 50 100"
exp_dir=exp/simulation
out_dir=recipes/simulation
check_options() {  # called by run.sh once the options are parsed
  abs_path exp_dir out_dir
}
stage_names=(
  "bound: random trials against Theorem 1 and the Pinsker corollary"
  "controls: necessity constructions (rank-deficient P_C, non-factorised emission)"
  "learn: train a table emission through uasr.graph.total_score for several S"
  "realtext: sigma_min(P_C), ||P_C^+||_1 of phone LMs on the KJV Bible"
  "report: figures, RESULTS.md, results.json"
)

_sim() {  # _sim STEP ARGS...: one step of uasr simulate (it skips itself when its result exists)
  local f=()
  [ "$force" = true ] && f=(--force)
  python -m uasr.bin.simulate "$@" --exp-dir "$exp_dir" "${f[@]}" \
    || die "uasr simulate $1 failed (see the message above)"
}

stage_0() { _sim bound --trials "$trials" --seed "$seed"; }
stage_1() { _sim controls --seed "$seed"; }
# shellcheck disable=SC2086  # word splitting of the lists is intended
stage_2() { _sim learn --seed "$seed" --sizes $learn_sizes --steps "$learn_steps" --restarts "$learn_restarts"; }
stage_3() {
  ensure_apt bible bible-kjv
  [ -f /usr/lib/bible.data ] || ensure_apt __no_such_cmd__ bible-kjv-text
  # shellcheck disable=SC2086
  _sim realtext --n $pc_lengths --orders $ngram_orders
}
stage_4() {
  local newer=""
  [ -f "$out_dir/RESULTS.md" ] && newer=$(find "$exp_dir" -name '*.json' -newer "$out_dir/RESULTS.md" | head -1)
  if [ "$force" != true ] && [ -f "$out_dir/RESULTS.md" ] && [ -z "$newer" ]; then
    log "$out_dir/RESULTS.md is newer than every result in $exp_dir; skipping (--force true redoes)"
    return 0
  fi
  python -m uasr.bin.simulate report --exp-dir "$exp_dir" --out-dir "$out_dir" \
    || die "report failed (see the message above)"
}
