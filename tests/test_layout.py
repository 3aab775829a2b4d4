"""The shape of the package: one job per module, imports that only point one way.

Read from the source with ``ast`` (nothing is imported but deconv3d itself, to
find its files), so these hold for the installed package as much as for a checkout.
"""

import ast
import os

import pytest

import deconv3d

PACKAGE_DIR = os.path.dirname(os.path.abspath(deconv3d.__file__))
MAX_LINES = 450
# Optional heavy dependencies: only these may be imported inside a function, where
# they cost nothing to users who never need them.
OPTIONAL_HEAVY = {"h5py", "torch", "keras", "jax", "tensorflow", "onnx", "onnxruntime", "dask",
                  "distributed", "zarr"}


def module_files():
    """{dotted module name: path} of every Python module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        relative = os.path.relpath(folder, os.path.dirname(PACKAGE_DIR))
        package = relative.replace(os.sep, ".")
        for name in files:
            if name.endswith(".py"):
                stem = name[:-3]
                found[package if stem == "__init__" else f"{package}.{stem}"] = os.path.join(
                    folder, name)
    return found


MODULES = module_files()


def parse(name):
    with open(MODULES[name], encoding="utf-8") as handle:
        return ast.parse(handle.read(), MODULES[name])


def imported_modules(name, node):
    """The package's modules an import statement of module ``name`` loads."""
    is_package = MODULES[name].endswith("__init__.py")
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    base = node.module or ""
    if node.level:
        parts = name.split(".")
        # a package's own name is its folder; a module's folder is its parent
        anchor = parts[:len(parts) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    targets = []
    for alias in node.names:
        child = f"{base}.{alias.name}"
        if child in MODULES:
            targets.append(child)              # from package import submodule
        elif is_compiled(child):
            continue                           # from package import _core: no Python source
        elif base in MODULES:
            targets.append(base)               # from module import name
    return targets


def is_compiled(name):
    """Whether ``name`` is an extension module of the package (a ``.pyi`` stub or a binary)."""
    parts = name.split(".")
    folder = os.path.join(os.path.dirname(PACKAGE_DIR), *parts[:-1])
    return os.path.isdir(folder) and any(
        entry.startswith(parts[-1] + ".") and not entry.endswith(".py")
        for entry in os.listdir(folder))


def import_graph():
    """{module: set of package modules it imports} (function-level imports included)."""
    graph = {}
    for name in MODULES:
        edges = set()
        for node in ast.walk(parse(name)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(imported_modules(name, node))
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def function_level_imports(name):
    """(line, top-level module name, source line) of every import inside a function."""
    tree = parse(name)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):     # the top package of `from a.b import c`
                module = node.module or ""
                found.append((node.lineno, "." * node.level
                              + (module if node.level else module.split(".")[0])))
    return found


def test_the_module_list_is_what_this_test_reads():
    assert "deconv3d.layer" in MODULES and "deconv3d.keras_io" in MODULES


def test_imports_form_a_dag():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_layer_imports_no_reader_or_converter():
    readers = {"deconv3d.convert", "deconv3d.frameworks", "deconv3d.keras_io", "deconv3d.cli",
               "deconv3d.interop"}
    graph = import_graph()
    reachable, todo = set(), ["deconv3d.layer"]
    while todo:
        for target in graph[todo.pop()] - reachable:
            reachable.add(target)
            todo.append(target)
    assert not reachable & readers, sorted(reachable & readers)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_function_level_imports_are_only_optional_heavy_dependencies(name):
    with open(MODULES[name], encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for line, module in function_level_imports(name):
        assert module in OPTIONAL_HEAVY, (f"{MODULES[name]}:{line} imports {module} inside a "
                                          f"function; import it at the top of the module")
        # and says why it is there
        assert "#" in lines[line - 1] or "#" in lines[line - 2], f"{MODULES[name]}:{line}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_short(name):
    with open(MODULES[name], encoding="utf-8") as handle:
        count = sum(1 for _ in handle)
    assert count <= MAX_LINES, f"{MODULES[name]} has {count} lines (at most {MAX_LINES})"
