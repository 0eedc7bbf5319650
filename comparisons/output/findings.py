"""The Findings as records of facts, each rendered by its one template.

A finding is a `Finding(kind, facts, template)`: `facts` holds every number and name the bullet shows,
read from the tables (by comparisons/report/facts.py for the single run, by each experiment's
`findings(table)` for its own); `template` is the one sentence pattern that shows them (for the single
run's findings, `TEMPLATES[kind]`). Tests check
the facts (against numbers computed by hand from doctored tables) and the rendered length, not the
wording. Field formats beyond Python's: `:t` a duration or a (low, high) span of them, `:n` a count
with thousands separators, `:r` a count rounded to two significant figures, `:x` a speed ratio, `:l`
a list joined with commas and "and" (`:l.2g` each item so formatted), `:e` a number of eps.
"""
import math
import string
from dataclasses import dataclass, field

from comparisons.output.prose import duration, join, ratio, span

MAX_WORDS = 60  # the longest a bullet may be (its answer in bold, then the numbers that carry it)


@dataclass(frozen=True)
class Finding:
    """One bullet: which template, and the facts it shows."""

    kind: str
    facts: dict = field(default_factory=dict)
    template: str | None = None  # its sentence pattern; None: TEMPLATES[kind] (the single run's findings)


def rounded(count, up=False):
    """A count rounded to two significant figures, down (or up): what a timing of a few samples carries."""
    if not math.isfinite(count) or count <= 0:
        return count
    step = 10 ** max(0, int(math.floor(math.log10(count))) - 1)
    return int((math.ceil if up else math.floor)(count / step) * step)


class _Words(string.Formatter):
    """str.format with the study's units (see the module's docstring)."""

    def format_field(self, value, spec):
        if spec == "t":
            return span(*value) if isinstance(value, tuple) else duration(value)
        if spec == "n":
            return f"{int(value):,}"
        if spec == "r":
            if isinstance(value, tuple):
                low, high = rounded(value[0]), rounded(value[1], up=True)
                return f"{low:,}" if low == high else f"{low:,}-{high:,}"
            return f"{rounded(value):,}"
        if spec == "x":
            if isinstance(value, tuple):
                low, high = value
                return f"{low:.2g}x" if f"{low:.2g}" == f"{high:.2g}" else f"{low:.2g}-{high:.2g}x"
            return ratio(value)
        if spec.startswith("l"):  # a list, each item formatted by the rest of the spec (`:l.2g`)
            return join(format(v, spec[1:]) for v in value)
        if spec == "e":
            return f"{value:.2g}" if value < 100 else f"{value:,.0f}"
        return super().format_field(value, spec)


TEMPLATES = {
    "same_numbers": (
        "**Same numbers: yes.** In {dtype}, the {ways} ways that run the lesson's loop match numpy's loss curve to "
        "{worst:e} eps (eps = {eps:.1e}, the spacing of {dtype} numbers near 1): a few rounding errors. "
        "Autodiff equals the lesson's gradient formula to {grad:e} eps at every step."),
    "same_numbers_gram": ("The shortcut routes (X^T X first: {gram_routes:n}) reach {gram_worst:e} eps, inside the "
                          "rounding bound."),
    "same_numbers_no": (
        "**Same numbers: no, for {count} runs:** {runs:l} left the tolerance; in {dtype} the other ways reproduce "
        "numpy's loss curve to within {worst:e} eps (eps = {eps:.1e})."),
    "same_numbers_alone": "**Nothing to compare:** only one way of training ran.",
    # the cost finding: its opening, then a sentence on the ways faster per update and one on those slower
    "cost": "**Cost, in {dtype} at n = {n:n}: numpy takes {numpy_update:t} per update, {numpy_first:t} for its first run.**",
    "cost_faster": ("{faster_count} compiled loops ({faster:l}) take {faster_update:t}, but their first call, spent "
                    "compiling, takes {faster_first:t}."),
    "cost_none_faster": "No other way is faster per update beyond the noise.",
    "cost_slower": "{slower_count} ways are slower per update, up to {slowest} at {slowest_update:t}.",
    "cost_none_slower": "No way is slower per update beyond the noise.",
    "payoff": (
        "**A framework pays off only for long runs:** in {dtype} at n = {n:n} a compiled loop is {speedup:x} "
        "faster per update, so it overtakes numpy after {break_even:r} updates (this run made {iterations:n})."),
    "payoff_scaling": ("In the scaling runs ({scaling_dtype}, n up to {largest:n}) a framework's loop beat numpy per "
                       "update at n x m = {sizes:l}."),
    "payoff_scaling_none": ("In the scaling runs ({scaling_dtype}, n up to {largest:n}) no framework's loop beat numpy "
                            "per update beyond the noise."),
    "payoff_never": "**No framework pays off at n = {n:n} in {dtype}:** none is faster per update than numpy beyond the noise.",
    "fit_trap": (
        "**Avoid `model.fit(X, y, epochs=N)` for many full-batch steps:** every epoch re-enters Keras' Python "
        "loop, so in {dtype} an update costs {trap_update:t}, {trap_ratio:x} numpy's speed; feeding a repeated "
        "`tf.data` batch with `steps_per_execution` makes it {fit_update:t}."),
    "least_squares": (
        "**Descent reaches the least-squares answer:** after {iterations:n} {word} every run is within {gap:.2g} of "
        "it in {dtype} (relative to each parameter), and that answer is {errors:l.2g} standard errors "
        "({parameters:l}) from the generator's parameters: the noise in y, not the descent, sets that gap."),
    "least_squares_no_errors": (
        "**Descent reaches the least-squares answer:** after {iterations:n} {word} every run is within {gap:.2g} of "
        "it in {dtype} (relative to each parameter)."),
    "least_squares_not_yet": (
        "**Descent has not reached the least-squares answer yet:** after {iterations:n} {word} the runs are "
        "{gap:.2g} from it in {dtype} (relative to each parameter)."),
    "least_squares_wanders": (
        "**Mini-batch descent with a fixed step wanders around the least-squares answer** (batches of {batch}): "
        "after {iterations:n} {word} the runs are {gap:.2g} from it in {dtype}."),
    "least_squares_none": "**No run finished its iterations**, so none is compared with least squares.",
    "not_measured": "**Not measured in this run:** {what:l}.",
}


def joined(first, second):
    """One bullet of two findings: their facts together, the second's sentence after the first's."""
    shared = set(first.facts) & set(second.facts)
    if any(first.facts[k] != second.facts[k] for k in shared):
        raise ValueError(f"{first.kind} and {second.kind} give one fact two values: {sorted(shared)}")
    return Finding(first.kind, {**first.facts, **second.facts},
                   f"{first.template or TEMPLATES[first.kind]} {second.template or TEMPLATES[second.kind]}")


def render(finding):
    """The bullet's markdown: its template filled with its facts."""
    return _Words().format(finding.template or TEMPLATES[finding.kind], **finding.facts)


def words(text):
    """How many words a rendered bullet has (markdown marks are not words)."""
    return len([w for w in text.replace("**", " ").split() if any(c.isalnum() for c in w)])
