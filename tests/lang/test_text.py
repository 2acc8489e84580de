from uasr.lang.text import normalize_text, number_to_words, ordinal_to_words, year_to_words


def test_numbers():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(1_000_001) == "one million one"
    assert number_to_words(-42) == "minus forty two"
    assert ordinal_to_words(21) == "twenty first" and ordinal_to_words(40) == "fortieth"
    assert ordinal_to_words(12) == "twelfth"
    assert year_to_words(1611) == "sixteen eleven" and year_to_words(1900) == "nineteen hundred"
    assert year_to_words(1905) == "nineteen oh five" and year_to_words(2005) == "two thousand five"


def test_normalize_text():
    assert normalize_text("In 1611, the K.J.V. cost $3.50!") == \
        "in sixteen eleven the k j v cost three dollars fifty cents"
    assert normalize_text("The LORD's 2nd day: 50% & 1,000 men") == \
        "the lord's second day fifty percent and one thousand men"
    assert normalize_text("\u201cWell-known\u201d caf\u00e9 \u2014 'tis 3.25") == \
        "well known cafe tis three point two five"
    assert normalize_text("  ...  ") == ""
