"""Shared test set-up: quiet TensorFlow, the lesson's data, the repository root, and ways to run the driver."""
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent

# modules whose import costs seconds (TensorFlow, Keras) or a noticeable fraction of one (numpy, pandas, matplotlib)
HEAVY_MODULES = ("tensorflow", "keras", "numpy", "pandas", "matplotlib")


@dataclass(frozen=True)
class Finished:
    """What a driver run left: its exit code and what it printed (the shape of subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


def run_driver(capsys, *args):
    """run_all.main(args) in this process; the stdout and stderr it printed are captured."""
    import run_all

    capsys.readouterr()  # drop whatever earlier set-up printed
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = run_all.main([str(a) for a in args])
    finally:
        for sig, handler in handlers.items():  # main installs its own for the run; pytest keeps the ones it had
            signal.signal(sig, handler)
    captured = capsys.readouterr()
    return Finished(code, captured.out, captured.err)


def sigint_as_in_a_terminal():
    """preexec_fn for a child a test interrupts: SIGINT back to its default, so Python raises KeyboardInterrupt.

    A suite started in the background (`cmd &` in a script, nohup) runs with SIGINT ignored, and
    children inherit that: the interrupt tests would then wait for a Ctrl-C that cannot arrive.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_driver_process(*args, cwd=REPO, timeout=600):
    """`python run_all.py args` in a subprocess, as a user runs it; the environment is the user's."""
    return subprocess.run([sys.executable, str(REPO / "run_all.py"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


# A fresh interpreter runs run_all.main on each argument list it reads (JSON on stdin) and reports, after each,
# its exit code and which HEAVY_MODULES are loaded by then: what a user's process would have imported.
_IMPORT_PROBE = """
import contextlib, io, json, sys
sys.path.insert(0, {repo!r})
import run_all
report = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = run_all.main(argv)
        except SystemExit as exc:  # --help
            code = exc.code
    report.append({{"code": code, "stderr": err.getvalue(),
                    "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}})
print(json.dumps(report))
"""


def imports_of_runs(argvs, cwd=REPO, timeout=600):
    """Run each argument list through run_all.main in one fresh interpreter, in order; per run: code, stderr, heavy modules loaded.

    Modules stay loaded, so a module listed after run k was imported by run k or an earlier one.
    """
    script = _IMPORT_PROBE.format(repo=str(REPO), heavy=HEAVY_MODULES)
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps([list(map(str, a)) for a in argvs]),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def legend_clear_of_axes(ax):
    """True when ax's legend, laid out as drawn, leaves the plotting area free (it hides no line or point)."""
    renderer = ax.figure.canvas.get_renderer()
    return not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def mark_as_results(folder):
    """Make `folder` look like an earlier run's results to the driver: the environment.json every run writes, signed."""
    from comparisons.output.out_folder import SIGNATURE, SIGNATURE_KEY

    (folder / "environment.json").write_text(json.dumps({SIGNATURE_KEY: SIGNATURE, "command_line": ["run_all.py"]}))
    return folder


@pytest.fixture
def earlier_results(tmp_path):
    """An earlier run's results folder (signed, a report.md of known bytes), alone in its parent tmp_path/out."""
    folder = tmp_path / "out" / "results"
    folder.mkdir(parents=True)
    (folder / "report.md").write_text("# an earlier run\n")
    return mark_as_results(folder)


@pytest.fixture
def report_skipped(monkeypatch):
    """In-process driver runs write a one-line report.md instead of drawing the report and its figures from the tables.

    For tests of where a run's results go and what it leaves behind, which read no report: drawing it is
    most of a small run's time. The report itself is checked by test_end_to_end (a whole study's, rebuilt
    from its tables), test_report and test_figures.
    """
    from comparisons.report import document

    def one_line(folder, **_):
        (folder / "report.md").write_text("# the report (not drawn in this test)\n")
        return folder / "report.md"

    monkeypatch.setattr(document, "build", one_line)


def snapshot(folder):
    """Every file under folder, path -> bytes: equal snapshots mean nothing was touched."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pytest_collection_modifyitems(config, items):
    """Slow tests first, each file's in its own order, then the rest.

    `make test` hands whole files to two xdist workers in the order their first test appears here
    (--dist loadfile --no-loadscope-reorder): the files with long subprocess runs start first and
    the quick files fill in, so both workers finish near the same time. A file stays on one worker,
    so its module fixtures (the shared --quick study) run once.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: False (slow) first


@pytest.fixture(scope="session")
def lesson_data():
    """The lesson's data set (n = 100, one feature) and the shared initial parameters."""
    from comparisons.inputs.data import initial_parameters, make_synthetic

    data = make_synthetic(100, 1, 0.5, seed=0)
    return data, initial_parameters(1, seed=0)


# updates of the runs the equivalence and Gram tests share through lesson_trainer / lesson_run: small, yet long
# enough for the curves to reach the slow part of their descent
LESSON_ITERATIONS = 60


@pytest.fixture(scope="session")
def keras_jax_shared():
    """One keras:jax child for the session's lesson runs (keras_jax_child.shared_child, as a study has one)."""
    from comparisons.running.keras_jax_child import shared_child

    with shared_child():
        yield


@pytest.fixture(scope="session")
def lesson_trainer(lesson_data, tf_ready, keras_jax_shared):
    """lesson_trainer(name, dtype, iterations): `name`'s trainer on the lesson's data (lr 0.05), built once per session.

    A trainer takes its rate at call time, so the tests of other rates (divergence, one trainer for
    several rates) and of a failing check call the same traced (and compiled) trainer; keras:jax's runs
    share one child (keras_jax_shared).
    """
    from functools import cache

    from comparisons.running.implementations import make_trainer

    data, _ = lesson_data

    @cache
    def build(name, dtype, iterations):
        return make_trainer(name, data.X.astype(dtype), data.y.astype(dtype), 0.05, iterations)

    return build


@pytest.fixture(scope="session")
def lesson_run(lesson_data, lesson_trainer):
    """lesson_run(name, dtype, iterations): the lesson_trainer's run from the shared start at lr 0.05, made once.

    Several tests check different properties of the same run (its curve against numpy, its per-step
    gradient checks, its finite differences, its compile mode).
    """
    from functools import cache

    _, (W0, b0) = lesson_data

    @cache
    def run(name, dtype, iterations):
        return lesson_trainer(name, dtype, iterations)(W0, b0)

    return run


@pytest.fixture(scope="session")
def tf_ready():
    """TensorFlow imported quietly, TF32 off and op determinism on, as in equivalence runs."""
    from tf_models.quiet_import import import_tensorflow

    tf = import_tensorflow()
    from tf_models.devices import configure_numerics

    configure_numerics(seed=0, deterministic=True)
    return tf
