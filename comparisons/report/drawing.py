"""The figures of a results folder, drawn from its tables alone, optionally by two processes at once.

Each figure job is a name: one of STUDY_FIGURES (the single run's) or an experiment's (its module's plot()).
draw_all(folder, jobs, helper=True) starts a helper process (`python -m comparisons.report.drawing FOLDER
CLAIMS JOB...`) and both take jobs from the same list, in its order: a process claims a job by creating
its file in CLAIMS (only one creation succeeds), draws it and marks it done. A job the helper claimed but
did not finish (it failed or was ended) is drawn here afterwards, so the figures are the same either way,
and a figure that cannot be drawn fails here as it would without a helper. The driver uses the helper
only once nothing is timed any more (comparisons.pipeline): drawing is then the study's last CPU work.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from comparisons import experiments

STUDY_FIGURES = ("loss_curves", "timings", "headline", "fit")  # the single run's figures; any other job is an experiment
CLAIMS = ".figure-claims"  # the folder of claims, inside the results folder while the figures are drawn


def draw(results_dir, job):
    """Draw figure job `job` of `results_dir` (a STUDY_FIGURES name or an experiment's) from its tables."""
    import pandas as pd

    from comparisons.output import figures  # matplotlib with the Agg backend, loaded only to draw

    d = Path(results_dir)
    if job == "fit":
        data = pd.read_csv(d / "data.csv")
        figures.fitted_line(d, data.iloc[:, :1].to_numpy(), data.iloc[:, -1:].to_numpy())
    elif job in STUDY_FIGURES:
        getattr(figures, job)(d)
    else:
        experiments.load(job).plot(pd.read_csv(d / f"{job}.csv"), d)


def _claim(claims, job):
    """Whether this process got `job` (created its claim first)."""
    try:
        os.close(os.open(Path(claims) / job, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _done(claims, job):
    return Path(claims) / f"{job}.done"


def draw_claimed(results_dir, jobs, claims):
    """Draw, in order, every job of `jobs` no other process has claimed; each marked done once drawn."""
    for job in jobs:
        if _claim(claims, job):
            draw(results_dir, job)
            _done(claims, job).touch()


def draw_all(results_dir, jobs, helper=False):
    """Draw every job of `jobs` in `results_dir`; with helper=True a second process shares them (see the module)."""
    if not helper or len(jobs) < 2:
        for job in jobs:
            draw(results_dir, job)
        return
    claims = Path(results_dir) / CLAIMS
    shutil.rmtree(claims, ignore_errors=True)
    claims.mkdir()
    child = None
    try:
        child = subprocess.Popen([sys.executable, "-m", "comparisons.report.drawing", str(results_dir), str(claims),
                                  *jobs], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 cwd=Path(__file__).resolve().parents[2])
        draw_claimed(results_dir, jobs, claims)
        child.wait()
        for job in jobs:  # what the helper claimed and did not finish (it failed): drawn here
            if not _done(claims, job).exists():
                draw(results_dir, job)
    finally:
        if child is not None and child.poll() is None:  # this process failed or was interrupted: the helper goes too
            child.kill()
            child.wait()
        shutil.rmtree(claims, ignore_errors=True)


def main(argv):
    """`python -m comparisons.report.drawing FOLDER CLAIMS JOB...`: the helper's side of draw_all; exit status."""
    if len(argv) < 3:
        print("error: usage: python -m comparisons.report.drawing FOLDER CLAIMS JOB [JOB ...] (draw_all starts it)",
              file=sys.stderr)
        return 2
    folder, claims, jobs = argv[0], argv[1], argv[2:]
    try:
        draw_claimed(folder, jobs, claims)
    except Exception:  # noqa: BLE001 - the parent draws what is not done, and reports a real failure itself
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
