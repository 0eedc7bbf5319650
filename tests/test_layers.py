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
# The module tf_models and jax_models share: LoopResult, the frozen type their loops return. It lives beside the
# packages (SPEC: no implementation package imports comparisons or another framework's package), so both can
# return one type; handrolled keeps its own DescentResult and imports numpy only.
LOOP_RESULT_MODULE = "loop_result"
RESULT_CLASSES = ["comparisons.core.results.RunResult", "handrolled.result.DescentResult", "loop_result.LoopResult"]


def python_files(target):
    """The .py files of a package (recursively) or the one file of a top-level module."""
    return sorted((REPO / target).rglob("*.py")) if (REPO / target).is_dir() else [REPO / f"{target}.py"]


def study_modules():
    """The study's own top-level packages and modules, as pyproject.toml installs them."""
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(setup["packages"]) | set(setup["py-modules"])


def result_classes(target):
    """The classes in a package or module declaring weights, bias and loss_curve: its result types (ast only)."""
    for path in python_files(target):
        for node in ast.walk(ast.parse(path.read_text())):
            declared = {getattr(item.target, "id", None) for item in (node.body if isinstance(node, ast.ClassDef) else ())
                        if isinstance(item, ast.AnnAssign)}
            if isinstance(node, ast.ClassDef) and {"weights", "bias", "loss_curve"} <= declared:
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                yield f"{module}.{node.name}"


def absolute_imports(target):
    """(file name, module) for every absolute import in a package or module, at the top or inside a function."""
    for path in python_files(target):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from ((path.name, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                yield path.name, node.module


def test_three_result_classes_in_the_repository():
    """numpy's DescentResult, TF/JAX's LoopResult and comparisons' RunResult: no other class of the study is one."""
    import dataclasses

    from loop_result import LoopResult

    assert LOOP_RESULT_MODULE in study_modules()  # installed beside run_all, so an installed study imports it too
    found = sorted(name for target in study_modules() for name in result_classes(target))
    assert found == RESULT_CLASSES, found
    fields = dataclasses.fields(LoopResult)
    assert [f.name for f in fields[:3]] == ["weights", "bias", "loss_curve"]
    assert all(f.default is None for f in fields[3:]), [f.name for f in fields[3:] if f.default is not None]
    assert LoopResult.__dataclass_params__.frozen


def test_handrolled_and_loop_result_import_numpy_only():
    """SPEC: handrolled/ imports numpy only (and the standard library); so does the shared loop_result module."""
    import sys

    allowed = {"numpy"} | set(sys.stdlib_module_names)
    for target in ("handrolled", LOOP_RESULT_MODULE):
        imports = list(absolute_imports(target))
        assert ("result.py" if target == "handrolled" else "loop_result.py", "numpy") in imports  # the checker sees them
        for name, module in imports:
            assert module.split(".")[0] in allowed, f"{target}: {name} imports {module}"


def test_tf_and_jax_import_of_the_study_only_loop_result():
    """tf_models and jax_models import no comparisons, no other framework's package, of the study only loop_result."""
    study = study_modules()
    assert {"comparisons", "handrolled", "tf_models", "jax_models", "run_all", LOOP_RESULT_MODULE} <= study
    for package in ("tf_models", "jax_models"):
        for name, module in absolute_imports(package):
            top = module.split(".")[0]
            assert top not in study or top in (package, LOOP_RESULT_MODULE), f"{package}/{name} imports {module}"
    # not vacuous: the checker sees the imports of the result type in both packages
    assert ("gradient_tape.py", LOOP_RESULT_MODULE) in set(absolute_imports("tf_models"))
    assert ("loop.py", LOOP_RESULT_MODULE) in set(absolute_imports("jax_models"))


def test_one_step_loss_recorder():
    """Both Keras fits (TensorFlow, and JAX in its child) record their losses with one metric class."""
    found = [f"{package}/{path.name}" for package in FRAMEWORK_PACKAGES for path in sorted((REPO / package).glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ClassDef) and node.name == "StepLossRecorder"]
    assert found == ["tf_models/keras_recorder.py"]
    keras_recorder = ast.parse((REPO / "tf_models" / "keras_recorder.py").read_text())
    imported = {a.name for n in ast.walk(keras_recorder) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"keras"}  # no TensorFlow: the keras:jax child imports it


def test_child_processes_start_at_the_repository_root():
    """Workers and children run from the repository root, so they import loop_result (a top-level module) as the
    parent does, even where the installed package predates it."""
    from comparisons.processes import cluster, isolated
    from comparisons.running import keras_jax_child

    root = REPO.resolve()
    assert (root / f"{LOOP_RESULT_MODULE}.py").is_file()
    assert cluster.REPO_ROOT == isolated.REPOSITORY == keras_jax_child.REPOSITORY == root
