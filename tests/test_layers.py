"""comparisons/ is layered: each subpackage imports only from its own layer and those below it, so there is no import loop."""
import ast

import pytest

from .conftest import REPO

# lowest first: a module may import from its own layer or an earlier one, never a later one
LAYERS = ["core", "inputs", "processes", "running", "output", "experiments", "report", "pipeline"]
PACKAGE = REPO / "comparisons"


def layer_of(module):
    """'comparisons.running.timing' -> 'running'; 'comparisons' alone (or anything else) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "comparisons" and parts[1] in LAYERS else None


def imported_modules(path):
    """Every comparisons.* module a file imports, at the top or inside a function ('from comparisons import x' -> comparisons.x)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "comparisons":
                yield from (f"comparisons.{a.name}" for a in node.names)
            elif node.module.startswith("comparisons."):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("comparisons."))


def test_every_module_sits_in_a_layer():
    """Nothing lives loose in comparisons/ but the orchestrator."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "pipeline"))
    assert loose == []
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS) - {"pipeline"}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    """A module imports from its own layer or a lower one, and no module uses relative imports."""
    rel = path.relative_to(PACKAGE).parts
    own = rel[0].removesuffix(".py")
    if own == "__init__":
        return
    tree = ast.parse(path.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], "relative import"
    for module in imported_modules(path):
        layer = layer_of(module)
        assert layer is not None, f"{module}: not in a layer"
        assert LAYERS.index(layer) <= LAYERS.index(own), f"{own} imports {module} (layer {layer} is above it)"


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rule is not vacuous: an import from a higher layer is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from comparisons.report import document\n")
    assert [layer_of(m) for m in imported_modules(bad)] == ["report"]
    assert LAYERS.index("report") > LAYERS.index("core")


FRAMEWORK_PACKAGES = ("handrolled", "tf_models", "jax_models")


def result_classes(package):
    """The classes in a framework package declaring weights, bias and loss_curve: its loop result types (ast only)."""
    for path in sorted((REPO / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            declared = {getattr(item.target, "id", None) for item in (node.body if isinstance(node, ast.ClassDef) else ())
                        if isinstance(item, ast.AnnAssign)}
            if isinstance(node, ast.ClassDef) and {"weights", "bias", "loss_curve"} <= declared:
                yield f"{package}.{path.stem}.{node.name}"


def test_each_framework_package_returns_one_loop_result_with_the_fields_the_study_reads():
    """One plain result class per framework package (none may import another's), each a comparisons LoopResult."""
    import dataclasses
    import importlib

    from comparisons.core.results import OPTIONAL_FIELDS, LoopResult

    found = [name for package in FRAMEWORK_PACKAGES for name in result_classes(package)]
    assert len(found) == len(FRAMEWORK_PACKAGES) and {n.split(".")[0] for n in found} == set(FRAMEWORK_PACKAGES), found
    required = set(LoopResult.__annotations__)
    own = {"trajectory", "statistics"}  # the numpy loop's iterates, the Gram tape's statistics
    for name in found:
        module, _, cls = name.rpartition(".")
        fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
        assert required <= fields and fields - required - own <= set(OPTIONAL_FIELDS), (name, fields)


def test_one_step_loss_recorder():
    """Both Keras fits (TensorFlow, and JAX in its child) record their losses with one metric class."""
    found = [f"{package}/{path.name}" for package in FRAMEWORK_PACKAGES for path in sorted((REPO / package).glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ClassDef) and node.name == "StepLossRecorder"]
    assert found == ["tf_models/keras_recorder.py"]
    keras_recorder = ast.parse((REPO / "tf_models" / "keras_recorder.py").read_text())
    imported = {a.name for n in ast.walk(keras_recorder) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"keras"}  # no TensorFlow: the keras:jax child imports it


def test_handrolled_imports_numpy_only():
    """SPEC: handrolled/ imports numpy only (and Python's own library), so a learner can read it alone."""
    import sys

    allowed = {"numpy", "handrolled"} | set(sys.stdlib_module_names)
    for path in sorted((REPO / "handrolled").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        assert imported <= allowed, (path.name, imported - allowed)
