"""The architecture's boundaries, read from the import statements of every module.

    input_pipeline/sources, input_pipeline/writer   no TensorFlow (build_input starts fast,
                                                     its worker processes stay small); only
                                                     the MTCNN detector loads it, when made
    input_pipeline     nothing from architectures, evaluation, training or serving (the data side)
    architectures      networks only: nothing from evaluation, training or serving
    evaluation         figures of a predict function's pass: nothing from training,
                       serving or experiments (the trainer and the drivers call it)
    serving            nothing from training or evaluation (inference needs no training code)
    training           nothing from experiments (one run; experiments drive many); its
                       task, step and trainer nothing from serving (the export is the
                       orchestration's call); train_and_evaluate under 60 lines
    scripts            flags and main(): packages only, no sys.path lines, no other script
"""

import ast
import os
import subprocess
import sys

import pytest

from processes import ROOT

PACKAGES = ("input_pipeline", "architectures", "evaluation", "training", "serving", "experiments")
ENTRY_POINTS = ("build_input.py", "model.py")
TENSORFLOW = ("tensorflow", "keras", "mtcnn")  # mtcnn imports TensorFlow.
# The places the build side may load TensorFlow: inside the functions that make an MTCNN or
# a BlazeFace detector (--face_crop=detect asks for one).
LAZY_TENSORFLOW = (("input_pipeline.faces.detectors", "Mtcnn.__init__", "mtcnn"),
                   ("input_pipeline.faces.blazenet", "BlazeNet._make", "tensorflow"))
MAX_LINES = 350


def module_name(path):
    relative = os.path.relpath(path, ROOT)[:-len(".py")].replace(os.sep, ".")
    return relative.removesuffix(".__init__")


def project_modules():
    """{module name: path} of every package module, entry point and script."""
    paths = [os.path.join(ROOT, name) for name in ENTRY_POINTS]
    for folder in (*PACKAGES, "scripts"):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            paths += [os.path.join(root, f) for f in files if f.endswith(".py")]
    return {module_name(p): p for p in paths}


MODULES = project_modules()


def imports(path):
    """Every module name an import statement of `path` names (for `from a import b`,
    both a and a.b: b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def project_imports(name):
    """The project modules `name` imports, with the packages whose __init__ runs on the way."""
    found = set()
    for imported in imports(MODULES[name]):
        parts = imported.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES}
    return found - {name}


def closure(name):
    """`name` and every project module it imports, directly or not."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += project_imports(current)
    return seen


def third_party(name):
    return {imported.split(".")[0] for imported in imports(MODULES[name])}


def under(prefix):
    return sorted(m for m in MODULES if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("name", under("input_pipeline.sources") + under("input_pipeline.writer") + ["build_input"])
def test_the_build_side_never_reaches_tensorflow(name):
    lazy = {module: {package} for module, _, package in LAZY_TENSORFLOW}
    offenders = {m: third_party(m) & set(TENSORFLOW) - lazy.get(m, set()) for m in closure(name)}
    assert not {m: found for m, found in offenders.items() if found}, f"{name} reaches TensorFlow through these"


@pytest.mark.parametrize("module,function,package", LAZY_TENSORFLOW)
def test_tensorflow_is_imported_only_when_a_detector_that_needs_it_is_made(module, function, package):
    tree = ast.parse(open(MODULES[module]).read())
    top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names} | {node.module.split(".")[0] for node in tree.body
                                             if isinstance(node, ast.ImportFrom) and node.module}
    assert package not in top_level
    cls, method = function.split(".")
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next(n for n in body.body if isinstance(n, ast.FunctionDef) and n.name == method)
    assert any((isinstance(n, ast.ImportFrom) and n.module == package)
               or (isinstance(n, ast.Import) and any(a.name == package for a in n.names)) for n in ast.walk(init))


def test_importing_the_build_side_really_loads_no_tensorflow():
    """The same at run time (a third-party package could import TensorFlow too)."""
    names = under("input_pipeline.sources") + under("input_pipeline.writer") + ["build_input"]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("package,forbidden", [
    ("input_pipeline", ("architectures", "evaluation", "training", "serving", "experiments")),
    ("architectures", ("evaluation", "training", "serving", "experiments")),
    ("evaluation", ("training", "serving", "experiments")),
    ("serving", ("evaluation", "training", "experiments")),
    ("training", ("experiments",)),
    # The task, the step and the trainer train; exporting is the orchestration's call.
    ("training.task", ("serving",)),
    ("training.steps", ("serving",)),
    ("training.trainer", ("serving",)),
])
def test_a_package_imports_nothing_downstream_of_it(package, forbidden):
    for name in under(package):
        reached = {m for m in closure(name) if m.split(".")[0] in forbidden}
        assert not reached, f"{name} imports {sorted(reached)}"


def test_train_and_evaluate_is_a_short_orchestration():
    """The trainer, the task and the evaluators do the work; the function that joins them
    stays one screen."""
    tree = ast.parse(open(MODULES["training.loop"]).read())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_and_evaluate")
    assert function.end_lineno - function.lineno + 1 < 60


@pytest.mark.parametrize("name", under("scripts"))
def test_scripts_import_packages_only(name):
    source = open(MODULES[name]).read()
    assert "sys.path" not in source, f"{name} changes sys.path"
    scripts = {m for m in project_imports(name) if m.startswith("scripts") or m in ("model", "build_input")}
    assert not scripts, f"{name} imports {sorted(scripts)}; shared code belongs in a package"


def test_only_entry_points_and_the_training_flags_define_flags():
    allowed = {"build_input", "model", "training.flags", *under("scripts")}
    defining = {m for m in MODULES if "absl.flags" in imports(MODULES[m])}
    assert defining <= allowed, f"library modules importing absl.flags: {sorted(defining - allowed)}"


def test_a_head_is_read_one_way():
    """The expected age of age_years is defined once, for the train step, the metrics and the export."""
    defining = [m for m, path in MODULES.items() for node in ast.parse(open(path).read()).body
                if isinstance(node, ast.FunctionDef) and node.name == "expected_years"]
    assert defining == ["architectures.heads"]


def test_no_module_is_over_350_lines():
    long = {m: n for m, path in MODULES.items() if (n := len(open(path).read().splitlines())) > MAX_LINES}
    assert not long, f"split these by concept: {long}"


def test_the_installed_project_provides_every_package(tmp_path):
    """Scripts find the packages through the install (setup.py), not through the working
    folder: run from elsewhere, every package and subpackage imports."""
    packages = sorted(m for m, path in MODULES.items() if path.endswith("__init__.py"))
    code = "".join(f"import {p}\n" for p in packages) + "print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
