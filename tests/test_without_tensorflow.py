"""A study of numpy and JAX rows runs on a machine where TensorFlow cannot be imported (here: made unimportable).

The driver's run covers the JAX trainers in its own process (jax: the jitted loop, jax:eager: the Python
loop) and the keras:jax child it starts, each matching numpy in both dtypes.
"""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import REPO

BLOCKED = "tensorflow is not installed here (test stand-in)"


@pytest.mark.slow
def test_numpy_and_jax_rows_never_import_tensorflow(tmp_path):
    """A study of every row that needs no TensorFlow, report included, with TensorFlow made unimportable.

    20 updates and 1 timed repeat, as test_end_to_end's study: what is imported does not depend on how many.
    """
    fake = tmp_path / "blocked" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError({BLOCKED!r})\n")  # for the driver and every child it starts
    out = tmp_path / "out"
    script = (
        "import sys, run_all\n"
        f"code = run_all.main(['--only', 'numpy,jax,jax:eager,keras:jax', '--quick', '--iterations', '20', "
        f"'--repeats', '1', '--experiments', 'none', '--out', {str(out)!r}])\n"
        "print('TF_LOADED' if 'tensorflow' in sys.modules else 'TF_ABSENT')\n"
        "sys.exit(code)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), str(REPO)])}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "TF_ABSENT"
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs.implementation) == {"numpy", "jax", "jax:eager", "keras:jax"} and set(runs.status) == {"ok"}
    eq = pd.read_csv(out / "equivalence.csv")
    assert {(r.implementation, r.dtype) for r in eq.itertuples()} >= {
        (name, dtype) for name in ("jax", "jax:eager", "keras:jax") for dtype in ("float32", "float64")}
    assert (eq.max_rel_loss_diff <= eq.dtype.map({"float32": 1e-4, "float64": 1e-10})).all(), eq
    env_json = json.loads((out / "environment.json").read_text())
    assert not env_json.get("tensorflow")


def test_a_missing_jax_is_one_usage_line_naming_the_rows(tmp_path):
    fake = tmp_path / "blocked" / "jax"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('jax is not installed here (test stand-in)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), str(REPO)])}
    proc = subprocess.run([sys.executable, "run_all.py", "--only", "numpy,jax", "--experiments", "none", "--quick",
                           "--out", str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: JAX is needed by jax") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
