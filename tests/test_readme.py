"""The README's front page: every Python block runs as it stands and prints the numbers generated beneath it, and
every generated part is what results/ gives (`make report` rewrites them; front_page.py renders them)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from comparisons.report import front_page, reading

from .conftest import REPO
from .test_report import edit_csv, write_folder

README = (REPO / "README.md").read_text()
FRAMEWORK_IMPORT = re.compile(r"^import (tensorflow|keras|jax)|^from (tensorflow|keras|jax)", re.M)


def python_blocks(text):
    """[(code, generated output key or None)]: each ```python block and the generated part right after it, if any."""
    out = []
    for match in re.finditer(r"```python\n(.*?)```\n", text, re.S):
        after = text[match.end():]
        following = re.match(r"\s*<!-- generated: (output .+?) \(by", after)
        out.append((match.group(1), following.group(1) if following else None))
    return out


BLOCKS = python_blocks(README)


def printed(body):
    """The result line in a generated output part: the first line of its ```text fence."""
    return re.search(r"```text\n(.*?)\n", body).group(1)


def test_the_readme_opens_top_down():
    order = ["![each way of training at a glance](results/headline.png)", "## The two commands", "make run",
             "make test", "## The same regression, four ways", "## Which to use when", "## What the study shows"]
    positions = [README.index(s) for s in order]
    assert positions == sorted(positions)
    assert "SPEC.md" not in README and "lesson-0.md" not in README  # not files of this repository
    keys = list(front_page.blocks_of(README))
    assert keys == ["output numpy", "output gradient_tape:xla", "output keras", "output jax", "which to use"]


def test_every_block_is_short_and_builds_the_lessons_data_itself():
    assert len(BLOCKS) >= 4
    for code, _ in BLOCKS:
        lines = [line for line in code.splitlines() if line.strip()]
        assert len(lines) <= 16, code
        assert "make_synthetic(100, 1, 0.5, 0)" in code and "initial_parameters(1, 0)" in code


# Runs the block files named on its command line one after another, each as __main__ in a namespace of its own,
# and prints, as its last line, per block: whether it finished, what it printed, and the traceback if it raised.
_BLOCK_RUNNER = """
import contextlib, io, json, runpy, sys, traceback
report = []
for path in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        report.append({"ok": True, "stdout": out.getvalue(), "error": ""})
    except BaseException:
        report.append({"ok": False, "stdout": out.getvalue(), "error": traceback.format_exc()})
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def block_runs(tmp_path_factory):
    """run(k): what README block k printed, run as it stands from the repository root; each block is run once.

    The framework blocks share one fresh interpreter (one TensorFlow, Keras and JAX start-up for all of
    them), each in a namespace of its own, as `python block.py` runs it: a name a block does not define or
    import itself fails it. A block without a framework runs alone, and only then.
    """
    folder, done = tmp_path_factory.mktemp("blocks"), {}

    def run(k):
        if k not in done:
            group = ([j for j, (code, _) in enumerate(BLOCKS) if FRAMEWORK_IMPORT.search(code)]
                     if FRAMEWORK_IMPORT.search(BLOCKS[k][0]) else [k])
            paths = []
            for j in group:
                paths.append(folder / f"block{j}.py")  # not numpy.py: the block imports numpy
                paths[-1].write_text(BLOCKS[j][0])
            env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            proc = subprocess.run([sys.executable, "-c", _BLOCK_RUNNER, *map(str, paths)], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, proc.stderr[-2000:]
            done.update(zip(group, json.loads(proc.stdout.strip().splitlines()[-1])))
        return done[k]

    return run


@pytest.mark.parametrize("k,key", [
    pytest.param(k, key, id=(key or f"block{k}").replace(" ", "-"),
                 marks=[pytest.mark.slow] if FRAMEWORK_IMPORT.search(code) else [])
    for k, (code, key) in enumerate(BLOCKS)])
def test_each_block_prints_the_numbers_generated_beneath_it(block_runs, k, key):
    done = block_runs(k)
    assert done["ok"], done["error"][-2000:]
    if key is None:
        return
    lines = [line for line in done["stdout"].splitlines() if line.startswith("W = ")]
    assert len(lines) == 1, done["stdout"]
    generated = printed(front_page.blocks_of(README)[key])
    assert front_page.close(lines[0], generated), (lines[0], generated)


def test_the_committed_generated_parts_are_what_results_give():
    tables = reading.load(REPO / "results")
    assert front_page.blocks_of(README) == front_page.blocks_of(front_page.rewrite(README, tables))


# --- the renderer, on doctored tables ------------------------------------------------------------------------

def test_output_part_reads_weights_loss_and_times_of_its_row(tmp_path):
    folder = write_folder(tmp_path / "results")
    tables = reading.load(folder)
    weights = tables["weights"]
    mine = weights[(weights.implementation == "gradient_tape:xla")].set_index("parameter").value
    body = front_page.render("output gradient_tape:xla", tables)
    assert printed(body) == f"W = {mine['x1']:.6g}  b = {mine['bias']:.6g}  loss = 0.25"
    assert "first call 900 ms (tracing and compiling included), then 3 us per update (median of 5 runs, interval 2.9-3.1 us)" in body
    assert "*GradientTape loop, XLA* row" in body
    edit_csv(folder, "runs", lambda t: t.assign(final_loss=np.where(t.implementation == "gradient_tape:xla", 0.5,
                                                                    t.final_loss)))
    assert printed(front_page.render("output gradient_tape:xla", reading.load(folder))).endswith("loss = 0.5")
    numpy_body = front_page.render("output numpy", tables)
    assert "first call 20 ms, then" in numpy_body  # numpy compiles nothing: no "tracing" claimed


def test_output_part_for_a_row_not_in_the_run_says_so(tmp_path):
    tables = reading.load(write_folder(tmp_path / "results"))
    body = front_page.render("output jax", tables)
    assert "The committed run has no `jax` row yet; the line above is numpy's (cpu, float64)" in body
    assert printed(body) == printed(front_page.render("output numpy", tables))


def test_rewrite_replaces_every_part_and_keeps_the_rest(tmp_path):
    tables = reading.load(write_folder(tmp_path / "results"))
    text = ("intro\n" + front_page.START.format(key="output numpy") + "\nstale\n" + front_page.END.format(key="output numpy")
            + "\nmiddle\n" + front_page.START.format(key="which to use") + "\nstale\n"
            + front_page.END.format(key="which to use") + "\nend\n")
    again = front_page.rewrite(text, tables)
    assert "stale" not in again and again.startswith("intro\n") and "\nmiddle\n" in again and again.endswith("\nend\n")
    assert "| GradientTape loop, XLA |" in again and "| 900 ms | 3 us (" in again
    with pytest.raises(ValueError, match="unknown generated part"):
        front_page.rewrite(text.replace("which to use", "what else"), tables)


def test_close_compares_to_the_digits_printed():
    line = "W = 2.87782  b = 4.14147  loss = 0.258997"
    assert front_page.close(line, "W = 2.87783  b = 4.14147  loss = 0.258997")  # one unit of the 6th digit
    assert not front_page.close(line, "W = 2.87785  b = 4.14147  loss = 0.258997")
    assert not front_page.close(line, "W = 2.87782  b = 4.14147  loss = 0.259")
    assert not front_page.close(line, "W = 2.87782, 1  b = 4.14147  loss = 0.258997")
    with pytest.raises(ValueError):
        front_page.parse_printed("W: 2.8")


def test_ci_runs_both_tiers_and_every_test_is_in_one():
    """make test deselects exactly what make test-long selects, and CI runs both: no test is left out of CI."""
    makefile = (REPO / "Makefile").read_text()
    recipes = {target: makefile.split(f"\n{target}: ")[1].split("\n")[1] for target in ("test", "test-long")}
    assert '-m "not long"' in recipes["test"] and "-m long" in recipes["test-long"]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci and "make test-long" in ci
