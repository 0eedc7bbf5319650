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


def python_files(target):
    """The .py files of a package (recursively) or the one file of a top-level module."""
    return sorted((REPO / target).rglob("*.py")) if (REPO / target).is_dir() else [REPO / f"{target}.py"]


# what a late import (inside a function) may be for: deferring one of these, directly or through a study module
HEAVY = {"tensorflow", "keras", "jax", "jaxlib", "tensorboard", "numpy", "pandas", "matplotlib", "scipy", "tqdm"}
# the study's modules that load a framework when called rather than when imported: what a late import of one defers
LOADERS = {"tf_models.quiet_import": "tensorflow", "jax_models.runtime": "jax"}


def module_name(path):
    """comparisons/running/timing.py -> 'comparisons.running.timing'; a package's __init__.py -> the package."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def study_file(module):
    """The file of a study module ('comparisons.report' -> comparisons/report/__init__.py), or None if not one."""
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(path):
    """(module, late) for every absolute import of a file: `from a.b import c` gives a.b.c when that is a module,
    else a.b; late when the import sits inside a function."""
    tree = ast.parse(path.read_text())
    late_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
    for node in ast.walk(tree):
        late = id(node) in late_nodes
        if isinstance(node, ast.Import):
            yield from ((alias.name, late) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative (the framework packages use them): from the file's own package up
                package = module_name(path).split(".")
                package = package if path.name == "__init__.py" else package[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if study_file(sub) else base), late


def import_graph(paths, late=True):
    """{module: set of study modules it imports} over `paths` (with late imports or without)."""
    graph = {}
    for path in paths:
        targets = graph.setdefault(module_name(path), set())
        for module, is_late in imports_of(path):
            if (late or not is_late) and study_file(module):
                targets.add(module)
    return graph


def cycle(graph):
    """One import loop of `graph` as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def loads_at_import(module, seen=None):
    """The top-level names of the modules `module` loads when imported (its module-level imports, and theirs through
    the study's modules)."""
    seen = set() if seen is None else seen
    path = study_file(module)
    if path is None or module in seen:
        return {module.split(".")[0]}
    seen.add(module)
    found = {module.split(".")[0]}
    parent = module.rpartition(".")[0]
    if parent:  # importing a submodule runs its packages' __init__ first
        found |= loads_at_import(parent, seen)
    for target, late in imports_of(path):
        if not late:
            found |= loads_at_import(target, seen)
    return found


def test_no_import_loop_even_through_late_imports():
    """No module of the study reaches itself through imports, those inside functions included."""
    paths = [p for target in ("comparisons", "run_all") for p in python_files(target)]
    loop = cycle(import_graph(paths))
    assert loop is None, " -> ".join(loop)


def test_the_loop_finder_finds_a_loop_hidden_in_a_function(tmp_path):
    """Not vacuous: report <-> front_page through a late import, as once in this repository, is found."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
    document, front = tmp_path / "document.py", tmp_path / "front_page.py"
    document.write_text("from comparisons.report import front_page\n")
    front.write_text("def sync():\n    from comparisons.report import document\n")
    imports = {module for path in (document, front) for module, _ in imports_of(path)}
    assert imports == {"comparisons.report.front_page", "comparisons.report.document"}
    assert [late for _, late in imports_of(front)] == [True]


@pytest.mark.parametrize("path", [p for target in ("comparisons", "run_all") for p in python_files(target)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_late_imports_only_defer_a_heavy_framework(path):
    """An import inside a function is there to load a heavy framework only when needed: what it imports loads one
    (HEAVY) that the module itself does not load already."""
    own = loads_at_import(module_name(path))
    for module, late in imports_of(path):
        if late:
            deferred = (loads_at_import(module) | {LOADERS.get(module)}) & HEAVY - own
            assert deferred, f"{module_name(path)} imports {module} inside a function, but it defers no heavy framework"


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


def test_framework_packages_import_of_the_study_only_loop_result():
    """No framework package imports comparisons or another framework's package; of the study, only loop_result."""
    study = study_modules()
    assert {"comparisons", "run_all", LOOP_RESULT_MODULE, *FRAMEWORK_PACKAGES} <= study  # each one installed
    for package in FRAMEWORK_PACKAGES:
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


def function_attributes(path):
    """`f.attr = ...` where f is a function defined in the same file: extras hung on a function instead of declared."""
    tree = ast.parse(path.read_text())
    functions = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return [f"{path.name}:{node.lineno} {target.value.id}.{target.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in functions]


def test_no_extras_hung_on_functions(tmp_path):
    """Trainers and builders declare what they carry (a dataclass, as Trainer, KerasFit, KerasJaxTrainer)."""
    found = [hit for target in ("comparisons", "run_all", *FRAMEWORK_PACKAGES) for path in python_files(target)
             for hit in function_attributes(path)]
    assert found == []
    bad = tmp_path / "bad.py"  # not vacuous: what this repository once did
    bad.write_text("def make():\n    def train():\n        pass\n    train.run = train\n    return train\n")
    assert function_attributes(bad) == ["bad.py:4 train.run"]
