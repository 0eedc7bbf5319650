"""docs/implementations.md, generated from the registry: every row, what it is, what it shows and what it can do.

`make run` and `make report` rewrite the page (for the repository's results/); a test checks that the committed page is
what the registry gives, so a new row or a new capability reaches the page or fails the suite.
"""
from dataclasses import fields
from pathlib import Path

from comparisons.core import registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "implementations.md"
MARK = ("<!-- generated from comparisons/core/registry.py by `make report` (comparisons/report/implementations_page.py); "
        "do not edit by hand -->")
# the row's words, rendered in the first table
DESCRIPTIVE = ("name", "summary", "framework", "builder", "starter", "title", "note", "details")
# column header and how a value reads, for every capability field (and the ones derived from them)
CAPABILITIES = {
    "minibatch": ("follows --batch-size", lambda v: "yes" if v else ""),
    "checks_gradient": ("checks autodiff every step", lambda v: "yes" if v else ""),
    "stops_at_divergence": ("stops itself at divergence", lambda v: "yes" if v else "no: the study reruns to the point"),
    "distributed": ("distributed", lambda v: {"replicas": "over --replicas devices",
                                              "workers": "over --workers processes"}.get(v, "")),
    "own_process": ("in its own processes, timed there", lambda v: "yes" if v else ""),
    "route": ("route", lambda v: v),
    "python_loop": ("updates from a Python loop", lambda v: "yes" if v else ""),
    "step_cost_s": None,  # a planning guess (iteration counts), not a fact about the row: not shown
    "sweeps": ("in lr_sweep and scaling", lambda v: "yes" if v else ""),
    "one_dtype_enough": ("one dtype with --dtype both", lambda v: "yes: the last" if v else ""),
}
REFERENCES = ("| `ols`, `true` | reference | References: least squares on `[X, 1]` (float64; its timed solve is the `ols` "
              "row of `timings.csv`), and the generator's parameters. |")
INTRO = """Every way of training is one row of `comparisons/core/registry.py` (its name, a one-line summary, a title for
readers, its framework, its builder and its capabilities); the command line, the run plan, the experiments, the tables,
the figures and the report read their lists from there, and this page is generated from it. Measured times are in
`results/timings.csv` and the report, never here. Adding a row: [adding-an-implementation.md](adding-an-implementation.md)."""
PYTORCH = """PyTorch is not in the study: PyPI serves only its CUDA build for Linux (about 4 GB of nvidia packages), with
no CPU-only wheel there, too heavy for `make run`'s one-step set-up."""


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows=None):
    """The page's markdown for `rows` (the registry's Implementations, in table order, by default)."""
    rows = list(registry.REGISTRY.values()) if rows is None else list(rows)
    shown = [(name, spec) for name, spec in CAPABILITIES.items() if spec is not None]
    lines = ["# The implementations", "", MARK, "", INTRO, "", "## What each row is", "",
             "| name | framework | what it is, and what it shows |", "|---|---|---|"]
    for impl in rows:
        label = f"`{impl.name}`" + (f" ({impl.title})" if impl.title else "")
        lines.append(f"| {label} | {impl.framework} | {_cell(impl.details or impl.summary)} |")
    lines += [REFERENCES, "", "## What each row can do", "",
              "The capabilities the study acts on (it never compares names); an empty cell is no.", "",
              "| name | " + " | ".join(header for _, (header, _) in shown) + " |",
              "|---|" + "---|" * len(shown)]
    for impl in rows:
        lines.append(f"| `{impl.name}` | " + " | ".join(_cell(show(getattr(impl, name))) for name, (_, show) in shown)
                     + " |")
    minibatch = [f"`{impl.name}`" for impl in rows if impl.minibatch]
    lines += ["", f"Mini-batch and stochastic runs (`--batch-size`) are supported by the rows that follow a sample order "
              f"({', '.join(minibatch)}); all follow the same seeded permutation (each epoch a new one; rows keep their "
              "data order within a batch, so a batch of all n rows is exactly full-batch descent).", "", PYTORCH, ""]
    return "\n".join(lines)


def undescribed_fields():
    """Implementation fields neither described nor given a capability column (a new flag must choose one)."""
    return [f.name for f in fields(registry.Implementation) if f.name not in DESCRIPTIVE and f.name not in CAPABILITIES]


def sync(results_dir, path=PAGE):
    """Rewrite the page from the registry when `results_dir` is the repository's results/ (`make run`, `make report`).

    Returns the path when its text changed, else None (also for any other folder: a test's or a user's).
    """
    if Path(results_dir).resolve() != path.parents[1] / "results":
        return None
    text = render()
    if path.exists() and path.read_text() == text:
        return None
    path.write_text(text)
    return path
