"""The code's measurable limits, read from the source (its syntax trees), over the
installed package: ``tau3mu/``, ``kernels/`` (``tau3mu.kernels``) and ``processors/``
(``tau3mu.processors``).

- no module over :data:`MAX_MODULE_LINES` lines, no function over
  :data:`MAX_FUNCTION_LINES` (its ``def`` line to its last line, nested functions
  included in their parent);
- no import cycle between the project's modules, module-level and function-level
  imports alike (imports under ``if TYPE_CHECKING:`` never run and do not count);
- no private name (``_x``, or a name from a ``_x`` module) imported from another project
  module;
- over every Python file of the repository, tests and benchmarks included: no PyROOT
  ``Branch`` or ``SetBranchAddress`` given a buffer made in the call. The tree keeps the
  buffer's address and the temporary is freed when the call returns, so ``Fill`` reads
  freed memory: wrong bytes in the file, or a crash that takes a test worker with it.

Where a limit fights clarity, the exception is an entry of an allow-list below, with its
reason; an entry that no longer applies fails too, so that the lists stay true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: package -> its folder in the repository (pyproject.toml's package-dir)
PACKAGES = {
    "tau3mu": ROOT / "tau3mu",
    "tau3mu.kernels": ROOT / "kernels",
    "tau3mu.processors": ROOT / "processors",
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

#: module -> why it may be longer than MAX_MODULE_LINES
LONG_MODULES: dict[str, str] = {}
#: "module:function" -> why it may be longer than MAX_FUNCTION_LINES
LONG_FUNCTIONS: dict[str, str] = {}


def project_modules() -> dict[str, Path]:
    """Every module of the installed package: dotted name -> file."""
    modules: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


MODULES = project_modules()


def parse(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))


def is_type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and is_type_checking_block(node):
            yield from (n for child in node.orelse for n in runtime_imports(child))
            continue
        yield from runtime_imports(node)


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported(module: str) -> Iterator[tuple[str, str | None, int]]:
    """(project module, name imported from it or None, line) for each import of ``module``.

    ``from package import name`` counts as an import of ``package.name`` where that is a
    module, else of ``package``."""
    for node in runtime_imports(parse(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, None, node.lineno
            continue
        source = absolute(module, node)
        for alias in node.names:
            if f"{source}.{alias.name}" in MODULES:
                yield f"{source}.{alias.name}", None, node.lineno
            elif source in MODULES:
                yield source, alias.name, node.lineno


def import_graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _, _ in imported(module) if target != module}
        for module in MODULES
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_rules_see_the_whole_package():
    assert {"tau3mu.config", "tau3mu.kernels.best", "tau3mu.processors.dsphipi"} <= set(MODULES)
    graph = import_graph()
    assert "tau3mu.kernels.buffers" in graph["tau3mu.kernels.best"]
    assert "tau3mu.kernels" in graph["tau3mu.processors.selection"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_the_limit():
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    over = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
    assert sorted(set(over) - set(LONG_MODULES)) == [], f"modules over the limit: {over}"
    stale = sorted(name for name in LONG_MODULES if lengths.get(name, 0) <= MAX_MODULE_LINES)
    assert stale == [], f"allow-list entries no longer needed: {stale}"


def test_no_function_over_the_limit():
    lengths = {
        f"{module}:{name}": node.end_lineno - node.lineno + 1
        for module in MODULES
        for name, node in functions(parse(module))
    }
    over = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert sorted(set(over) - set(LONG_FUNCTIONS)) == [], f"functions over the limit: {over}"
    stale = sorted(name for name in LONG_FUNCTIONS if lengths.get(name, 0) <= MAX_FUNCTION_LINES)
    assert stale == [], f"allow-list entries no longer needed: {stale}"


def test_no_import_cycle():
    found = cycles(import_graph())
    edges = sorted(
        {
            f"{module} -> {target} (line {line})"
            for component in found
            for module in component
            for target, _, line in imported(module)
            if target in component and target != module
        }
    )
    assert found == [], f"import cycles {found}, through: {edges}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_imported_across_modules(module):
    private = [
        f"line {line}: {target}{'.' + name if name else ''}"
        for target, name, line in imported(module)
        if target != module
        and (any(is_private(part) for part in target.split(".")) or is_private(name or ""))
    ]
    assert private == [], f"{module} imports private names: {private}"


#: the PyROOT calls that keep the address of their second argument
BRANCH_ADDRESS_CALLS = ("Branch", "SetBranchAddress")


def temporary_branch_buffers(tree: ast.AST) -> list[int]:
    """Lines where a tree is given a buffer created in the same call (``Branch(name, f())``)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in BRANCH_ADDRESS_CALLS
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Call)
    ]


def test_the_buffer_rule_sees_a_temporary():
    code = ast.parse("t.Branch('a', v)\nt.Branch('b', std.vector('double')())\n")
    assert temporary_branch_buffers(code) == [2]
    assert temporary_branch_buffers(ast.parse("t.SetBranchAddress('a', array('d', [0]))")) == [1]


@pytest.mark.parametrize("folder", ["tau3mu", "kernels", "processors", "tests", "benchmarks"])
def test_no_tree_branch_keeps_a_temporary_buffer(folder):
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in temporary_branch_buffers(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], f"a tree branch given a temporary buffer: {found}"
