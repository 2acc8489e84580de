"""English text normalisation for LM text and transcripts.

``normalize_text("In 1611, the K.J.V. cost $3.50!")`` ->
``"in sixteen eleven the k j v cost three dollars fifty cents"``.
Lowercase; numbers, ordinals, years, money and percentages spelled out; punctuation removed
(word-internal apostrophes kept, since CMUdict has entries such as ``lord's``); hyphens split
words. The result is space-separated words over ``[a-z']``.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"),
           (10**6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _below_1000(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> str:
    """Cardinal number in words: ``2026`` -> ``"two thousand twenty six"``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**18:
        return " ".join(_ONES[int(d)] for d in str(n))  # read digit by digit
    words: list[str] = []
    for scale, name in _SCALES:
        if n >= scale:
            words += _below_1000(n // scale) if n // scale < 1000 \
                else number_to_words(n // scale).split()
            words.append(name)
            n %= scale
    if n or not words:
        words += _below_1000(n)
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """``21`` -> ``"twenty first"``."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORD_IRREGULAR:
        words[-1] = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_to_words(n: int) -> str:
    """Years as spoken: ``1611`` -> ``"sixteen eleven"``, ``1900`` -> ``"nineteen hundred"``,
    ``2005`` -> ``"two thousand five"``."""
    hi, lo = divmod(n, 100)
    if 2000 <= n <= 2009 or hi % 10 == 0:
        return number_to_words(n)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + (("oh " + _ONES[lo]) if lo < 10 else number_to_words(lo))


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


def _money(m: re.Match) -> str:
    whole = int(m.group(1).replace(",", ""))
    cents = m.group(2)
    out = number_to_words(whole) + (" dollar" if whole == 1 else " dollars")
    if cents and int(cents):
        c = int(cents.ljust(2, "0")[:2])
        out += " " + number_to_words(c) + (" cent" if c == 1 else " cents")
    return f" {out} "


def _number(m: re.Match) -> str:
    raw, frac, suffix = m.group(1), m.group(2), (m.group(3) or "").lower()
    n = int(raw.replace(",", ""))
    if suffix in ("st", "nd", "rd", "th"):
        return f" {ordinal_to_words(n)} "
    if frac:
        return f" {number_to_words(n)} point {_digits(frac)} "
    if "," not in raw and 1100 <= n <= 2099 and len(raw) == 4:
        return f" {year_to_words(n)} "
    return f" {number_to_words(n)} "


_MONEY = re.compile(r"\$\s?(\d[\d,]*)(?:\.(\d{1,2}))?")
_NUM = re.compile(r"(\d[\d,]*\d|\d)(?:\.(\d+))?(st|nd|rd|th)?", re.IGNORECASE)
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "=": " equals ", "@": " at "}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'",
                         "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def normalize_text(text: str) -> str:
    """Normalise English text to lowercase space-separated words (see the module doc)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    # strip accents (cafe, naive), keep ASCII letters
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _MONEY.sub(_money, text)
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, word)
    text = _NUM.sub(_number, text)
    text = text.lower()
    text = re.sub(r"[^a-z']+", " ", text)  # punctuation, hyphens, digits left over -> space
    # apostrophes only inside words (quotes and possessive-plural "sons'" lose them)
    words = [w.strip("'") for w in text.split()]
    return " ".join(w for w in words if w)
