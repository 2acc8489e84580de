"""Word-level decoding: a lexicon x word n-gram graph (kaldifst) searched by kaldi-decoder.

The emission models score one row per speech segment over the C phone labels of the lang
dir's ``phones.txt``. Word decoding finds the best word sequence under

    score = log q(x | phones) + lm_scale * (log p_LM(words) + log p_sil + log p_topo
                                            - word_penalty * #words)

The graph (built once, cached on disk by :func:`cached_word_graph`):

- **L**, the lexicon transducer (phones -> words), first pronunciation of each word, with
  Kaldi-style disambiguation symbols ``#1 #2 ...`` appended to pronunciations that are
  homophones or prefixes of another word's, and optional silence: ``sil`` may open the
  utterance and follow every word with probability ``sil_prob`` (Kaldi's ``L`` with
  ``--sil-prob``). The word is output on the first arc of its pronunciation.
- **G**, the word n-gram, from the ARPA file by ``python -m kaldilm`` (Kaldi's arpa2fst)
  with ``#0`` on the back-off arcs (as icefall does); ``<s>``/``</s>`` become the start
  state / final weights. A back-off LM read as a graph scores a word sequence by its best
  path, so where a stored n-gram is less likely than the back-off route the latter counts.
- ``LG = minimize_encoded(determinize_star(L o G))`` (tropical; weight delta 1e-6, since
  Kaldi's default 1/1024 quantises the weights).
- **H**, the token topology, composed on the left: ``HLG = H o LG``. H also maps every
  disambiguation symbol to epsilon (``eps:#k`` arcs), so the symbols leave no trace; the
  back-off arcs stay as non-emitting arcs (no epsilon removal, which would expand the
  back-off structure). ``one_to_one``: each segment is exactly one phone. ``loop``: a phone
  spans k >= 1 consecutive segments with weight ``stay^(k-1)``, and each phone-to-phone
  transition costs ``1 - stay``, as :func:`uasr.graph.topology.loop` (silence is a phone);
  with ``max_stay`` m, k <= m + 1 and a phone that spans m + 1 segments leaves with weight 1.
- ``word_penalty`` is a cost on L's word-output arcs.

Label conventions: graph input label ``i`` = phone id ``i - 1`` (0 is epsilon), which is how
``kaldi_decoder.DecodableCtc`` maps labels to emission columns (``log_likelihood(t, i)`` reads
column ``i - 1``; it does not check bounds: H only has labels 1..C, and :func:`decode` checks
that the emissions have C columns). Phone disambiguation symbols of L/LG are ``C + 1 ...``
(``#0`` first). Word ids follow
``words.txt``: ``<eps>`` 0, the words 1..W (sorted), then ``#0``, ``<s>``, ``</s>``.

The LM scale is applied by dividing the emissions by ``lm_scale`` (same argmax), so one graph
serves every scale; ``beam`` is then in graph (LM) units.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

TOPOLOGIES = ("one_to_one", "loop")
SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>", "<UNK>", "<eps>", "<SPOKEN_NOISE>", "!SIL"})
GRAPH_VERSION = 1  # bump when the construction changes (invalidates caches)
ARPA_HELP = ("run the lang stage with word LMs (uasr prepare-lang ... --word-orders 2) or pass "
             "--word-lm ARPA")


# ----------------------------------------------------------------------------- inputs


def read_lexicon(path: str | os.PathLike) -> dict[str, list[str]]:
    """``word phone phone ...`` lines -> ``{word: phones}`` (the first pronunciation of a word)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the lang stage (it writes lexicon.txt) "
                                f"or pass --lexicon FILE ('word phone phone ...' per line)")
    lex: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split("#", 1)[0].split() if not line.startswith("#") else []
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: no phones for {parts[0]!r}; each line must be "
                                 f"'word phone phone ...'")
            lex.setdefault(parts[0], parts[1:])
    return lex


def arpa_vocab(arpa: str | os.PathLike) -> list[str]:
    """The unigram tokens of an ARPA file (plain or ``.gz``), in file order."""
    arpa = Path(arpa)
    if not arpa.is_file():
        raise FileNotFoundError(f"{arpa} is missing: {ARPA_HELP}")
    opener = gzip.open if arpa.suffix == ".gz" else open
    words: list[str] = []
    section = None
    with opener(arpa, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("\\"):
                if section == "\\1-grams:":
                    break  # the unigrams are done
                section = line
                continue
            if section == "\\1-grams:":
                parts = line.split()
                if len(parts) >= 2:
                    words.append(parts[1])
    if not words:
        raise ValueError(f"{arpa}: no \\1-grams: section found; is it an ARPA file? ({ARPA_HELP})")
    return words


def add_disambig(prons: dict[str, list[str]]) -> tuple[dict[str, list[str]], int]:
    """Append ``#k`` to pronunciations shared by several words or that are a proper prefix
    of another word's (Kaldi's add_lex_disambig). Returns the new lexicon and the largest k."""
    count = Counter(tuple(p) for p in prons.values())
    prefixes = {tuple(p[:k]) for p in prons.values() for k in range(1, len(p))}
    used: Counter = Counter()
    out: dict[str, list[str]] = {}
    for w in sorted(prons):
        seq = tuple(prons[w])
        if count[seq] > 1 or seq in prefixes:
            used[seq] += 1
            out[w] = list(seq) + [f"#{used[seq]}"]
        else:
            out[w] = list(seq)
    return out, max(used.values(), default=0)


# ----------------------------------------------------------------------------- graph


@dataclass
class WordGraph:
    """A compiled decoding graph and its word table."""

    fst: object  # kaldifst.StdVectorFst
    words: list[str]  # word id -> word ("<eps>" at 0; "#0", "<s>", "</s>" at the end)
    num_labels: int  # C: input labels are 1..C
    info: dict = field(default_factory=dict)
    _decoders: dict = field(default_factory=dict, repr=False)

    def decoder(self, beam: float, max_active: int):
        import kaldi_decoder
        key = (float(beam), int(max_active))
        if key not in self._decoders:
            opts = kaldi_decoder.FasterDecoderOptions(beam=float(beam), max_active=int(max_active))
            self._decoders[key] = kaldi_decoder.FasterDecoder(self.fst, opts)
        return self._decoders[key]


def _cost(logp: float) -> float:
    return -logp if logp > -math.inf else math.inf


def pronunciations(vocab: list[str], lexicon: dict[str, list[str]], phones: dict[str, int],
                   oov: str = "pronounce") -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Pronunciations (phones of ``phones``) of the LM words; returns ``(prons, dropped)``.

    Lookup is exact, then lowercase. Words missing from ``lexicon`` are pronounced with
    :class:`uasr.lang.lexicon.Lexicon` (CMUdict, then flite G2P) when ``oov="pronounce"``.
    Words still without a pronunciation over ``phones`` are dropped: ``dropped`` maps the
    reason (``"no_pronunciation"``, ``"unknown_phones"``) to the words.
    """
    if oov not in ("pronounce", "drop"):
        raise ValueError(f"oov must be 'pronounce' or 'drop', got {oov!r}")
    from uasr.lang.phones import strip_stress
    lower = {w.lower(): p for w, p in reversed(list(lexicon.items()))}

    def to_phones(pron: list[str]) -> list[str] | None:
        out = []
        for p in pron:
            if p in phones:
                out.append(p)
            elif strip_stress(p).lower() in phones:
                out.append(strip_stress(p).lower())
            else:
                return None
        return out

    prons: dict[str, list[str]] = {}
    missing: list[str] = []
    dropped: dict[str, list[str]] = {"no_pronunciation": [], "unknown_phones": []}
    for w in vocab:
        if w in SPECIAL_WORDS or w.startswith("#"):
            continue
        pron = lexicon.get(w) or lower.get(w.lower())
        if pron is None:
            missing.append(w)
            continue
        mapped = to_phones(pron)
        if mapped:
            prons[w] = mapped
        else:
            dropped["unknown_phones"].append(w)
    if missing and oov == "pronounce":
        from uasr.lang.lexicon import Lexicon, OOVError
        lex = Lexicon.from_cmudict(g2p="auto")
        for w in missing:
            try:
                mapped = to_phones(lex.pronounce(w))
            except (OOVError, KeyError, ValueError, subprocess.CalledProcessError):
                dropped["no_pronunciation"].append(w)
                continue
            if mapped:
                prons[w] = mapped
            else:
                dropped["unknown_phones"].append(w)
    elif missing:
        dropped["no_pronunciation"] += missing
    return prons, dropped


def lexicon_fst(prons: dict[str, list[str]], phones: dict[str, int], word_ids: dict[str, int],
                sil: str | None, sil_prob: float, word_penalty: float = 0.0):
    """L with disambiguation symbols and optional silence (input: phone id + 1 and phone
    disambig ids; output: word ids). 

    States: ``start`` -(eps / 1-p, or sil / p)-> ``loop`` (final); each word a path from
    ``loop`` whose last arc goes back to ``loop`` (1-p) or to ``sil_state`` (p), and
    ``sil_state`` -sil-> ``loop``. A ``#0:#0`` self-loop on ``loop`` lets G's back-off pass.
    ``word_penalty`` is a cost on the arcs that output a word. Returns ``(L, disambig_labels)``.
    """
    import kaldifst
    C = len(phones)
    lex, max_k = add_disambig(prons)
    first_disambig = C + 1  # phone-side #0; #k = C + 1 + k
    disambig = {f"#{k}": C + 1 + k for k in range(max_k + 1)}

    def ilabel(p: str) -> int:
        return disambig[p] if p.startswith("#") else phones[p] + 1

    L = kaldifst.StdVectorFst()
    loop = L.add_state()
    use_sil = sil is not None
    if use_sil:
        start = L.add_state()
        sil_state = L.add_state()
        L.start = start
        no_sil_c, sil_c = _cost(math.log1p(-sil_prob)), _cost(math.log(sil_prob))
        L.add_arc(start, kaldifst.StdArc(0, 0, no_sil_c, loop))
        L.add_arc(start, kaldifst.StdArc(phones[sil] + 1, 0, sil_c, loop))
        L.add_arc(sil_state, kaldifst.StdArc(phones[sil] + 1, 0, 0.0, loop))
    else:
        L.start = loop
    L.set_final(loop, 0.0)
    L.add_arc(loop, kaldifst.StdArc(first_disambig, word_ids["#0"], 0.0, loop))
    for w, seq in lex.items():
        src = loop
        for j, p in enumerate(seq):
            olab, pen = (word_ids[w], word_penalty) if j == 0 else (0, 0.0)
            if j < len(seq) - 1:
                nxt = L.add_state()
                L.add_arc(src, kaldifst.StdArc(ilabel(p), olab, pen, nxt))
                src = nxt
            elif use_sil:
                L.add_arc(src, kaldifst.StdArc(ilabel(p), olab, pen + no_sil_c, loop))
                L.add_arc(src, kaldifst.StdArc(ilabel(p), olab, pen + sil_c, sil_state))
            else:
                L.add_arc(src, kaldifst.StdArc(ilabel(p), olab, pen, loop))
    kaldifst.arcsort(L, sort_type="olabel")
    return L, sorted(disambig.values())


def grammar_fst(arpa: Path, words_txt: Path):
    """G from an ARPA file with ``python -m kaldilm`` (back-off arcs on ``#0``). N-grams with
    words outside ``words_txt`` are skipped by kaldilm."""
    import kaldifst
    with tempfile.TemporaryDirectory() as tmp:
        src = arpa
        if arpa.suffix == ".gz":  # kaldilm reads plain files only
            src = Path(tmp) / "lm.arpa"
            with gzip.open(arpa, "rb") as fi, open(src, "wb") as fo:
                shutil.copyfileobj(fi, fo)
        # a subprocess: kaldilm aborts the process on a malformed ARPA
        cmd = [sys.executable, "-m", "kaldilm", f"--read-symbol-table={words_txt}",
               "--disambig-symbol=#0", "--max-arpa-warnings=0", str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.strip():
        err = [ln for ln in res.stderr.splitlines() if "[E]" in ln or "rror" in ln]
        why = (err or ["no n-gram over the lexicon words"])[-1].strip()
        raise ValueError(f"{arpa}: kaldilm could not convert it ({why}); check the ARPA file ({ARPA_HELP})")
    G = kaldifst.compile(res.stdout)
    kaldifst.arcsort(G, sort_type="ilabel")
    return G


def token_fst(num_labels: int, disambig: list[int], topology: str, stay_prob: float = 0.5,
              max_stay: int = 0):
    """H: decoder labels (phone id + 1) -> LG input labels, as one composition that both
    applies the token topology and removes the disambiguation symbols (``eps:#k`` arcs).

    ``one_to_one``: one state with ``p:p`` loops. ``loop``: from the hub ``0``, ``p:p`` enters
    state ``p``, which repeats ``p:eps`` (stay) and returns by ``eps:eps`` (1 - stay); the hub's
    final weight gives back one (1 - stay), since a path of n phones has n - 1 transitions.
    ``max_stay`` m > 0: ``p`` is a chain of m + 1 states (stay = next state); the last one
    returns with weight 1 to a second hub, whose final weight is 0.
    """
    import kaldifst
    H = kaldifst.StdVectorFst()
    hub = H.add_state()
    H.start = hub
    hubs = [hub] + ([H.add_state()] if topology == "loop" and max_stay else [])
    for h in hubs:
        for k in disambig:
            H.add_arc(h, kaldifst.StdArc(0, k, 0.0, h))
    if topology == "one_to_one":
        for i in range(1, num_labels + 1):
            H.add_arc(hub, kaldifst.StdArc(i, i, 0.0, hub))
        H.set_final(hub, 0.0)
    else:
        stay_c, move_c = -math.log(stay_prob), -math.log1p(-stay_prob)
        for i in range(1, num_labels + 1):
            q = H.add_state()
            for h in hubs:
                H.add_arc(h, kaldifst.StdArc(i, i, 0.0, q))
            if not max_stay:
                H.add_arc(q, kaldifst.StdArc(i, 0, stay_c, q))
                H.add_arc(q, kaldifst.StdArc(0, 0, move_c, hub))
                continue
            for _ in range(max_stay):
                nxt = H.add_state()
                H.add_arc(q, kaldifst.StdArc(i, 0, stay_c, nxt))
                H.add_arc(q, kaldifst.StdArc(0, 0, move_c, hub))
                q = nxt
            H.add_arc(q, kaldifst.StdArc(0, 0, 0.0, hubs[1]))
        H.set_final(hub, -move_c)
        if max_stay:
            H.set_final(hubs[1], 0.0)
    kaldifst.arcsort(H, sort_type="olabel")
    return H


def build_word_graph(lexicon: dict[str, list[str]], arpa: str | os.PathLike, phones: dict[str, int], *,
                     topology: str = "one_to_one", stay_prob: float = 0.5, max_stay: int = 0,
                     sil: str | None = "sil",
                     sil_prob: float = 0.5, word_penalty: float = 0.0,
                     oov: str = "pronounce") -> WordGraph:
    """Compile the decoding graph (see the module docstring).

    Args:
        lexicon: ``{word: phones}`` (first pronunciation), e.g. :func:`read_lexicon`.
        arpa: word n-gram (ARPA, plain or ``.gz``).
        phones: ``{symbol: id}`` with ids ``0..C-1`` (``phones.txt``).
        topology: ``one_to_one`` or ``loop``; ``stay_prob`` is the loop's self-loop probability,
            ``max_stay`` its bound on stays per phone (0: unbounded).
        sil: the silence phone (optional between words); None, or absent from ``phones``,
            for none. ``sil_prob``: its probability at each word boundary.
        word_penalty: subtracted from the (LM-scaled) log score per word.
        oov: LM words missing from ``lexicon``: ``pronounce`` (CMUdict + G2P) or ``drop``.
    """
    import kaldifst
    t0 = time.time()
    arpa = Path(arpa)
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    if topology == "loop" and not 0.0 < stay_prob < 1.0:
        raise ValueError(f"loop topology: stay_prob must be in (0, 1), got {stay_prob}")
    C = len(phones)
    if sorted(phones.values()) != list(range(C)):
        raise ValueError("phones.txt ids must be 0..C-1")
    if sil is not None and sil not in phones:
        logging.info(f"no {sil!r} in phones.txt: decoding without optional silence")
        sil = None
    if sil is not None and not 0.0 < sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in (0, 1), got {sil_prob}")
    vocab = arpa_vocab(arpa)
    prons, dropped = pronunciations(vocab, lexicon, phones, oov)
    if sil is not None:
        prons.pop(sil, None)
    ndrop = sum(len(v) for v in dropped.values())
    if ndrop:
        logging.warning(f"{ndrop} of {len(vocab)} LM word(s) dropped (their n-grams are skipped): "
                        + "; ".join(f"{k}: {' '.join(v[:10])}{' ...' if len(v) > 10 else ''}"
                                    for k, v in dropped.items() if v))
    if not prons:
        raise ValueError(f"{arpa}: none of its words has a pronunciation over phones.txt; check "
                         f"the lexicon")
    words = ["<eps>"] + sorted(prons) + ["#0", "<s>", "</s>"]
    word_ids = {w: i for i, w in enumerate(words)}
    with tempfile.TemporaryDirectory() as tmp:
        words_txt = Path(tmp) / "words.txt"
        words_txt.write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)), encoding="utf-8")
        G = grammar_fst(arpa, words_txt)
    L, disambig = lexicon_fst(prons, phones, word_ids, sil, sil_prob, word_penalty)
    LG = kaldifst.compose(L, G)
    if LG.num_states == 0:
        raise ValueError(f"{arpa}: lexicon x LM is empty (no LM path over the lexicon words)")
    kaldifst.determinize_star(LG)
    kaldifst.minimize_encoded(LG, delta=1e-6)  # the default (1/1024) quantises the weights
    kaldifst.arcsort(LG, sort_type="ilabel")
    HLG = kaldifst.compose(token_fst(C, disambig, topology, stay_prob, max_stay), LG)
    kaldifst.arcsort(HLG, sort_type="ilabel")
    info = {"version": GRAPH_VERSION, "topology": topology, "stay_prob": stay_prob if topology == "loop" else None,
            "max_stay": max_stay if topology == "loop" else None,
            "sil": sil, "sil_prob": sil_prob if sil else None, "word_penalty": word_penalty,
            "lm_words": len([w for w in vocab if w not in SPECIAL_WORDS]), "words": len(prons),
            "dropped": {k: len(v) for k, v in dropped.items()},
            "G": {"states": G.num_states, "arcs": _num_arcs(G)},
            "LG": {"states": LG.num_states, "arcs": _num_arcs(LG)},
            "graph": {"states": HLG.num_states, "arcs": _num_arcs(HLG)},
            "build_seconds": round(time.time() - t0, 2)}
    return WordGraph(HLG, words, C, info)


def _num_arcs(fst) -> int:
    return sum(fst.num_arcs(s) for s in range(fst.num_states))


# ----------------------------------------------------------------------------- cache


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_word_graph(cache_dir: str | os.PathLike, lexicon_path: str | os.PathLike,
                      arpa: str | os.PathLike, phones: dict[str, int], **opts) -> WordGraph:
    """:func:`build_word_graph` with the graph cached in ``cache_dir`` under a key of the
    inputs' contents and ``opts``: ``words-<key>.fst`` + ``.words.txt`` + ``.json`` (written
    atomically, the json last). ``info["cached"]`` says whether the cache was used."""
    import kaldifst
    arpa, lexicon_path, cache_dir = Path(arpa), Path(lexicon_path), Path(cache_dir)
    if not arpa.is_file():
        raise FileNotFoundError(f"{arpa} is missing: {ARPA_HELP}")
    if not lexicon_path.is_file():
        read_lexicon(lexicon_path)  # raises the error with the fix
    key_src = {"version": GRAPH_VERSION, "arpa": _file_digest(arpa), "lexicon": _file_digest(lexicon_path),
               "phones": sorted(phones.items(), key=lambda kv: kv[1]), **opts}
    key = hashlib.sha1(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    stem = cache_dir / f"words-{key}"
    paths = {k: stem.with_name(stem.name + ext) for k, ext in
             (("fst", ".fst"), ("words", ".words.txt"), ("info", ".json"))}
    if all(p.is_file() for p in paths.values()):
        fst = kaldifst.StdVectorFst.read(str(paths["fst"]))
        if fst is not None and fst.num_states > 0:
            words = [ln.split()[0] for ln in paths["words"].read_text(encoding="utf-8").splitlines()]
            info = json.loads(paths["info"].read_text())
            info.update(cached=True, path=str(paths["fst"]))
            logging.info(f"word graph from cache {paths['fst']}")
            return WordGraph(fst, words, len(phones), info)
        logging.warning(f"{paths['fst']} is unreadable: rebuilding it")
    g = build_word_graph(read_lexicon(lexicon_path), arpa, phones, **opts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{os.getpid()}"
    tmp = {k: p.with_name(p.name + suffix) for k, p in paths.items()}
    try:
        if not g.fst.write(str(tmp["fst"])):
            raise OSError(f"could not write {tmp['fst']}")
        tmp["words"].write_text("".join(f"{w} {i}\n" for i, w in enumerate(g.words)), encoding="utf-8")
        info = {**g.info, "arpa": str(arpa), "lexicon": str(lexicon_path)}
        tmp["info"].write_text(json.dumps(info, indent=1))
        for k in ("fst", "words", "info"):
            os.replace(tmp[k], paths[k])
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)
    g.info.update(cached=False, path=str(paths["fst"]))
    logging.info(f"word graph built in {g.info['build_seconds']} s: {g.info['graph']} -> {paths['fst']}")
    return g


# ----------------------------------------------------------------------------- decoding


class Hyp(NamedTuple):
    """A decoding result: the words, the score ``log q + lm_scale * graph log weight`` of the
    best path, and whether that path ends in a final state (else it is the best partial
    path, Kaldi's fallback, and ``words`` may be incomplete)."""

    words: list[str]
    score: float
    final: bool


def decode(graph: WordGraph, emissions, lm_scale: float = 1.0, beam: float = 16.0,
           max_active: int = 7000) -> Hyp:
    """Viterbi-decode one utterance's ``[N, C]`` log emission scores (numpy or torch).

    ``Hyp([], -inf, False)`` when no path survives at all.
    """
    import kaldi_decoder
    import kaldifst
    em = emissions.detach().cpu().numpy() if hasattr(emissions, "detach") else np.asarray(emissions)
    if em.ndim != 2 or em.shape[1] != graph.num_labels:
        raise ValueError(f"emissions must be [N, {graph.num_labels}] (phones.txt), got {list(em.shape)}")
    if em.shape[0] == 0 or lm_scale <= 0:
        if lm_scale <= 0:
            raise ValueError(f"lm_scale must be > 0, got {lm_scale}")
        return Hyp([], -math.inf, False)
    em = np.ascontiguousarray(np.maximum(em / lm_scale, -1e10), dtype=np.float32)
    dec = graph.decoder(beam, max_active)
    dec.decode(kaldi_decoder.DecodableCtc(em))
    final = dec.reached_final()
    ok, lat = dec.get_best_path(use_final_probs=True)
    if not ok or lat.num_states == 0:
        return Hyp([], -math.inf, False)
    ok, _, olabels, w = kaldifst.get_linear_symbol_sequence(lat)
    if not ok:
        return Hyp([], -math.inf, False)
    return Hyp([graph.words[o] for o in olabels], -(w.value1 + w.value2) * lm_scale, final)
