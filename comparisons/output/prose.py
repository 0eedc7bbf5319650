"""Markdown and sentence helpers shared by the report and the experiments' sections (formatting only)."""
import numpy as np


def cell(value, float_format="{:.6g}"):
    """One markdown table cell: floats through float_format, a bare | escaped so it cannot end the cell."""
    if isinstance(value, (float, np.floating)):
        return float_format.format(value)
    return str(value).replace("|", "\\|")


def md_table(frame, float_format="{:.6g}"):
    """A DataFrame as a markdown table (header, rule, one row per record)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v, float_format) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def join(items, last="and"):
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def plural(count, word, many=None):
    """'1 run', '3 runs' (or the given plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def run_label(implementation, device, dtype):
    """'`keras` [cpu, float32]': how the report names one run."""
    return f"`{implementation}` [{device}, {dtype}]"


def in_eps(value, dtype):
    """A relative difference in units of the dtype's machine epsilon."""
    return value / np.finfo(dtype).eps


def duration(seconds):
    """A time with a unit that keeps it short: '1.56 ms', '23.4 s'."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def ratio(x):
    """A speed ratio: '8.4x', or for a slower one '1/2000 of'."""
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 1:
        return f"{x:.2g}x"
    return f"1/{1 / x:,.0f} of"


def span(low, high):
    """A noise interval in one unit, the one `duration` picks for its high end: '0.98-1.06 ms' (one value if equal)."""
    if low == high:
        return duration(low)
    scale, unit = (1, "s") if high >= 1 else (1e3, "ms") if high >= 1e-3 else (1e6, "us")
    number = lambda v: f"{v:.0f}" if v >= 100 else f"{v:.3g}"
    return f"{number(low * scale)}-{number(high * scale)} {unit}"


def updates(count):
    """'1 update', '4,210 updates' (a count rounded up: a run makes whole updates)."""
    whole = int(np.ceil(count))
    return f"{whole:,} update" + ("" if whole == 1 else "s")


EPS_EXPLAINED = ("eps, the dtype's machine epsilon, is the relative gap between 1 and the next number it can hold: "
                 f"{np.finfo(np.float32).eps:.2g} in float32, {np.finfo(np.float64).eps:.2g} in float64; a few eps is "
                 "a few roundings")


def named(label):
    """A way of training's title in running prose, set apart because titles contain commas: '*Keras fit*'."""
    return f"*{label}*"
