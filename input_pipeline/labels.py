"""Labels: how a source's ages, genders and races are read, the heads a model can have,
and the age bins chosen at training time.

Shards keep the age as the source gives it, as a range of years `(low, high)`: Adience's
"(25, 32)" is (25, 32), UTKFace's 26 is (26, 26), (-1, -1) when unknown. The bins a model
predicts are chosen when it trains (AgeBins, --age_bins): a range goes to the bin that
holds all of it and an exact age to the bin that holds it; what no bin holds is unknown
for the age head, or under the `nearest` policy goes to the nearest bin.

The two label policies (build_input --label_policy, recorded in the manifest):

* ``strict`` (the paper's protocol, Levi & Hassner 2015, Sec. 4.1): from an Adience
  fold file only the 8 class ranges are read; a bare number or another range is
  unknown. In a CSV a range or bin name is read only if it is a bin of --age_bins (or
  one of Adience's 8). Ages in years are always read. At training a label outside every
  bin is unknown.
* ``nearest``: every readable value is kept, and at training a value no bin holds goes
  to the nearest bin; a range by its midpoint; a value exactly between two bins (3, 35
  with Adience's) goes to the younger.
"""

import dataclasses
import re

import numpy as np

UNKNOWN = -1
MAX_YEARS = 120  # The oldest age a source may give; the open end of a bin such as "51+".
POLICIES = ("strict", "nearest")
GENDER_CLASSES = ("m", "f")
UTKFACE_RACES = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's 0..4.

# Heads: "age" is a class per age bin, "age_years" a distribution over 0..100 years
# whose expected value is the prediction (Rothe et al., DEX, 2015).
HEADS = ("age", "gender", "race", "age_years")
TASK_HEADS = {"age": ("age",), "gender": ("gender",), "age_gender": ("age", "gender")}  # --task, the old flag.
YEARS = 101  # age_years' classes: 0..100; older ages count as 100.

_ADIENCE_RANGE_RE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")  # "(25, 32)", either order.
_BIN_RE = re.compile(r"^(\d+)\s*(?:-\s*(\d+)|(\+))$")  # "13-30", "51+".


@dataclasses.dataclass(frozen=True)
class AgeBins:
    """Age classes: a name and an inclusive range of years each, in order, not overlapping."""

    names: tuple
    ranges: tuple  # ((low, high), ...) years, inclusive.

    def __post_init__(self):
        if len(self.names) < 2 or len(self.names) != len(self.ranges):
            raise ValueError(f"age bins need at least two bins, each with a name: {self.names} {self.ranges}")
        if len({n.lower() for n in self.names}) != len(self.names):
            raise ValueError(f"age bin names repeat: {', '.join(self.names)}")
        previous = -1
        for name, (low, high) in zip(self.names, self.ranges, strict=True):
            if not 0 <= low <= high <= MAX_YEARS:
                raise ValueError(f"age bin {name}: {low}-{high} is not a range of years within 0-{MAX_YEARS}")
            if low <= previous:
                raise ValueError(f"age bin {name} ({low}-{high}) overlaps or precedes the bin before it; list "
                                 "bins from young to old without overlaps")
            previous = high

    def __len__(self):
        return len(self.names)

    def bin_of(self, low, high, policy):
        """The bin of an age (low, high) in years (low == high: an exact age), or UNKNOWN."""
        if low < 0:
            return UNKNOWN
        for index, (lo, hi) in enumerate(self.ranges):
            if lo <= low and high <= hi:
                return index
        if policy == "strict":
            return UNKNOWN
        middle = (low + high) / 2
        # min() keeps the first of equal distances, so the younger bin wins a tie.
        return min(range(len(self.ranges)), key=lambda i: max(self.ranges[i][0] - middle, middle - self.ranges[i][1],
                                                               0))

    def bin_of_years(self, years):
        """The bin of a predicted age in years (a float, e.g. age_years' expected value): the
        bin holding it, rounded to whole years, else the nearest."""
        whole = int(round(years))
        return self.bin_of(whole, whole, "nearest")

    def table(self, policy):
        """(MAX_YEARS + 1, MAX_YEARS + 1) int32: the bin of every (low, high), for TensorFlow
        (input_pipeline/reader) to look up, so Python and the pipeline cannot disagree."""
        out = np.full((MAX_YEARS + 1, MAX_YEARS + 1), UNKNOWN, np.int32)
        for low in range(MAX_YEARS + 1):
            for high in range(low, MAX_YEARS + 1):
                out[low, high] = self.bin_of(low, high, policy)
        return out

    def range_of_name(self, text):
        """The (low, high) of the bin called `text` (any case), or None."""
        lowered = text.strip().lower()
        for name, bounds in zip(self.names, self.ranges, strict=True):
            if name.lower() == lowered:
                return bounds
        return None

    def as_dict(self):
        return {"names": list(self.names), "ranges": [list(r) for r in self.ranges]}

    @classmethod
    def from_dict(cls, d):
        return cls(tuple(d["names"]), tuple(tuple(r) for r in d["ranges"]))


def _bins(spec_items):
    names, ranges = zip(*spec_items, strict=True)
    return AgeBins(tuple(names), tuple(ranges))


ADIENCE = _bins([(f"({lo}, {hi})", (lo, hi)) for lo, hi in
                 ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))])
SCHEMES = {
    "adience": ADIENCE,  # Levi & Hassner's 8 groups (Sec. 4.1).
    "three": _bins([("young", (13, 30)), ("middle", (31, 50)), ("old", (51, MAX_YEARS))]),  # IMFDB-style.
    # Twelve bins that split UTKFace's ages into shares of similar size.
    "utk12": _bins([(f"{lo}-{hi}" if hi < MAX_YEARS else f"{lo}+", (lo, hi)) for lo, hi in
                    ((1, 3), (4, 10), (11, 17), (18, 22), (23, 26), (27, 32), (33, 37), (38, 45), (46, 53),
                     (54, 62), (63, 73), (74, MAX_YEARS))]),
}


def parse_bins(spec, flag="--age_bins"):
    """The AgeBins of --age_bins (or of `flag`, named in errors): a scheme name (SCHEMES)
    or a comma-separated list of bins from young to old, each `low-high` or `low+`,
    optionally named: `young=13-30`."""
    spec = spec.strip()
    if spec in SCHEMES:
        return SCHEMES[spec]
    items = []
    for item in (part.strip() for part in spec.split(",")):
        name, _, bounds = item.rpartition("=")
        match = _BIN_RE.match(bounds.strip())
        if not match:
            raise ValueError(f"{flag}: {item!r} is not a bin such as 13-30, 51+ or young=13-30; give one of "
                             f"{', '.join(SCHEMES)} or a list like 0-12,13-30,31-50,51+")
        low = int(match.group(1))
        high = MAX_YEARS if match.group(3) else int(match.group(2))
        items.append((name.strip() or bounds.strip(), (low, high)))
    try:
        return _bins(items)
    except ValueError as e:
        raise ValueError(f"{flag}: {e}") from None


def check_policy(policy):
    if policy not in POLICIES:
        raise ValueError(f"label policy must be one of {POLICIES}, got {policy!r}")


def age_from_years(years):
    """(years, years) of an age in years, or unknown when it is outside 0..MAX_YEARS."""
    return (years, years) if 0 <= years <= MAX_YEARS else (UNKNOWN, UNKNOWN)


def age_from_text(text, policy, bins=ADIENCE, bare_numbers=True):
    """(low, high) of an age as a source writes it: years ("26"), an Adience range
    ("(25, 32)"), a bin range ("13-30", "51+") or a bin name of `bins` ("YOUNG"), else
    (-1, -1). Under strict a range or name must be one of `bins` or of Adience's 8, and
    bare numbers count only where they are years (`bare_numbers`; an Adience fold
    file's are noise)."""
    check_policy(policy)
    text = text.strip()
    if text.isdigit():
        return age_from_years(int(text)) if bare_numbers or policy == "nearest" else (UNKNOWN, UNKNOWN)
    bounds = bins.range_of_name(text)
    if bounds is None:
        match = _ADIENCE_RANGE_RE.match(text) or _BIN_RE.match(text)
        if not match:
            return UNKNOWN, UNKNOWN
        low = int(match.group(1))
        high = MAX_YEARS if match.group(match.re.groups) == "+" else int(match.group(2))
        bounds = (min(low, high), max(low, high))
        if bounds[1] > MAX_YEARS:
            return UNKNOWN, UNKNOWN
        # Strict: a bin exactly as written ("(32, 25)" is not Adience's "(25, 32)").
        if policy == "strict" and ((low, high) not in bins.ranges and (low, high) not in ADIENCE.ranges):
            return UNKNOWN, UNKNOWN
    return bounds


def gender_label(text):
    """0 for 'm', 1 for 'f' (any case, blanks around ignored); else UNKNOWN."""
    text = text.strip().lower()
    return GENDER_CLASSES.index(text) if text in GENDER_CLASSES else UNKNOWN


def age_key(low, high):
    """The manifest's name of an age: "26", "25-32", or "unknown"."""
    if low < 0:
        return "unknown"
    return str(low) if low == high else f"{low}-{high}"


def parse_age_key(key):
    """(low, high) of age_key's name."""
    if key == "unknown":
        return UNKNOWN, UNKNOWN
    low, _, high = key.partition("-")
    return int(low), int(high or low)


def bin_counts(age_counts, bins, policy):
    """{bin name: count, ..., "unknown": count} of a manifest's {age_key: count}."""
    counts = dict.fromkeys(bins.names, 0)
    counts["unknown"] = 0
    for key, n in age_counts.items():
        index = bins.bin_of(*parse_age_key(key), policy)
        counts[bins.names[index] if index >= 0 else "unknown"] += n
    return counts


def years_known(age_counts):
    """How many of a manifest's {age_key: count} are exact ages (what age_years learns from)."""
    return sum(n for key, n in age_counts.items() if key != "unknown" and "-" not in key)


def class_counts(counter, class_names):
    """{class name: count, ..., "unknown": count} of a Counter of labels, as in the manifest."""
    counts = {name: counter[label] for label, name in enumerate(class_names)}
    counts["unknown"] = counter[UNKNOWN]
    return counts


def resolve_heads(heads, task):
    """The heads to train, in HEADS order: `heads` if given, else those of the old --task."""
    chosen = tuple(heads) or TASK_HEADS.get(task, ())
    if not chosen:
        raise ValueError(f"task must be one of {tuple(TASK_HEADS)}, got {task!r}")
    unknown = [h for h in chosen if h not in HEADS]
    if unknown:
        raise ValueError(f"unknown head(s) {', '.join(unknown)}; heads are {', '.join(HEADS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"a head is named twice in {','.join(chosen)}")
    return tuple(h for h in HEADS if h in chosen)


def class_names(heads, age_bins, race_classes):
    """{head: class names} of the classification heads among `heads` (age_years has none)."""
    names = {"age": tuple(age_bins.names), "gender": GENDER_CLASSES, "race": tuple(race_classes)}
    return {head: names[head] for head in heads if head != "age_years"}


def head_sizes(heads, age_bins, race_classes):
    """{head: number of outputs} (the model's logits per head)."""
    sizes = {head: len(names) for head, names in class_names(heads, age_bins, race_classes).items()}
    if "age_years" in heads:
        sizes["age_years"] = YEARS
    return {head: sizes[head] for head in heads}
