"""The Findings of a results folder as records of facts (comparisons/output/findings.py renders them).

At most MAX_FINDINGS bullets. The first three answer a student's three questions (same numbers? what does
each cost? when does a framework pay off?) in one dtype (reading.headline_dtype); then the fit trap, least
squares, and a bullet from each experiment's `findings(table)` (one or two records joined) not kept for a
second reading; last, what was not measured.
"""
import re

import numpy as np
import pandas as pd

from comparisons.core import registry
from comparisons.core.config import EXPERIMENTS
from comparisons.core.registry import REFERENCE, REGISTRY
from comparisons.core.tolerances import CONVERGED, judged
from comparisons.output.findings import MAX_WORDS, TEMPLATES, Finding, joined, render, words
from comparisons.output.prose import in_eps, join, named
from comparisons.report.reading import (break_even_interval, descent_rows, experiment_tables, faster_beyond_noise,
                                        headline_dtype, lesson_loop, load, ols_gaps, ties_with_reference, timed,
                                        truth_in_errors)

MAX_FINDINGS = 10
# experiments whose findings are for a second reading: their answers stay in their own sections
SECOND_READING = ("distribution_support", "distributed", "scaling", "gram")


def anchor(heading):
    """The link target GitHub gives a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- the findings: records of facts (comparisons/output/findings.py renders them) -------------------------------------------

def agreement_facts(equivalence, grads, runs, dtype):
    """Finding: whether every way of training gives numpy's numbers in `dtype`, in eps; the Gram routes apart."""
    if equivalence.empty:
        return Finding("same_numbers_alone")
    eq = judged(equivalence)
    eps = float(np.finfo(dtype).eps)
    mine = eq[eq["dtype"] == dtype]
    mine = mine if len(mine) else eq
    streaming = mine[~mine.gram]
    worst = float(in_eps(streaming.max_rel_loss_diff.max(), dtype)) if len(streaming) else 0.0
    outside = eq[eq.within == "NO"]
    diverged = runs[runs.status != "ok"]
    if len(outside) or len(diverged):
        bad = ([f"{named(registry.label(r.implementation))} ({r.device}, {r.dtype})" for r in outside.itertuples()]
               + [f"{named(registry.label(r.implementation))} ({r.device}, {r.dtype}, {r.status})"
                  for r in diverged.itertuples()])
        return Finding("same_numbers_no", dict(count=len(bad), runs=bad, dtype=dtype, worst=worst, eps=eps))
    gram = mine[mine.gram]
    per_step = grads[(grads.method == "analytic_vs_autodiff") & (grads["dtype"] == dtype)].max_rel_diff
    # the ways within `worst`: the streaming ones and numpy itself (the Gram routes are counted apart)
    facts = dict(dtype=dtype, ways=streaming.implementation.nunique() + 1, worst=worst, eps=eps,
                 grad=float(in_eps(per_step.max(), dtype)) if len(per_step) else 0.0)
    if gram.empty:
        return Finding("same_numbers", facts)
    return joined(Finding("same_numbers_with_gram", facts, TEMPLATES["same_numbers"]),
                  Finding("same_numbers_gram", dict(gram_routes=gram.implementation.nunique(),
                                                    gram_worst=float(in_eps(gram.max_rel_loss_diff.max(), dtype)))))


def _speed_rows(timings, dtype):
    """(numpy's row, the lesson-loop rows of other ways that did numpy's updates) in `dtype`, or (None, None)."""
    t = descent_rows(timed(timings))
    t = t[t["dtype"] == dtype]
    refs = t[t.implementation == REFERENCE]
    if refs.empty:
        return None, None
    ref = refs.iloc[0]
    others = t[(t.implementation != REFERENCE) & t.implementation.map(lesson_loop) & (t.iterations == ref.iterations)
               & (t.device == ref.device)]
    return ref, others


def cost_facts(timings, dtype):
    """Finding: numpy's cost per update and first run, the ways faster per update beyond the noise, the slowest."""
    ref, others = _speed_rows(timings, dtype)
    if ref is None or others.empty:
        return None
    fast = others[others.apply(lambda r: faster_beyond_noise(r, ref), axis=1)]
    slow = others[others.apply(lambda r: r.median_s > ref.median_s and not ties_with_reference(r, ref), axis=1)]
    facts = dict(dtype=dtype, n=int(ref.n_samples), numpy_update=ref.median_s / ref.iterations,
                 numpy_first=ref.first_call_s, slower_count=len(slow))
    if fast.empty:
        faster = Finding("cost_none_faster")
    else:
        per = fast.median_s / fast.iterations
        faster = Finding("cost_faster", dict(
            faster_count=len(fast), faster=[named(registry.label(n)) for n in fast.implementation],
            faster_update=(float(per.min()), float(per.max())) if per.min() < per.max() else float(per.min()),
            faster_first=(float(fast.first_call_s.min()), float(fast.first_call_s.max()))))
    if slow.empty:
        slower = Finding("cost_none_slower")
    else:
        worst = slow.loc[slow.median_s.idxmax()]
        slower = Finding("cost_slower", dict(slowest=named(registry.label(worst.implementation)),
                                             slowest_update=worst.median_s / worst.iterations))
    # the kind names the case: a way faster and one slower ("cost"), none faster, none slower, or all tied
    kind = {(True, True): "cost", (False, True): "cost_none_faster", (True, False): "cost_none_slower",
            (False, False): "cost_ties"}[(not fast.empty, not slow.empty)]
    return joined(joined(Finding(kind, facts, TEMPLATES["cost"]), faster), slower)


def scaling_wins(scaling):
    """{implementation: [(n, m), ...]} where a framework's lesson loop beat numpy per update beyond the noise in scaling.csv.

    Each point's interval is the table's median interval if it has one, else its fastest to slowest call.
    """
    if scaling is None or scaling.empty:
        return {}
    table = scaling[scaling.status == "ok"] if "status" in scaling else scaling
    low, high = ("median_low_s", "median_high_s") if "median_low_s" in table else ("min_s", "max_s")
    wins = {}
    for (dtype, n, m), point in table.groupby(["dtype", "n_samples", "n_features"], sort=True):
        refs = point[point.implementation == REFERENCE]
        if refs.empty:
            continue
        ref = refs.iloc[0]
        for r in point[point.implementation != REFERENCE].itertuples():
            if not lesson_loop(r.implementation):
                continue
            if getattr(r, high) / r.iterations < getattr(ref, low) / ref.iterations:
                wins.setdefault(r.implementation, []).append((int(n), int(m)))
    return wins


def scaling_sizes(points):
    """'100x1, 10,000x32': sizes n x m in words."""
    return [f"{n:,}x{m}" for n, m in sorted(set(points))]


def payoff_facts(timings, dtype, scaling=None):
    """Finding: by how much the faster ways beat numpy per update and after how many updates, and where in scaling."""
    ref, others = _speed_rows(timings, dtype)
    if ref is None or others.empty:
        return None
    wins = scaling_wins(scaling)
    scaling_dtype = join(sorted(set(scaling.dtype))) if scaling is not None and len(scaling) else ""
    framework_wins = [p for name, points in wins.items() if REGISTRY[name].framework != REGISTRY[REFERENCE].framework
                      for p in points]
    largest = int(scaling.n_samples.max()) if scaling_dtype else 0
    scaling_finding = (None if not scaling_dtype else
                       Finding("payoff_scaling", dict(scaling_dtype=scaling_dtype, largest=largest,
                                                      sizes=scaling_sizes(framework_wins)))
                       if framework_wins else
                       Finding("payoff_scaling_none", dict(scaling_dtype=scaling_dtype, largest=largest)))
    fast = others[others.apply(lambda r: faster_beyond_noise(r, ref), axis=1)]
    facts = dict(dtype=dtype, n=int(ref.n_samples), iterations=int(ref.iterations))
    with_scaling = (lambda f: f) if scaling_finding is None else (lambda f: joined(f, scaling_finding))
    if fast.empty:
        return with_scaling(Finding("payoff_never", facts))
    ends = [break_even_interval(r, ref) for _, r in fast.iterrows()]
    facts.update(speedup=(float(fast.speedup_low.min()), float(fast.speedup_high.max())),
                 break_even=(min(e[0] for e in ends), max(e[1] for e in ends)),
                 ways=[named(registry.label(n)) for n in fast.implementation])
    return with_scaling(Finding("payoff", facts))


def fit_trap_facts(timings, dtype):
    """Finding: the idiomatic fit(X, y, epochs=N) (a Keras row looping in Python per update) against numpy and Keras' fast feed."""
    t = descent_rows(timed(timings))
    impl = lambda n: REGISTRY.get(n)
    # fit's rows cannot stop inside one call; the trap is the one that re-enters Python every update
    trap = t[t.implementation.map(lambda n: bool(impl(n) and not impl(n).stops_at_divergence and impl(n).python_loop))]
    fit = t[t.implementation.map(lambda n: bool(impl(n) and not impl(n).stops_at_divergence and not impl(n).python_loop
                                                and not impl(n).distributed and not impl(n).own_process))]
    if trap.empty or fit.empty:
        return None
    r = trap.iloc[0]
    same = fit[fit["dtype"] == r["dtype"]]
    f = (same if len(same) else fit).iloc[0]
    if pd.isna(r.speedup_vs_numpy):
        return None
    return Finding("fit_trap", dict(dtype=r["dtype"], trap_update=r.median_s / r.iterations,
                                    trap_ratio=float(r.speedup_vs_numpy), fit_update=f.median_s / f.iterations,
                                    trap=registry.label(r.implementation)))


def least_squares_facts(weights, runs, iterations, batch_size, data, dtype):
    """Finding: whether descent reached the least-squares answer in `dtype`, and how far that answer is from the truth."""
    gaps = ols_gaps(weights, runs)
    if not gaps:
        return Finding("least_squares_none")
    word = "updates" if batch_size else "iterations"
    gap_dtype = dtype if dtype in gaps else sorted(gaps)[-1]
    facts = dict(iterations=iterations, word=word, gap=gaps[gap_dtype], dtype=gap_dtype, batch=batch_size)
    if not all(gap <= CONVERGED[d] for d, gap in gaps.items()):
        return Finding("least_squares_wanders" if batch_size else "least_squares_not_yet", facts)
    errors = truth_in_errors(weights, data)
    if errors is None or max(errors[0].values()) > 3:
        return Finding("least_squares_no_errors", facts)
    facts.update(errors=[float(v) for v in errors[0].values()], parameters=list(errors[0]))
    return Finding("least_squares", facts)


def _experiment_finding(found, limit=MAX_WORDS):
    """An experiment's bullet: its first finding, and its second too when both fit in `limit` words."""
    if len(found) > 1 and words(render(found[0])) + words(render(found[1])) <= limit:
        return joined(found[0], found[1])
    return found[0]


def findings(results_dir, tables=None):
    """The Findings of a results folder as records (findings.Finding): the three questions, then the rest."""
    t = tables or load(results_dir)
    dtype = headline_dtype(t["timings"])
    done, missing = experiment_tables(results_dir, t["experiments"])
    scaling = done["scaling"][1] if "scaling" in done else None
    bullets = [agreement_facts(t["equivalence"], t["gradient_check"], t["runs"], dtype),
               cost_facts(t["timings"], dtype),
               payoff_facts(t["timings"], dtype, scaling),
               fit_trap_facts(t["timings"], dtype),
               least_squares_facts(t["weights"], t["runs"], t["config"]["iterations"], t["study"].get("batch_size"),
                                   t.get("data"), dtype)]
    bullets = [b for b in bullets if b is not None]
    tail = ([Finding("not_measured", dict(what=[f"`{name}` ({why.splitlines()[0]})" for name, why in missing.items()]))]
            if missing else [])
    room = MAX_FINDINGS - len(bullets) - len(tail)
    ranked = sorted(done.items(), key=lambda item: EXPERIMENTS.index(item[0]))  # config's one order
    for name, (module, table) in ranked:
        if name in SECOND_READING:
            continue
        found = module.findings(table) if hasattr(module, "findings") else []
        if found and room > 0:
            bullets.append(_experiment_finding(found))
            room -= 1
    return bullets + tail


def findings_markdown(bullets):
    """The findings as a markdown list, each rendered by its template."""
    return "\n".join(f"- {render(b)}" for b in bullets)


def second_reading(done):
    """One line naming the sections that hold the second reading (distribution, scaling, the Gram route), or ''."""
    titles = []
    for name in SECOND_READING:
        if name in done:
            heading = done[name][0].report_section(done[name][1]).lstrip().splitlines()[0].lstrip("#").strip()
            titles.append(f"[{heading}](#{anchor(heading)})")
    return ("For a second reading, in their sections below: " + join(titles) + ".") if titles else ""
