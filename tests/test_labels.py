import pytest

from input_pipeline import labels

CLASS_STRINGS = ["(0, 2)", "(4, 6)", "(8, 12)", "(15, 20)", "(25, 32)", "(38, 43)", "(48, 53)", "(60, 100)"]
# Every bare number and off-grid range found in the real fold files, with the class
# the `nearest` rule gives it (see docs/1-data.md, "Label policies", for the rule).
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


def adience_class(text, policy):
    """The Adience class of a fold file's age string, as build (read) and training (bin) give it."""
    return labels.ADIENCE.bin_of(*labels.age_from_text(text, policy, bare_numbers=False), policy)


def test_class_names_are_the_adience_strings():
    assert list(labels.ADIENCE.names) == CLASS_STRINGS
    assert list(labels.parse_bins("adience").names) == CLASS_STRINGS


@pytest.mark.parametrize("policy", labels.POLICIES)
def test_the_eight_classes_get_their_index(policy):
    for index, text in enumerate(CLASS_STRINGS):
        assert adience_class(text, policy) == index
        assert adience_class(f" {text} ", policy) == index


@pytest.mark.parametrize("text", list(NEAREST))
def test_strict_leaves_noisy_values_unknown(text):
    assert labels.age_from_text(text, "strict", bare_numbers=False) == (-1, -1)
    assert adience_class(text, "strict") == labels.UNKNOWN


@pytest.mark.parametrize("text,expected", list(NEAREST.items()))
def test_nearest_places_every_listed_value(text, expected):
    assert adience_class(text, "nearest") == expected


@pytest.mark.parametrize("policy", labels.POLICIES)
@pytest.mark.parametrize("text", ["None", "", "  ", "abc", "(25, )", "-3", "3.5", "(2, 6", "(2, 600)"])
def test_unreadable_ages_are_unknown(policy, text):
    assert labels.age_from_text(text, policy) == (-1, -1)
    assert adience_class(text, policy) == labels.UNKNOWN


def test_shards_keep_the_age_as_the_source_gives_it():
    assert labels.age_from_text("(25, 32)", "strict") == (25, 32)
    assert labels.age_from_text("26", "strict") == (26, 26)  # Years: read under both policies.
    assert labels.age_from_text("(32, 25)", "nearest") == (25, 32)  # Either order.
    assert labels.age_from_text("(32, 25)", "strict") == (-1, -1)  # Not one of the bins.
    assert labels.age_from_years(121) == (-1, -1) and labels.age_from_years(0) == (0, 0)


def test_bin_names_and_ranges_of_the_chosen_scheme_are_read():
    three = labels.parse_bins("three")
    assert labels.age_from_text("YOUNG", "strict", three) == (13, 30)
    assert labels.age_from_text(" Old ", "strict", three) == (51, labels.MAX_YEARS)
    assert labels.age_from_text("YOUNG", "strict") == (-1, -1)  # Not a bin of --age_bins=adience.
    assert labels.age_from_text("31-50", "strict", three) == (31, 50)
    assert labels.age_from_text("31-49", "strict", three) == (-1, -1)
    assert labels.age_from_text("31-49", "nearest", three) == (31, 49)
    assert labels.age_from_text("51+", "strict", three) == (51, labels.MAX_YEARS)


@pytest.mark.parametrize("years,strict,nearest", [
    (0, 0, 0), (2, 0, 0), (3, -1, 0), (7, -1, 1), (14, -1, 3), (15, 3, 3), (24, -1, 4),
    (37, -1, 5), (54, -1, 6), (59, -1, 7), (100, 7, 7), (116, -1, 7)])
def test_ages_in_years(years, strict, nearest):
    assert labels.ADIENCE.bin_of(years, years, "strict") == strict
    assert labels.ADIENCE.bin_of(years, years, "nearest") == nearest


@pytest.mark.parametrize("low,high,strict,nearest", [
    (25, 32, 4, 4),  # Exactly a bin.
    (27, 30, 4, 4),  # Inside one.
    (20, 26, -1, 4),  # Straddles 15-20 and 25-32: midpoint 23 is 2 from 25-32.
    (30, 40, -1, 4),  # Straddles 25-32 and 38-43: midpoint 35 is 3 from each, a tie: the younger.
    (60, 120, -1, 7),
])
def test_ranges_go_to_a_bin_only_when_inside_it(low, high, strict, nearest):
    assert labels.ADIENCE.bin_of(low, high, "strict") == strict
    assert labels.ADIENCE.bin_of(low, high, "nearest") == nearest


def test_a_range_that_straddles_two_bins_of_three_is_unknown_under_strict():
    three = labels.parse_bins("three")
    assert three.bin_of(25, 32, "strict") == -1  # Adience's (25, 32) crosses 30/31.
    assert three.bin_of(25, 30, "strict") == 0
    assert three.bin_of(60, 100, "strict") == 2
    assert three.bin_of(8, 12, "strict") == -1 and three.bin_of(8, 12, "nearest") == 0


def test_the_lookup_table_agrees_with_bin_of():
    bins = labels.parse_bins("0-12,13-30,31-50,51+")
    for policy in labels.POLICIES:
        table = bins.table(policy)
        for low, high in [(0, 0), (5, 20), (13, 30), (31, 31), (45, 60), (90, 120), (12, 13)]:
            assert table[low, high] == bins.bin_of(low, high, policy)


def test_schemes_and_explicit_lists():
    three = labels.parse_bins("three")
    assert three.names == ("young", "middle", "old") and three.ranges[-1] == (51, labels.MAX_YEARS)
    utk12 = labels.parse_bins("utk12")
    assert len(utk12) == 12 and utk12.ranges[0] == (1, 3) and utk12.names[-1] == "74+"
    assert all(a[1] + 1 == b[0] for a, b in zip(utk12.ranges, utk12.ranges[1:], strict=False))  # No gaps.
    listed = labels.parse_bins("0-12, 13-30,31-50,51+")
    assert listed.names == ("0-12", "13-30", "31-50", "51+")
    assert listed.ranges == ((0, 12), (13, 30), (31, 50), (51, labels.MAX_YEARS))
    named = labels.parse_bins("kid=0-12,adult=13+")
    assert named.names == ("kid", "adult") and named.range_of_name("ADULT") == (13, labels.MAX_YEARS)


@pytest.mark.parametrize("spec,message", [
    ("0-12,10-30", "overlaps"), ("31-50,0-12", "overlaps"), ("0-12", "at least two"), ("a-b,3-4", "not a bin"),
    ("five", "not a bin"), ("0-12,13-200", "within 0-120"), ("x=0-3,X=4-5", "repeat")])
def test_bad_bins_are_refused_with_a_reason(spec, message):
    with pytest.raises(ValueError, match=message):
        labels.parse_bins(spec)


def test_bin_counts_of_a_manifest():
    counts = {"2": 3, "0-2": 1, "25-32": 5, "35": 2, "60-100": 1, "unknown": 4}
    assert labels.bin_counts(counts, labels.ADIENCE, "strict") == {
        **dict.fromkeys(CLASS_STRINGS, 0), "(0, 2)": 4, "(25, 32)": 5, "(60, 100)": 1, "unknown": 6}
    assert labels.bin_counts(counts, labels.parse_bins("three"), "strict") == {
        "young": 0, "middle": 2, "old": 1, "unknown": 13}
    assert labels.years_known(counts) == 5


def test_heads():
    assert labels.resolve_heads((), "age_gender") == ("age", "gender")
    assert labels.resolve_heads(("age_years", "race", "age"), "gender") == ("age", "race", "age_years")
    with pytest.raises(ValueError, match="unknown head"):
        labels.resolve_heads(("height",), "age")
    three = labels.parse_bins("three")
    assert labels.head_sizes(labels.HEADS, three, ["a", "b"]) == {"age": 3, "gender": 2, "race": 2, "age_years": 101}


@pytest.mark.parametrize("text,expected", [
    ("m", 0), ("f", 1), ("M", 0), (" f ", 1), ("u", -1), ("", -1), ("x", -1), ("male", -1)])
def test_gender(text, expected):
    assert labels.gender_label(text) == expected


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="label policy"):
        labels.age_from_text("(0, 2)", "closest")
