import pytest

from input_pipeline import labels

CLASS_STRINGS = ["(0, 2)", "(4, 6)", "(8, 12)", "(15, 20)", "(25, 32)", "(38, 43)", "(48, 53)", "(60, 100)"]
# Every bare number and off-grid range found in the real fold files, with the class
# the `nearest` rule gives it (see the README for the rule).
NEAREST = {
    "35": 4,  # 3 from (25, 32) and from (38, 43): a tie, the younger class.
    "13": 2, "22": 3, "34": 4, "23": 4, "45": 5, "55": 6, "36": 5, "57": 7,
    "3": 0,  # 1 from (0, 2) and from (4, 6): a tie, the younger class.
    "29": 4, "58": 7, "2": 0, "32": 4, "56": 6, "42": 5, "46": 6,
    "(27, 32)": 4,  # Midpoint 29.5.
    "(25, 23)": 4,  # Midpoint 24: 1 from (25, 32), 4 from (15, 20).
    "(38, 42)": 5, "(38, 48)": 5,  # Midpoints 40 and 43.
    "(8, 23)": 3,  # Midpoint 15.5.
}


def test_class_names_are_the_adience_strings():
    assert list(labels.AGE_CLASSES) == CLASS_STRINGS


@pytest.mark.parametrize("policy", labels.POLICIES)
def test_the_eight_classes_get_their_index(policy):
    for index, text in enumerate(CLASS_STRINGS):
        assert labels.age_label_from_text(text, policy) == index
        assert labels.age_label_from_text(f" {text} ", policy) == index


@pytest.mark.parametrize("text", list(NEAREST))
def test_strict_leaves_noisy_values_unknown(text):
    assert labels.age_label_from_text(text, "strict") == labels.UNKNOWN


@pytest.mark.parametrize("text,expected", list(NEAREST.items()))
def test_nearest_places_every_listed_value(text, expected):
    assert labels.age_label_from_text(text, "nearest") == expected


@pytest.mark.parametrize("policy", labels.POLICIES)
@pytest.mark.parametrize("text", ["None", "", "  ", "abc", "(25, )", "-3", "3.5", "(2, 6"])
def test_unreadable_ages_are_unknown(policy, text):
    assert labels.age_label_from_text(text, policy) == labels.UNKNOWN


def test_strict_needs_the_exact_range_not_a_reversed_one():
    assert labels.age_label_from_text("(32, 25)", "strict") == labels.UNKNOWN
    assert labels.age_label_from_text("(32, 25)", "nearest") == 4


@pytest.mark.parametrize("years,strict,nearest", [
    (0, 0, 0), (2, 0, 0), (3, -1, 0), (7, -1, 1), (14, -1, 3), (15, 3, 3), (24, -1, 4),
    (37, -1, 5), (54, -1, 6), (59, -1, 7), (100, 7, 7), (116, -1, 7), (-1, -1, -1)])
def test_ages_in_years(years, strict, nearest):
    assert labels.age_label_from_years(years, "strict") == strict
    assert labels.age_label_from_years(years, "nearest") == nearest


@pytest.mark.parametrize("text,expected", [
    ("m", 0), ("f", 1), ("M", 0), (" f ", 1), ("u", -1), ("", -1), ("x", -1), ("male", -1)])
def test_gender(text, expected):
    assert labels.gender_label(text) == expected


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="label policy"):
        labels.age_label_from_text("(0, 2)", "closest")
