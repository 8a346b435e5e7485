"""Static checks on submitted source, run in the grader's process with ``ast`` (never executed).

``loops_only``: the named function must compute with explicit Python loops. Inside it (and
inside any of the submission's own functions it calls) only an allow-list of names, NumPy
functions and methods may be used, so vectorised shortcuts fail whatever they are called:
``np.einsum``, ``tensordot``, ``@``, ``sliding_window_view``, ``as_strided``, ``reshape``
tricks, scipy/torch/cnnlab calls, ``getattr`` look-ups, imports. Around it, the notebook may
not rebind the name or use dynamic code (``exec``, ``globals()``, ``setattr`` ...), which could
swap the checked function for another after the fact.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

NUMPY_ALLOWED = {
    "asarray", "array", "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like",
    "full", "pad", "sum", "max", "min", "amax", "amin", "abs", "maximum", "minimum", "sqrt",
    "float64", "float32", "int64", "isclose", "copy", "ndim", "shape", "inf", "nan", "float_",
    "multiply", "add", "prod",
}
METHODS_ALLOWED = {"shape", "ndim", "size", "dtype", "sum", "max", "min", "copy", "astype",
                   "item", "append", "fill", "prod"}
BUILTINS_ALLOWED = {"range", "len", "float", "int", "min", "max", "abs", "sum", "enumerate",
                    "zip", "list", "tuple", "round", "isinstance", "ValueError", "TypeError",
                    "print", "True", "False", "None", "bool"}
NUMPY_NAMES = {"np", "numpy"}
DYNAMIC = {"exec", "eval", "compile", "globals", "locals", "vars", "setattr", "getattr",
           "delattr", "__import__", "importlib", "__builtins__", "builtins"}


MAX_SOURCE = 500_000  # characters of code parsed in the grader (a bigger notebook fails)


class TooLarge(ValueError):
    """The submission's code is too large to parse safely in the grader."""


def _parse_cells(sources: Sequence[str]) -> list[ast.Module]:
    if sum(len(s) for s in sources) > MAX_SOURCE:
        raise TooLarge(f"its code cells hold more than {MAX_SOURCE} characters: not checked")
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # a cell that does not parse defines nothing
    return trees


def _bound_names(node: ast.AST) -> set[str]:
    """Names a statement binds at its own level (assignment targets, defs, imports)."""
    names: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    for child in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) \
            else []:
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            names.add(child.id)
    return names


def _root(node: ast.AST) -> str:
    """The name an attribute chain starts from: `a.b.c` -> 'a' ('' if not a name)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _module_names(trees: list[ast.Module]) -> set[str]:
    """Names bound by imports anywhere, plus names assigned from them (`m = nmp`)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    for _ in range(3):  # aliases of aliases
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and _root(node.value) in names:
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
                    names |= {e.id for t in node.targets if isinstance(t, ast.Tuple)
                              for e in t.elts if isinstance(e, ast.Name)}
    return names


def _numpy_binding_ok(node: ast.stmt) -> bool:
    """A top-level statement that binds np/numpy must be `import numpy [as np]`."""
    if isinstance(node, ast.Import):
        return all(a.name == "numpy" and (a.asname or "numpy") in NUMPY_NAMES
                   for a in node.names if (a.asname or a.name) in NUMPY_NAMES)
    return False


def _function_problems(function: ast.FunctionDef, helpers: dict[str, ast.FunctionDef],
                       seen: set[str], rebound: frozenset[str] = frozenset()
                       ) -> tuple[list[str], bool]:
    """(problems, has_loop) for one function and the helpers it calls."""
    problems: list[str] = []
    if function.decorator_list:
        problems.append(f"{function.name} has a decorator")
    local: set[str] = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
    has_loop = False
    for node in ast.walk(function):
        if node is not function and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda, ast.ClassDef)):
            problems.append("a nested function, lambda or class")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            problems.append("an import")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            problems.append("global/nonlocal")
        elif isinstance(node, (ast.For, ast.While, ast.comprehension)):
            has_loop = True
        elif isinstance(node, ast.MatMult):
            problems.append("the @ operator")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                problems.append(f".{node.attr}")
            elif isinstance(node.value, ast.Name) and node.value.id in NUMPY_NAMES:
                if node.attr not in NUMPY_ALLOWED:
                    problems.append(f"np.{node.attr}")
            elif node.attr not in METHODS_ALLOWED:
                problems.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            name = node.id
            if name in local:
                continue
            if name in helpers:  # the submission's own function, even if named like a builtin
                if name not in seen:
                    seen.add(name)
                    more, loop = _function_problems(helpers[name], helpers, seen, rebound)
                    problems += more
                    has_loop = has_loop or loop
            elif name in rebound or name not in BUILTINS_ALLOWED | NUMPY_NAMES:
                problems.append(name)
    return problems, has_loop


def loops_only(sources: Sequence[str], function: str) -> tuple[bool, str]:
    """Whether ``function`` in the notebook's code cells is written with loops; (ok, reason)."""
    try:
        trees = _parse_cells(sources)
    except TooLarge as error:
        return False, f"{function} could not be checked: {error}"
    helpers: dict[str, ast.FunctionDef] = {}
    problems: list[str] = []
    rebound: set[str] = set()  # names the notebook binds at top level (shadowing builtins)
    modules = _module_names(trees)
    for tree in trees:
        for node in tree.body:
            rebound |= _bound_names(node) - NUMPY_NAMES
            if isinstance(node, ast.FunctionDef):
                helpers[node.name] = node
            if NUMPY_NAMES & _bound_names(node) and not _numpy_binding_ok(node):
                problems.append("np bound to something other than numpy")
            if function in _bound_names(node) and not (
                    isinstance(node, ast.FunctionDef) and node.name == function):
                problems.append(f"{function} rebound outside its def")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in DYNAMIC or (
                    isinstance(node, ast.Attribute) and node.attr in ("__dict__", "modules")):
                problems.append(f"dynamic code ({getattr(node, 'id', None) or node.attr})")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                problems.append(f"dynamic code ({node.attr})")  # e.g. f.__code__ = g.__code__
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root(node)
                if root in modules | NUMPY_NAMES | {function}:
                    problems.append(f"changes {root}.{node.attr}")  # patches a module
    if function not in helpers:
        return False, f"no function named {function} found"
    found, has_loop = _function_problems(helpers[function], helpers, {function},
                                         frozenset(rebound))
    problems += found
    if not has_loop:
        problems.append("no loop")
    if problems:
        listed = ", ".join(dict.fromkeys(problems))[:200]
        return False, (f"{function} must be written with explicit loops over plain NumPy "
                       f"indexing; it uses: {listed}")
    return True, ""


RULES = {"loops_only": loops_only}
