"""The studies beyond the lesson's single run. Each is one module with the same functions:

    run(ctx: ExperimentContext) -> pandas.DataFrame   # compute; the driver writes <NAME>.csv
    plot(table: pandas.DataFrame, out_dir: Path) -> list[Path]   # figures from the table alone
    report_section(table: pandas.DataFrame) -> str   # markdown for report.md, from the table alone
    findings(table: pandas.DataFrame) -> list[Finding]   # optional: at most two records (output/findings.py),
                                                         # the first the answer, each with its template

so figures and the report can be redrawn from the CSV without computing again. plot() saves the
Figure that a `figure(table)` function builds, so tests can inspect its artists.
"""
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from comparisons.core.config import EXPERIMENTS, StudyConfig


@dataclass(frozen=True)
class ExperimentContext:
    """What an experiment gets from the driver."""

    config: StudyConfig  # the whole run's configuration (seed, dtypes, quick/full, lr, ...)
    out_dir: Path  # the folder being written (a temporary one, renamed into place on success)
    devices: dict | tuple = ("cpu",)  # {framework: device labels} as the driver resolved them (one tuple: every framework)
    progress: object = field(default=None)  # callable(str) for live progress, or None
    data: object = None  # the single run's Dataset as trained (CSV, z-scored, ...); None: the lesson's generator
    initial: tuple | None = None  # its initial (W0 (m, 1), b0), shared with the single run

    def devices_for(self, framework):
        """The device labels that framework's rows run on (the CPU for numpy, and for a framework not loaded here)."""
        if framework == "numpy":
            return ("cpu",)
        if isinstance(self.devices, dict):
            return tuple(self.devices.get(framework, ("cpu",)))
        return tuple(self.devices)


def study_data(ctx):
    """(Dataset, W0, b0): the single run's data and start when given, else the generator at the config's sizes."""
    from comparisons.inputs.data import initial_parameters, make_synthetic

    if ctx.data is not None:
        return (ctx.data, *ctx.initial)
    config = ctx.config
    return (make_synthetic(config.n_samples, config.features, config.noise, config.seed),
            *initial_parameters(config.features, config.seed))


def load(name):
    """The module of experiment `name` (one of config.EXPERIMENTS)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}")
