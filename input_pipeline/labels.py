"""Age and gender labels: the classes of each head and the rules every dataset source follows.

The 8 age groups are the Adience classes (Levi & Hassner 2015, Sec. 4.1). Two label
policies decide what happens to the noisy values found in the real fold files:

* ``strict`` (the paper's protocol): an Adience age string gets a label only if it is
  one of the 8 class ranges; an age in years (UTKFace, CSV) only if it falls inside a
  class range. Gender is known only for ``m`` / ``f``.
* ``nearest``: any age that can be read gets the class whose range contains it, or
  else the closest class; a range ``(a, b)`` is placed by its midpoint. A value
  exactly between two classes (3, 35) goes to the younger class.
"""

import re

UNKNOWN = -1

# (low, high) years, inclusive, in label order.
AGE_RANGES = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
AGE_CLASSES = tuple(f"({lo}, {hi})" for lo, hi in AGE_RANGES)
GENDER_CLASSES = ("m", "f")
CLASS_NAMES = {"age": AGE_CLASSES, "gender": GENDER_CLASSES}  # Per head.
POLICIES = ("strict", "nearest")

_RANGE_RE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NUMBER_RE = re.compile(r"^\d+$")


def check_policy(policy):
    if policy not in POLICIES:
        raise ValueError(f"label policy must be one of {POLICIES}, got {policy!r}")


def nearest_age_label(years):
    """The class whose range contains `years`, else the closest (ties: the younger)."""

    def distance(label):
        lo, hi = AGE_RANGES[label]
        return max(lo - years, years - hi, 0)

    # min() keeps the first of equal distances, so the younger class wins a tie.
    return min(range(len(AGE_RANGES)), key=distance)


def age_label_from_years(years, policy):
    """Label of an age in years (UTKFace, CSV); strict needs it inside a class range."""
    check_policy(policy)
    if years < 0:
        return UNKNOWN
    if policy == "nearest":
        return nearest_age_label(years)
    for label, (lo, hi) in enumerate(AGE_RANGES):
        if lo <= years <= hi:
            return label
    return UNKNOWN


def age_label_from_text(text, policy):
    """Label of an Adience age string: '(25, 32)', a bare number like '35', or 'None'.

    Both policies give the class of the 8 exact ranges. Only `nearest` labels the
    rest: a bare number like an age in years, an off-grid range (in either order)
    by its midpoint. Anything unreadable is UNKNOWN under both.
    """
    check_policy(policy)
    text = text.strip()
    match = _RANGE_RE.match(text)
    if match:
        bounds = (int(match.group(1)), int(match.group(2)))
        if bounds in AGE_RANGES:
            return AGE_RANGES.index(bounds)
        return nearest_age_label(sum(bounds) / 2) if policy == "nearest" else UNKNOWN
    if _NUMBER_RE.match(text) and policy == "nearest":
        return nearest_age_label(int(text))
    return UNKNOWN


def gender_label(text):
    """0 for 'm', 1 for 'f' (any case, blanks around ignored); else UNKNOWN."""
    text = text.strip().lower()
    return GENDER_CLASSES.index(text) if text in GENDER_CLASSES else UNKNOWN


def class_counts(counter, class_names):
    """{class name: count, ..., "unknown": count} of a Counter of labels, as in the manifest."""
    counts = {name: counter[label] for label, name in enumerate(class_names)}
    counts["unknown"] = counter[UNKNOWN]
    return counts


def heads_for(task):
    """{head: number of classes} of a task ("age_gender": both heads on one trunk)."""
    names = ("age", "gender") if task == "age_gender" else (task,)
    return {name: len(CLASS_NAMES[name]) for name in names}
