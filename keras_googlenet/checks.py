"""The rules that numbers and choices of the API and the flags must follow,
each written once, with keras.applications' wording ("... must be a
positive integer. Received: batch_size=0").

A `Rule` says what a value must be (`expected`, worded to follow "must be"),
what a flag's text is read as (`kind`) and the test of a value of that kind.
Floats must be finite under every rule: inf passes `x > 0` and nan fails
every comparison, and either only shows up later as a diverged run.
`check` and `choice` serve Python callers and the config dataclasses, whose
fields name their rule in their metadata; `cli.flags` turns the same rules
into argparse types. Nothing here imports Keras or TensorFlow.
"""
import math
from typing import Callable, NamedTuple


class Rule(NamedTuple):
    expected: str
    kind: type
    accept: Callable


INTEGER = Rule("an integer", int, lambda v: True)
POSITIVE_INT = Rule("a positive integer", int, lambda v: v >= 1)
NON_NEGATIVE_INT = Rule("an integer >= 0", int, lambda v: v >= 0)
# keras.utils.set_random_seed's range.
SEED = Rule("an integer in [0, 2**32 - 1]", int, lambda v: 0 <= v <= 2**32 - 1)
FINITE = Rule("a finite number", float, lambda v: True)
POSITIVE = Rule("positive", float, lambda v: v > 0)
NON_NEGATIVE = Rule(">= 0", float, lambda v: v >= 0)
# Crop areas, decay factors: 0 would leave nothing.
FRACTION = Rule("in (0, 1]", float, lambda v: 0 < v <= 1)
# Momentum, dropout, smoothing, held-out shares: 1 would leave nothing.
PROPER_FRACTION = Rule("in [0, 1)", float, lambda v: 0 <= v < 1)
# A folder's hold-out: 0 validates on the training images.
HOLDOUT_FRACTION = Rule("in [0, 1) (0 validates on the training images)", float,
                        lambda v: 0 <= v < 1)


def passes(rule, value):
    """Whether `value` is of the rule's kind (no bool; floats finite) and
    passes its test."""
    if isinstance(value, bool):
        return False
    if rule.kind is int:
        ok = isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu")
    else:
        ok = isinstance(value, (int, float)) or (
            hasattr(value, "dtype") and value.dtype.kind in "iuf")
        ok = ok and math.isfinite(value)
    return bool(ok and rule.accept(value))


def _label(name, flag):
    return f"--{name.replace('_', '-')}" if flag else f"`{name}`"


def _expected(rule, value):
    """What to say a value must be: a float that is not finite is told so
    first (inf would otherwise read as "must be positive. Received: inf")."""
    if (rule.kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)
            and not math.isfinite(value)):
        return "a finite number"
    return rule.expected


def check(name, value, rule, flag=False):
    """`value`, or a ValueError naming it ("`name`", or "--name" for a flag)
    when it breaks `rule`."""
    if not passes(rule, value):
        raise ValueError(f"{_label(name, flag)} must be {_expected(rule, value)}. "
                         f"Received: {name}={value!r}")
    return value


def choice(name, value, choices, flag=False):
    """`value`, or a ValueError listing `choices` when it is not one of them."""
    if value not in choices:
        raise ValueError(f"{_label(name, flag)} must be one of {tuple(choices)}. "
                         f"Received: {name}={value!r}")
    return value


def parse(rule, text):
    """A flag's text read as the rule's kind and checked; a ValueError
    "must be ... Received: 'TEXT'" (what argparse shows after the flag)."""
    try:
        value = rule.kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not passes(rule, value):
        raise ValueError(f"must be {_expected(rule, value)}. Received: {text!r}")
    return value
