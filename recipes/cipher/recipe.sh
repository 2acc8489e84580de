# Phoneme-cipher decipherment (paper-notes §4.3): KJV text -> ARPAbet phones -> each phone
# enciphered into M=3 private symbols; q(symbol | phone) is learned from the cipher text and a
# phone n-gram LM alone (sequence-level CE, one_to_one topology), then held-out cipher text is
# Viterbi-decoded and scored (symbol error rate). See recipes/cipher/README.md.
#
#   ./run.sh --recipe cipher                       # full table (see README for wall time)
#   ./run.sh --recipe cipher --size tiny           # CI-sized, < 2 min
#   ./run.sh --recipe cipher --stage 3 --force true
size=default
data=            # default: data/cipher (tiny: data/cipher_tiny)
exp=             # default: exp/cipher  (tiny: exp/cipher_tiny)
jobs=2           # training chains run in parallel
orders=          # LM orders (default: 2 3 4; tiny: 2 3)
sizes=           # cipher training sizes in symbols (default: 10000 100000 1000000)
texts="matched unmatched"
optimizers="em adam"
seed=1
check_options() {  # called by run.sh once the options are parsed
  abs_path data exp
  one_of size tiny default
}
stage_names=(
  "KJV text (Debian bible-kjv) -> LM text / cipher text, matched and unmatched"
  "phonemize (CMUdict + flite G2P) and train phone LMs"
  "encipher: M=3 private symbols per phone, random emissions (seeded)"
  "learn q(symbol | phone): EM and Adam, random restarts, LM order x cipher size"
  "Viterbi-decode held-out cipher text, symbol error rate"
  "RESULTS.md, results.json and the SER plot"
)
prepare_stop_stage=2

_cipher_config() {
  if [ "$size" = tiny ]; then
    data=${data:-data/cipher_tiny}; exp=${exp:-exp/cipher_tiny}
    every=10; orders=${orders:-"2 3"}; sizes=${sizes:-"1000 4000"}; test_symbols=2000
    restarts=2; epochs_em=10; epochs_adam=12; warm_epochs=2; max_size4=0
    adam_first="--batch-tokens 250 --lr 0.3"
  elif [ "$size" = default ]; then
    data=${data:-data/cipher}; exp=${exp:-exp/cipher}
    every=1; orders=${orders:-"2 3 4"}; sizes=${sizes:-"10000 100000 1000000"}
    test_symbols=20000
    restarts=4; epochs_em=20; epochs_adam=30; warm_epochs=3; max_size4=1000000
    adam_first="--batch-tokens 1000 --lr 0.1"
  fi
  prep="python local/cipher_prepare.py --dir $data --seed $seed"
}

_done() {  # _done FILE...: true when every file exists and --force is not set
  [ "$force" = true ] && return 1
  local f; for f in "$@"; do [ -e "$f" ] || return 1; done
}

stage_0() {
  _cipher_config
  if ! command -v bible >/dev/null 2>&1; then
    ensure_apt bible bible-kjv  # pulls bible-kjv-text (the KJV data)
  fi
  _done $data/text/unmatched_lm.txt && { log "skip: $data/text exists"; return; }
  $prep text --every $every
}

stage_1() {
  _cipher_config
  command -v t2p >/dev/null 2>&1 || ensure_apt t2p flite  # G2P for words CMUdict lacks
  _done $data/phones/unmatched_lm.txt || $prep phones
  local o lms=()
  for o in $orders; do lms+=($data/lm/matched/phone$o.arpa $data/lm/unmatched/phone$o.arpa); done
  _done "${lms[@]}" && { log "skip: phone LMs exist"; return; }
  $prep lm --orders $orders
}

stage_2() {
  _cipher_config
  _done $data/cipher/unmatched/train.sym && { log "skip: cipher text exists"; return; }
  $prep encipher --test-symbols $test_symbols
}

# One chain per (text, optimizer): orders 2 and 3 at the smallest size start from random
# restarts; each larger size starts from the previous size's model (the sizes are nested
# prefixes of one cipher text); the 4-gram starts from the 3-gram model of the same size.
_chain() {
  local text=$1 opt=$2 o n prev dir extra lmf
  local cipher=$data/cipher/$text/train.sym
  for o in $orders; do
    prev=
    for n in $sizes; do
      dir=$exp/$text/${opt}_o${o}_n${n}
      lmf=$data/lm/$text/phone$o.arpa
      if [ "$o" -ge 4 ]; then
        [ "$n" -le "$max_size4" ] || continue
        # preselection: each symbol keeps the 4 phones the 3-gram model finds most likely
        extra="--backend preselect --preselect 4 --restarts 1 --epochs $warm_epochs"
        extra="$extra --batch-tokens 100000 --init-from $exp/$text/${opt}_o3_n${n}"
      elif [ -z "$prev" ]; then
        if [ "$opt" = em ]; then extra="--restarts $restarts --epochs $epochs_em"
        else extra="--restarts $restarts --epochs $epochs_adam $adam_first"; fi
      else
        extra="--restarts 1 --epochs $warm_epochs --init-from $prev"
        [ "$opt" = adam ] && extra="$extra --lr 0.03"
      fi
      [ "$o" = 2 ] && extra="$extra --backend graph"
      if ! _done $dir/model.pt; then
        mkdir -p $dir
        uasr decipher train --lm $lmf --cipher $cipher --num-symbols $n --vocab-size 117 \
          --optimizer $opt --seed $seed --exp-dir $dir $extra > $dir/train.log 2>&1 \
          || { log "ERROR: training $dir failed, see $dir/train.log"; return 1; }
      fi
      log "trained $dir"
      prev=$dir
    done
  done
}

stage_3() {
  _cipher_config
  local text opt pids=()
  for text in $texts; do
    for opt in $optimizers; do
      _chain $text $opt &
      pids+=($!)
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 2; done
    done
  done
  local p fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || die "some training chains failed (see the train.log files under $exp)"
}

stage_4() {
  _cipher_config
  local text o d backend dirs
  for text in $texts; do
    for o in $orders; do
      dirs=()  # every trained, not yet decoded model of this text and order: one process
      for d in $exp/$text/*_o${o}_n*; do
        [ -f $d/model.pt ] || continue
        _done $d/decode.json || dirs+=($d)
      done
      [ ${#dirs[@]} -gt 0 ] || continue
      backend=dense; [ "$o" = 2 ] && backend=graph; [ "$o" -ge 4 ] && backend=preselect
      uasr decipher decode --lm $data/lm/$text/phone$o.arpa --backend $backend \
        --cipher $data/cipher/$text/test.sym --phones $data/cipher/$text/test.phn \
        --exp-dir "${dirs[@]}" || die "decoding ${dirs[*]} failed"
    done
  done
}

stage_5() {
  _cipher_config
  local out=recipes/cipher
  [ "$size" = tiny ] && out=$exp
  python local/cipher_report.py --exp $exp --out $out --size $size
}
