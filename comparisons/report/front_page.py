"""The README's generated parts, rendered from a results folder: what each code block prints, and 'which to use when'.

A generated part sits between two marker comments,

    <!-- generated: KEY (by `make report` from results/; do not edit by hand) -->
    ...
    <!-- end generated: KEY -->

where KEY is `output NAME` (the line the code block above prints, then the registry row NAME's
numbers and times in the committed run) or `which to use` (report.use_when_markdown). The
findings keep their own markers (report.FINDINGS_START). `rewrite` re-renders every generated part
of a README's text; `sync_readme` calls it when the folder is the repository's results/.
"""
import re
from pathlib import Path

import numpy as np

from comparisons.core import registry
from comparisons.output.prose import duration, join, named, span
from comparisons.core.registry import REFERENCE
from comparisons.report import document as report, facts, reading

START = "<!-- generated: {key} (by `make report` from results/; do not edit by hand) -->"
END = "<!-- end generated: {key} -->"
_BLOCK = re.compile(r"<!-- generated: (?P<key>.+?) \(by `make report` from results/; do not edit by hand\) -->\n"
                    r"(?P<body>.*?)<!-- end generated: (?P=key) -->", re.S)
OUTPUT_DTYPE = "float64"  # the README's code blocks train in float64, like the lesson's numpy


def printed_line(weights, bias, loss):
    """The line every README code block prints: 'W = 2.87782  b = 4.14147  loss = 0.258997' (6 significant digits)."""
    return f"W = {', '.join(f'{w:.6g}' for w in weights)}  b = {bias:.6g}  loss = {loss:.6g}"


def parse_printed(line):
    """(weights, bias, loss) from a printed_line, as floats."""
    match = re.fullmatch(r"W = (?P<W>.+?)  b = (?P<b>\S+)  loss = (?P<loss>\S+)", line.strip())
    if match is None:
        raise ValueError(f"not a printed result line: {line!r}")
    return [float(w) for w in match["W"].split(", ")], float(match["b"]), float(match["loss"])


def _row_numbers(tables, name):
    """(weights, bias, final loss, device) of the run `name` in OUTPUT_DTYPE (else its first dtype), or None."""
    runs = tables["runs"]
    rows = runs[(runs.implementation == name) & (runs.status == "ok")]
    if rows.empty:
        return None
    preferred = rows[rows["dtype"] == OUTPUT_DTYPE]
    run = (preferred if len(preferred) else rows).iloc[0]
    w = tables["weights"]
    mine = w[(w.implementation == name) & (w.device == run.device) & (w["dtype"] == run["dtype"])]
    weights = mine[mine.parameter != "bias"].value.to_numpy(float)
    bias = float(mine[mine.parameter == "bias"].value.iloc[0])
    return weights, bias, float(run.final_loss), run.device, run["dtype"]


def output_block(tables, name):
    """What the code block for `name` prints, fenced, then that row's first call and steady time in the committed run."""

    numbers = _row_numbers(tables, name)
    substitute = numbers is None
    if substitute:  # no such row in this run: every way of training gives numpy's numbers (see the findings)
        numbers = _row_numbers(tables, REFERENCE)
        if numbers is None:
            return "_neither this row nor numpy's ran in the committed run_\n"
    weights, bias, loss, device, dtype = numbers
    config = tables["config"]
    lines = ["```text", printed_line(weights, bias, loss), "```"]
    if substitute:
        lines.append(f"The committed run has no `{name}` row yet; the line above is numpy's ({device}, {dtype}), which "
                     "every way of training reproduces to the digits printed.")
        return "\n".join(lines) + "\n"
    t = reading.timed(tables["timings"])
    row = t[(t.implementation == name) & (t.device == device) & (t["dtype"] == dtype)]
    impl = registry.REGISTRY.get(name)
    where = f"In the committed run ({device}, {dtype}, {config['iterations']:,} updates, lr {config['lr']:g})"
    if row.empty:
        lines.append(f"{where}: not timed.")
    else:
        r = row.iloc[0]
        compiles = impl is not None and impl.framework != registry.get(REFERENCE).framework  # numpy traces nothing
        k = r.iterations  # per update, as the 'which to use when' table gives it: one number per quantity
        steady = (f"then {duration(r.median_s / k)} per update (median of {int(r.repeats)} runs, interval "
                  f"{span(r.median_low_s / k, r.median_high_s / k)})" if r.repeats else "no timed repeat after it")
        lines.append(f"{where}: first call {duration(r.first_call_s)}"
                     + (" (tracing and compiling included)" if compiles else "") + f", {steady}.")
    lines[-1] += (f" That is the study's {named(registry.label(name))} row"
                  + (f": {impl.summary}." if impl else "."))
    return "\n".join(lines) + "\n"


def render(key, tables):
    """The text of one generated part (without its markers)."""

    if key == "which to use":
        return report.use_when_markdown(tables, image_prefix="results/", code=False) + "\n"
    kind, _, name = key.partition(" ")
    if kind == "output" and name:
        return output_block(tables, name)
    raise ValueError(f"unknown generated part {key!r} in the README")


def blocks_of(readme_text):
    """{key: body} of every generated part as it stands in a README's text."""
    return {m["key"]: m["body"] for m in _BLOCK.finditer(readme_text)}


def rewrite(readme_text, tables):
    """The README's text with every generated part rendered again from `tables` (reading.load of a folder)."""
    def again(match):
        key = match["key"]
        return START.format(key=key) + "\n" + render(key, tables) + END.format(key=key)
    return _BLOCK.sub(again, readme_text)


def close(printed, generated, digits=6):
    """Whether two printed result lines agree to the digits printed: each number within one unit of its 6th digit."""
    a, b = parse_printed(printed), parse_printed(generated)
    pairs = list(zip(a[0], b[0])) + [(a[1], b[1]), (a[2], b[2])]
    return len(a[0]) == len(b[0]) and all(
        abs(x - y) <= (1 + 1e-9) * 10.0 ** (np.floor(np.log10(max(abs(x), abs(y), 1e-300))) - digits + 1)
        for x, y in pairs)


def readme_block(results_dir):
    """The README's generated summary of a results folder: where it ran, then the findings."""
    t = reading.load(results_dir)
    env = t["environment"]
    gpus = report.machine_gpus(env)
    where = (f"{env.get('cpu_model')}, {env.get('cpu_cores_usable')} usable cores, "
             + (f"GPU {join(gpus)}" if gpus else "no GPU"))
    return "\n".join([report.FINDINGS_START, "",
                      f"From the committed default run in `results/` ({where}; `results/report.md` has the details):",
                      "", facts.findings_markdown(facts.findings(results_dir, t)), "", report.FINDINGS_END])


def sync_readme(results_dir):
    """Rewrite the README's generated parts (findings, code outputs, which to use when) when `results_dir` is the
    `results/` beside a README that has them."""
    d = Path(results_dir).resolve()
    readme = d.parent / "README.md"
    if d.name != "results" or not readme.exists():
        return None
    text = readme.read_text()
    if report.FINDINGS_START in text and report.FINDINGS_END in text:
        before, rest = text.split(report.FINDINGS_START, 1)
        text = before + readme_block(d) + rest.split(report.FINDINGS_END, 1)[1]
    elif not blocks_of(text):
        return None
    readme.write_text(rewrite(text, reading.load(d)))
    return readme


def readme_block_of(readme_text):
    """The generated block as it stands in a README's text (markers included), or None."""
    if report.FINDINGS_START not in readme_text:
        return None
    return report.FINDINGS_START + readme_text.split(report.FINDINGS_START, 1)[1].split(report.FINDINGS_END, 1)[0] + report.FINDINGS_END
