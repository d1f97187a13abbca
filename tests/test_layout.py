"""The package's layers, as docs/architecture.md draws them: the command's verbs and parser
(cli/) above what a command line names (local/) and what verbs do to a domain (ops/), above
the core. Read from the source with ast: every import, at the top or inside a function."""

import ast
import os

import pytest

from tests.conftest import REPO

PACKAGE = os.path.join(REPO, "payloadhook")


def _modules() -> dict[str, str]:
    """Dotted module name: path, for every module of the package."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(module: str, path: str) -> set[str]:
    """The package's modules ``module`` imports (a ``from X import y`` of a submodule y counts as y)."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.add(f"{base}.{alias.name}")
                elif base in MODULES:
                    found.add(base)
    found.discard(module)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_nothing_below_the_command_imports_it():
    # payloadhook/__main__.py is `python -m payloadhook`: the command's entry, above it
    outside = {module: sorted(i for i in imported if i == "payloadhook.cli" or i.startswith("payloadhook.cli."))
               for module, imported in GRAPH.items()
               if not module.startswith("payloadhook.cli") and module != "payloadhook.__main__"}
    assert {module: imported for module, imported in outside.items() if imported} == {}


@pytest.mark.parametrize("lower,upper", [("payloadhook.local", "payloadhook.ops"),
                                         ("payloadhook.domain", "payloadhook.local"),
                                         ("payloadhook.domain", "payloadhook.ops")])
def test_a_layer_never_imports_the_one_above_it(lower, upper):
    wrong = {module: sorted(i for i in imported if i.startswith(upper)) for module, imported in GRAPH.items()
             if module.startswith(lower)}
    assert {module: imported for module, imported in wrong.items() if imported} == {}


def test_no_import_circle():
    """Depth-first over the import graph: any edge back to a module on the current path is a circle."""
    circles = []
    state: dict[str, int] = {}    # 1: on the path, 2: done

    def visit(module, path):
        state[module] = 1
        for imported in sorted(GRAPH.get(module, ())):
            if state.get(imported) == 1:
                circles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    # a package's __init__ importing its own submodule, which imports the package for a
    # constant, is the one loop Python resolves by design; no other is allowed
    assert [c for c in circles if not (len(c) == 3 and c[0] == c[2] and c[1].startswith(c[0] + "."))] == []


#: Calls that reach the file system: the command's verbs leave them to local/ and the store.
_FILESYSTEM = {"open", "scandir", "stat", "lstat", "listdir", "walk", "fstat", "readlink", "mkdir", "unlink"}


def test_the_verbs_do_not_walk_the_file_system():
    found = []
    for module, path in MODULES.items():
        if not module.startswith("payloadhook.cli"):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
            if isinstance(node, ast.Call):
                function = node.func
                if isinstance(function, ast.Name) and function.id == "open" or \
                        isinstance(function, ast.Attribute) and function.attr in _FILESYSTEM and \
                        isinstance(function.value, ast.Name) and function.value.id in ("os", "shutil"):
                    found.append(f"{module}:{node.lineno}")
    assert found == []


#: A document that lives outside the repository: nothing in it may send a reader there.
_OUTSIDE = "CONTRACT" + ".md"


def test_no_file_cites_a_document_outside_the_repository():
    citing = []
    for directory, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "build", "dist")
                   and not d.endswith(".egg-info")]
        for name in files:
            path = os.path.join(directory, name)
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue    # images, binaries
            if _OUTSIDE in text:
                citing.append(os.path.relpath(path, REPO))
    assert citing == []
