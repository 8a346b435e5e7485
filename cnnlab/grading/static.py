"""Static checks on submitted source, run in the grader's process with ``ast`` and ``symtable``
(never executed).

``loops_only``: the named function must compute with explicit Python loops. Inside it (and
inside any of the submission's own functions it calls) only the names in ``ALLOWED`` may be
used, so vectorised shortcuts fail whatever they are called: ``np.einsum``, ``tensordot``,
``@``, ``sliding_window_view``, ``as_strided``, scipy/torch/cnnlab calls, imports. Names are
resolved with Python's own scoping (``symtable``): a parameter default, a comprehension
variable or a ``global`` cannot smuggle a module-level shortcut in under a local name.

Which function runs is not read from the source: the sandbox's runner reports, for every
module-level name bound to a function defined in a cell, that cell and the def's line
(``running``). The rule checks exactly those defs, so a def nested in ``if True:``, a second
def in a later cell or a rebinding through ``globals()`` checks what the cases call. Around
the functions, no cell may use dynamic code (``exec``, ``globals()``, ``setattr``, frames,
code objects, ``sys.modules``) or patch a module, which could change what runs or what the
runner reports.
"""

from __future__ import annotations

import ast
import symtable
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

# What a loops-only function may use: one list, shown to the student in the lab's prompt
# (``allowed_text``; a test holds each lab's prompt to it).
BUILTINS_ALLOWED = frozenset({
    "range", "len", "float", "int", "bool", "min", "max", "abs", "sum", "round", "divmod",
    "enumerate", "zip", "reversed", "list", "tuple", "all", "any", "isinstance", "print",
    "ValueError", "TypeError", "True", "False", "None"})
NUMPY_ALLOWED = frozenset({
    "array", "asarray", "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like",
    "full", "pad", "copy", "shape", "ndim", "ndindex", "sum", "prod", "max", "min", "amax",
    "amin", "argmax", "argmin", "unravel_index", "abs", "sqrt", "maximum", "minimum",
    "multiply", "add", "isclose", "floor", "ceil", "float64", "float32", "int64", "inf", "nan"})
MATH_ALLOWED = frozenset({"floor", "ceil", "sqrt", "prod", "isclose", "inf", "fabs"})
METHODS_ALLOWED = frozenset({
    "shape", "ndim", "size", "dtype", "sum", "max", "min", "argmax", "prod", "copy", "astype",
    "item", "fill", "append"})
MODULES = {"numpy": NUMPY_ALLOWED, "math": MATH_ALLOWED}
# reductions: over a whole array or window only; along an axis they vectorise the loops away
# (index-array im2col ends in `patches.sum(axis=(2, 3))`)
REDUCTIONS = frozenset({"sum", "prod", "max", "min", "amax", "amin", "argmax", "argmin"})
ALIASES = {"np": "numpy", "numpy": "numpy", "math": "math"}  # the names they may go by

DYNAMIC = frozenset({
    "exec", "eval", "compile", "globals", "locals", "vars", "setattr", "getattr", "delattr",
    "__import__", "importlib", "__builtins__", "builtins", "inspect", "ctypes", "gc"})
# attributes that reach frames, code objects and module tables, anywhere in the notebook
FRAME_ATTRIBUTES = frozenset({
    "modules", "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame",
    "cr_frame", "ag_frame", "tb_frame", "tb_next", "currentframe", "stack", "get_referrers",
    "get_objects"})

MAX_SOURCE = 500_000  # characters of code parsed in the grader (a bigger notebook fails)


def allowed_text() -> str:
    """The allow-list in words, as each loops question's prompt shows it."""
    return ("Inside it you may use loops, indexing and slicing, your own functions written the "
            "same way, the built-ins " + ", ".join(f"`{n}`" for n in sorted(
                BUILTINS_ALLOWED - {"True", "False", "None", "ValueError", "TypeError"}))
            + "; from NumPy " + ", ".join(f"`np.{n}`" for n in sorted(NUMPY_ALLOWED))
            + "; from `math` " + ", ".join(f"`math.{n}`" for n in sorted(MATH_ALLOWED))
            + "; and the array methods " + ", ".join(f"`.{n}`" for n in sorted(METHODS_ALLOWED))
            + ". Reductions (" + ", ".join(f"`{n}`" for n in sorted(REDUCTIONS))
            + ") take a whole array or window, not an `axis`.")


class TooLarge(ValueError):
    """The submission's code is too large to parse safely in the grader."""


@dataclass
class _Cell:
    index: int
    tree: ast.Module
    table: symtable.SymbolTable


def _parse_cells(sources: Sequence[str]) -> list[_Cell]:
    if sum(len(s) for s in sources) > MAX_SOURCE:
        raise TooLarge(f"its code cells hold more than {MAX_SOURCE} characters: not checked")
    cells = []
    for index, source in enumerate(sources):
        try:
            cells.append(_Cell(index, ast.parse(source),
                               symtable.symtable(source, f"<cell {index}>", "exec")))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # a cell that does not parse defines nothing
    return cells


def _module_scope(node: ast.AST) -> Iterator[ast.AST]:
    """Every node evaluated in module scope: defs and classes are yielded, not entered."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                  ast.Lambda)):
            yield from _module_scope(child)


def _root(node: ast.AST) -> str:
    """The name an attribute chain starts from: `a.b.c` -> 'a' ('' if not a name)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _notebook_problems(cells: list[_Cell], function: str) -> list[str]:
    """Dynamic code, frame tricks, module patching or a module alias bound to something else,
    anywhere in the notebook (these could change what runs, or what the runner reports)."""
    problems: list[str] = []
    imported: set[str] = set()
    for cell in cells:
        for node in ast.walk(cell.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
                if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                    problems.append(f"from {node.module} import *")
    for _ in range(3):  # names bound to a module (`m = nmp`), and to those (`k = m`)
        for cell in cells:
            for node in ast.walk(cell.tree):
                if isinstance(node, ast.Assign) and _root(node.value) in imported:
                    imported |= {n.id for t in node.targets for n in ast.walk(t)
                                 if isinstance(n, ast.Name)}
    for cell in cells:
        for node in ast.walk(cell.tree):
            if isinstance(node, ast.Name) and node.id in DYNAMIC:
                problems.append(f"dynamic code ({node.id})")
            elif isinstance(node, ast.Attribute) and (
                    node.attr.startswith("__") or node.attr in FRAME_ATTRIBUTES
                    or node.attr == "_getframe"):
                problems.append(f"dynamic code (.{node.attr})")
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root(node)
                if root in imported | set(ALIASES) | {function}:
                    problems.append(f"changes {root}.{node.attr}")  # patches a module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    if name in ALIASES and alias.name != ALIASES[name]:
                        problems.append(f"{name} bound to something other than "
                                        f"{ALIASES[name]}")
        for node in _module_scope(cell.tree):
            bound = []
            if isinstance(node, ast.ImportFrom):
                bound = [a.asname or a.name for a in node.names]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound = [node.name]
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                bound = [node.id]
            problems += [f"{name} bound to something other than {ALIASES[name]}"
                         for name in bound if name in ALIASES]
    return problems


def _defs(cells: list[_Cell]) -> dict[tuple[int, int], tuple[ast.FunctionDef, _Cell]]:
    """Every def evaluated in module scope (also inside `if`, `try` ...), by (cell, line)."""
    found = {}
    for cell in cells:
        for node in _module_scope(cell.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[(cell.index, node.lineno)] = (node, cell)
    return found


def _bound(cells: list[_Cell]) -> dict[str, list[tuple[int, int]]]:
    """Every name bound in module scope: {name: [(cell, line) of the def, or (-1, -1) for any
    other binding]}, in the order a run top to bottom binds them."""
    bound: dict[str, list[tuple[int, int]]] = {}
    for cell in cells:
        for node in _module_scope(cell.tree):
            names: list[str] = []
            where = (-1, -1)
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names = [node.id]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
                if isinstance(node, ast.FunctionDef) and node in cell.tree.body:
                    where = (cell.index, node.lineno)
            for name in names:
                bound.setdefault(name, []).append(where)
    return bound


class _Checker:
    """Walks one function with its symbol table; follows calls to the notebook's functions."""

    def __init__(self, defs: Mapping, running: Mapping[str, tuple[int, int]],
                 bound: set[str]) -> None:
        self.defs, self.running, self.bound = defs, running, bound
        self.problems: list[str] = []
        self.has_loop = False
        self.seen: set[tuple[int, int]] = set()

    def check(self, name: str) -> None:
        where = tuple(self.running.get(name) or ())
        if where in self.seen:
            return
        if where not in self.defs:
            self.problems.append(f"{name} is not a plain function defined in a cell")
            return
        self.seen.add(where)
        function, cell = self.defs[where]
        table = next((t for t in _tables(cell.table) if t.get_type() ==
                      "function" and t.get_name() == function.name
                      and t.get_lineno() == function.lineno), None)
        if table is None:
            self.problems.append(f"{name} could not be read")
            return
        if function.decorator_list:
            self.problems.append(f"{function.name} has a decorator")
        if isinstance(function, ast.AsyncFunctionDef):
            self.problems.append(f"{function.name} is async")
        defaults = [d for d in [*function.args.defaults, *function.args.kw_defaults] if d]
        if any(not _constant(d) for d in defaults):
            self.problems.append("a default value that is not a constant")
        for statement in function.body:
            self._visit(statement, table, frozenset())

    def _visit(self, node: ast.AST, table: symtable.SymbolTable, comp: frozenset[str]) -> None:
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self.has_loop = True
            generators = node.generators
            self._visit(generators[0].iter, table, comp)  # evaluated in the enclosing scope
            inner = comp | {n.id for g in generators for n in ast.walk(g.target)
                            if isinstance(n, ast.Name)}
            for index, generator in enumerate(generators):
                for part in ([generator.iter] if index else []) + generator.ifs:
                    self._visit(part, table, inner)
            for part in ([node.key, node.value] if isinstance(node, ast.DictComp)
                         else [node.elt]):
                self._visit(part, table, inner)
            return
        self._node(node, table, comp)
        for child in ast.iter_child_nodes(node):
            self._visit(child, table, comp)

    def _node(self, node: ast.AST, table: symtable.SymbolTable, comp: frozenset[str]) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in REDUCTIONS:
            target = node.func.value
            module = isinstance(target, ast.Name) and target.id in ALIASES and \
                not _is_local(target.id, table, comp)
            if len(node.args) > (1 if module else 0) or \
                    any(k.arg in ("axis", None) for k in node.keywords):
                self.problems.append(f"{node.func.attr} along an axis")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            self.problems.append("a nested function, lambda or class")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.problems.append("an import")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.problems.append("global/nonlocal")
        elif isinstance(node, (ast.For, ast.While, ast.AsyncFor)):
            self.has_loop = True
        elif isinstance(node, ast.MatMult):
            self.problems.append("the @ operator")
        elif isinstance(node, ast.Attribute):
            module = ALIASES.get(node.value.id) if isinstance(node.value, ast.Name) and not \
                _is_local(node.value.id, table, comp) else None
            if node.attr.startswith("_"):
                self.problems.append(f".{node.attr}")
            elif module:
                if node.attr not in MODULES[module]:
                    self.problems.append(f"{node.value.id}.{node.attr}")
            elif node.attr not in METHODS_ALLOWED:
                self.problems.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            name = node.id
            if _is_local(name, table, comp):
                return
            if name in ALIASES:  # bound only by `import numpy as np` (checked above)
                return  # `np` alone: what it reaches is checked where an attribute is taken
            if name in self.running:  # the notebook's own function (even if named `sum`)
                self.check(name)
            elif name not in BUILTINS_ALLOWED or name in self.bound:
                self.problems.append(name)  # a module-level name, or a rebound built-in


def _is_local(name: str, table: symtable.SymbolTable, comp: frozenset[str]) -> bool:
    if name in comp:
        return True
    try:
        symbol = table.lookup(name)
    except KeyError:
        return False
    return symbol.is_local() or symbol.is_parameter()


def _tables(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    return isinstance(node, ast.Constant)


def loops_only(sources: Sequence[str], function: str,
               running: Mapping[str, Sequence[int]] | None = None) -> tuple[bool, str]:
    """Whether ``function`` is written with loops; (ok, reason).

    ``sources``: the notebook's code cells as Python; ``running``: {name: (cell, line)} of
    the defs the names are bound to after the notebook ran (the runner's report), or None to
    take the last top-level def of each name."""
    try:
        cells = _parse_cells(sources)
    except TooLarge as error:
        return False, f"{function} could not be checked: {error}"
    defs, bound = _defs(cells), _bound(cells)
    if running is None:  # the student's own check: the last binding of each name, which is
        where = {name: places[-1] for name, places in bound.items()}  # (-1, -1) unless a def
    else:
        where = {str(k): tuple(v) for k, v in running.items()
                 if isinstance(v, (list, tuple)) and len(v) == 2}
    if function not in where:
        return False, f"no function named {function} found"
    checker = _Checker(defs, where, set(bound))
    checker.problems += _notebook_problems(cells, function)
    checker.check(function)
    if not checker.has_loop:
        checker.problems.append("no loop")
    if checker.problems:
        listed = ", ".join(dict.fromkeys(checker.problems))[:200]
        return False, (f"{function} must be written with explicit loops over plain NumPy "
                       f"indexing; it uses: {listed}")
    return True, ""


RULES = {"loops_only": loops_only}
