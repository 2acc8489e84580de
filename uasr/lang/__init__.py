"""Language resources: phone sets (:mod:`.phones`), lexicon and G2P (:mod:`.lexicon`), English
text normalisation (:mod:`.text`)."""

from uasr.lang.lexicon import Lexicon, OOVError
from uasr.lang.phones import ARPABET39, PHONES, SIL, fold_timit, strip_stress
from uasr.lang.text import normalize_text, number_to_words

__all__ = ["ARPABET39", "Lexicon", "OOVError", "PHONES", "SIL", "fold_timit", "normalize_text",
           "number_to_words", "strip_stress"]
