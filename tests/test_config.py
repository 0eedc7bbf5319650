"""StudyConfig's settings, declared once, make the command line SPEC.md gives: the same flags, defaults and --quick values."""
import argparse
from dataclasses import fields

import pytest

import run_all
from comparisons.core import registry
from comparisons.core.config import EXPERIMENTS, StudyConfig, options

# SPEC.md's command line, in its order, plus the CSV columns, --center-target and --debug it leaves to the driver
SPEC_FLAGS = ["--out", "--seed", "--n-samples", "--features", "--noise", "--iterations", "--lr", "--dtype", "--device",
              "--repeats", "--only", "--data", "--target", "--columns", "--standardize", "--center-target",
              "--batch-size", "--replicas", "--workers", "--experiments", "--full", "--quick", "--debug"]


def parse(*argv):
    return run_all.config_from_args(run_all.build_parser().parse_args(list(argv)), ["run_all.py", *argv])


def test_the_parser_offers_exactly_the_flags_spec_names():
    flags = [a.option_strings[0] for a in run_all.build_parser()._actions if a.option_strings[0] != "-h"]
    assert sorted(flags) == sorted(SPEC_FLAGS)


def test_no_argument_gives_the_lessons_defaults():
    """SPEC: n = 100, one feature, noise 0.5, 1000 updates at 0.05, both dtypes, 5 repeats, 2 replicas and workers."""
    config = parse()
    assert (config.n_samples, config.features, config.noise, config.iterations, config.lr) == (100, 1, 0.5, 1000, 0.05)
    assert (config.dtypes, config.repeats, config.replicas, config.workers) == (("float32", "float64"), 5, 2, 2)
    assert (config.out, config.device, config.experiments, config.only) == ("results", "auto", EXPERIMENTS,
                                                                            registry.names())
    assert config.with_changes(command_line=()) == StudyConfig()


def test_quick_changes_only_what_it_says_and_an_explicit_value_wins():
    quick = parse("--quick")
    assert (quick.iterations, quick.repeats) == (100, 2) and quick.time_budget_s < StudyConfig().time_budget_s
    assert parse("--quick", "--iterations", "7").iterations == 7
    assert quick.with_changes(iterations=1000, repeats=5, time_budget_s=3.0, quick=False, command_line=()) == StudyConfig()


def test_each_text_default_reads_back_as_the_field_default():
    """A default written as text on the command line (--dtype both, --experiments all) is the field's own default."""
    written = [(f, option) for f, option in options() if option.text is not None]
    assert written
    for f, option in written:
        assert option.parse(option.text) == f.default, f.name


@pytest.mark.parametrize("argv, field, value", [
    (["--dtype", "float32"], "dtypes", ("float32",)),
    (["--device", " GPU:1 "], "device", "gpu:1"),
    (["--only", "keras, numpy,keras"], "only", ("keras", "numpy")),
    (["--experiments", "none"], "experiments", ()),
    (["--columns", "a, b", "--data", "f.csv", "--target", "y"], "feature_columns", ("a", "b")),
    (["--iterations", "2e3"], "iterations", 2000),
    (["--standardize", "--center-target"], "center_target", True),
])
def test_each_option_lands_in_its_field(argv, field, value):
    assert getattr(parse(*argv), field) == value


def test_every_config_field_is_on_the_command_line_or_says_why_not():
    offered = {f.name for f, _ in options()}
    assert {f.name for f in fields(StudyConfig)} - offered == {"time_budget_s", "command_line"}
    with pytest.raises(argparse.ArgumentTypeError, match="choose from"):
        next(o for f, o in options() if f.name == "experiments").parse("nosuch")
