"""The import graph of ``polybot/`` has no cycles and respects the layers of docs/dev/architecture.md.

The graph is built from the source (``ast``), not from what happens to be imported at run
time, so an import hidden inside a function cannot hide a cycle. The rules:

- A node is a MODULE: every ``.py`` file under ``polybot/`` (a package is its ``__init__``).
- Every import counts, wherever it is: module level, inside a function or a class. An import
  under ``if TYPE_CHECKING:`` never runs, so it cannot make an import cycle and is left out of
  the cycle checks; it still has to respect the layers (a lower layer does not even name a
  higher layer's types).
- ``import a.b.c`` is an edge to ``a.b.c``; ``from a.b import n`` is an edge to the module
  ``a.b.n`` when ``n`` is a module, else to ``a.b``; relative imports are resolved against the
  importing module's package.
- A ``"polybot.x.y:function"`` string (the command table's lazy entries, imported by name only
  when that command runs) is NOT an edge: the table is data. The test checks instead that each
  such entry names a module that defines that function, and that ``importlib`` is used nowhere
  else (so no other import can escape the graph).
- Importing ``a.b.c`` also runs the ``__init__`` of package ``a.b``, so it is an edge to
  ``a.b`` as well — EXCEPT to the packages that contain the importing module itself: Python
  has already started importing those before the module runs. So a package ``__init__``
  importing its own submodules (re-exports), or a submodule importing a sibling, is not a
  cycle; but ``A.x → B.y`` while ``B``'s ``__init__`` (or ``B.y``) imports ``A.z`` IS one
  (``A.x → B → … → A.z``), and so is a submodule importing names from its own package's
  ``__init__`` that the ``__init__`` gets from that very submodule.
- A cycle is a strongly connected component of more than one module, or a module importing
  itself. Every cycle is listed with the import lines that make it.

On top of "no cycles between modules", :data:`LAYERS` assigns every module to a layer
(longest matching prefix wins): an import may go to the same layer or a lower one, never up,
and the components (the prefixes) must not import each other in a circle either. A new
package has to be placed in the table (the test says so), which is where a newcomer learns
the rule.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import polybot

PACKAGE_DIR = Path(polybot.__file__).resolve().parent

# From the bottom up. A component is a module prefix; the longest prefix that matches a module
# names its component ("polybot" itself matches only the package's own __init__). Keep docs/dev/architecture.md in step with this table.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "polybot",
            "polybot.domain",
            "polybot.money",
            "polybot.errors",
            "polybot.schema",
            "polybot.config",
            "polybot.db",
            "polybot.logs",
            "polybot.cli",
            "polybot.timefmt",
            "polybot.checks",
            "polybot.ledger_queries",
            "polybot.snapshots",
            # the operator's controls in bot_state (pause, close requests)
            "polybot.control_state",
            # the command table: names, scripts and "module:function" strings (data), and the
            # helpers that start a command as a child process
            "polybot.commands",
        ),
    ),
    # talking to the outside: the exchange's APIs, the local simulator of them, statistics,
    # and the delivery channels (Telegram, e-mail, message formatting) that alerts use
    (
        "adapters",
        (
            "polybot.exchange",
            "polybot.sim",
            "polybot.analysis",
            "polybot.notify",
            "polybot.notify.telegram",
            "polybot.notify.email",
            "polybot.notify.formatting",
            "polybot.notify.menu",
        ),
    ),
    # alerting: used by everything that runs unattended (the collector, the engine, the
    # operations scripts); delivers through the channels below it
    ("alerts", ("polybot.alerts",)),
    ("market data and decisions", ("polybot.collect", "polybot.strategy", "polybot.risk")),
    ("backtesting", ("polybot.backtest",)),
    ("trading", ("polybot.engine",)),
    # what an operator runs and reads: backups, health, reports, the Telegram commands, the dashboard
    (
        "operations",
        (
            "polybot.ops",
            "polybot.notify.commands",
            "polybot.notify.control",
            "polybot.notify.reports",
            "polybot.notify.tables",
            "polybot.dashboard",
        ),
    ),
    # the processes' entry points that wire everything together: the trading bot, the
    # operator's scenario scripts (test_risk_limits.py, test_circuit_breakers.py), the demo,
    # the config validator and the command registry
    (
        "applications",
        (
            "polybot.engine.bot",
            "polybot.engine.scenarios_risk",
            "polybot.engine.scenarios_breakers",
            "polybot.validation",
            "polybot.demo",
            "polybot.commands.data",
            "polybot.commands.trading",
            "polybot.commands.alerting",
            "polybot.__main__",
        ),
    ),
]

# Modules allowed to import by name at run time (importlib): the command table, which names
# each command's module in a "polybot.x.y:main" string and imports it only to run it.
DYNAMIC_IMPORTS_ALLOWED = ("polybot.commands",)

ENTRY_RE = re.compile(r"^(\w+(?:\.\w+)+):(\w+)$")  # "package.module:function"


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    type_edges: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    external: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # top-level names
    dynamic: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    entries: list[tuple[str, str, str, str]] = field(default_factory=list)  # (src, where, module, attr)

    def add(self, src: str, target: str, where: str, *, type_only: bool = False) -> None:
        """Edge src → the longest prefix of ``target`` that is a module, and → the packages it runs."""
        parts = target.split(".")
        while parts and ".".join(parts) not in self.modules:
            parts.pop()
        if not parts:
            return
        edges = self.type_edges if type_only else self.edges
        edges[src].setdefault(".".join(parts), []).append(where)
        root = next(iter(self.modules)).split(".")[0]
        for i in range(2, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg != root and not (src == pkg or src.startswith(pkg + ".")):
                edges[src].setdefault(pkg, []).append(f"{where} (runs {pkg}/__init__)")

    def all_edges(self):
        """(src, dst, where) of every edge, run-time and type-only."""
        for edges in (self.edges, self.type_edges):
            for src, targets in edges.items():
                for dst, where in targets.items():
                    yield src, dst, where


def module_name(path: Path, top: Path) -> str:
    parts = list(path.relative_to(top.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_name(node: ast.ImportFrom, package: str) -> str:
    """The absolute module name of ``from X import ...`` (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _visit(g: Graph, name: str, package: str, node: ast.AST, where: str, root: str, type_only: bool) -> None:
    """Record what one AST node of module ``name`` imports (if anything)."""

    def ours(mod: str) -> bool:
        return mod == root or mod.startswith(root + ".")

    if isinstance(node, ast.Import):
        for alias in node.names:
            if ours(alias.name):
                g.add(name, alias.name, where, type_only=type_only)
            else:
                g.external[name].add(alias.name.split(".")[0])
    elif isinstance(node, ast.ImportFrom):
        full = _imported_name(node, package)
        if not ours(full):
            g.external[name].add(full.split(".")[0])
            return
        for alias in node.names:
            sub = f"{full}.{alias.name}"
            g.add(name, sub if sub in g.modules else full, where, type_only=type_only)
    elif isinstance(node, ast.Call):
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if fname in ("import_module", "__import__"):
            g.dynamic[name].append(where)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        m = ENTRY_RE.match(node.value)
        if m and ours(m.group(1)):
            g.entries.append((name, where, m.group(1), m.group(2)))


def build_graph(top: Path) -> Graph:
    """The import graph of the package in directory ``top`` (see the module docstring)."""
    g = Graph({module_name(p, top): p for p in sorted(top.rglob("*.py"))})
    for name, path in g.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = path.relative_to(top.parent).as_posix()
        type_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            _visit(g, name, package, node, where, top.name, id(node) in type_only)
    return g


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) bodies."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            if (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
                isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
            ):
                out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def strongly_connected(nodes, edges) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with a cycle (size > 1, or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1 or v in edges.get(v, ()):
                    found.append(sorted(comp))
    return sorted(found)


def describe_cycles(cycles: list[list[str]], g: Graph) -> str:
    out = []
    for comp in cycles:
        members = set(comp)
        out.append(f"cycle between {', '.join(comp)}:")
        for a in comp:
            for b, where in sorted(g.edges[a].items()):
                if b in members:
                    out.append(f"    {a} -> {b}  ({where[0]})")
    return "\n".join(out)


def component_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = module == p or ("." in p and module.startswith(p + "."))
            if inside and (best is None or len(p) > len(best[1])):
                best = (rank, p)
    return best


GRAPH = build_graph(PACKAGE_DIR)


# ----------------------------------------------------------------------------- the rules
def test_no_import_cycles_between_modules():
    cycles = strongly_connected(GRAPH.modules, GRAPH.edges)
    assert not cycles, (
        "import cycles (break them by moving the shared piece down a layer):\n"
        + describe_cycles(cycles, GRAPH)
    )


def test_every_module_has_a_layer():
    missing = sorted(m for m in GRAPH.modules if component_of(m) is None)
    assert not missing, (
        f"modules outside the layer table: {missing}; add their package to LAYERS in "
        f"{Path(__file__).name} (and to docs/dev/architecture.md)"
    )


def test_imports_never_go_up_a_layer():
    upward = []
    for src, dst, where in GRAPH.all_edges():
        s, d = component_of(src), component_of(dst)
        if s is not None and d is not None and d[0] > s[0]:
            upward.append(f"{src} ({LAYERS[s[0]][0]}) -> {dst} ({LAYERS[d[0]][0]})  ({where[0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(upward))


def test_components_do_not_import_each_other_in_a_circle():
    comp_edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for src, targets in GRAPH.edges.items():
        a = component_of(src)
        for dst, where in targets.items():
            b = component_of(dst)
            if a and b and a[1] != b[1]:
                comp_edges[a[1]].add(b[1])
                why.setdefault((a[1], b[1]), f"{src} -> {dst} ({where[0]})")
    nodes = {p for _, prefixes in LAYERS for p in prefixes}
    cycles = strongly_connected(nodes, comp_edges)
    lines = []
    for comp in cycles:
        lines.append(f"components in a circle: {', '.join(comp)}")
        lines += [f"    {why[(a, b)]}" for a in comp for b in sorted(comp_edges[a]) if b in comp]
    assert not cycles, "\n".join(lines)


def test_dynamic_imports_only_in_the_command_registry_and_entries_resolve():
    hidden = {
        m: w
        for m, w in GRAPH.dynamic.items()
        if not any(m == p or m.startswith(p + ".") for p in DYNAMIC_IMPORTS_ALLOWED)
    }
    assert not hidden, f"importlib/__import__ hides edges from this test: {hidden}; import normally"
    broken = []
    for _src, where, module, attr in GRAPH.entries:
        path = GRAPH.modules.get(module)
        if path is None:
            broken.append(f"{where}: no module {module}")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
        if attr not in names:
            broken.append(f"{where}: {module} defines no {attr}")
    assert not broken, "command entries that point nowhere:\n" + "\n".join(broken)


def test_no_fallback_hides_a_failed_import():
    """``except ImportError`` around our own code carries on with a weaker path (a restore
    without the bot's lock, a health check without our client) instead of failing loudly."""
    caught = []
    for path in GRAPH.modules.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                names = {t.id for t in types if isinstance(t, ast.Name)}
                if names & {"ImportError", "ModuleNotFoundError"}:
                    caught.append(f"{path.relative_to(PACKAGE_DIR.parent).as_posix()}:{node.lineno}")
    assert not caught, f"import failures caught (import normally and let a broken install fail): {caught}"


# ----------------------------------------------------------------------------- the simulator
def test_simulator_never_imports_polybot_exchange():
    """The simulator judges our client: it must not share its code (polybot.exchange, the SDK)."""
    seen, todo = set(), [m for m in GRAPH.modules if m == "polybot.sim" or m.startswith("polybot.sim.")]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [*GRAPH.edges.get(m, ()), *GRAPH.type_edges.get(m, ())]
    assert sorted(m for m in seen if m == "polybot.exchange" or m.startswith("polybot.exchange.")) == []
    sdk = sorted(m for m in seen if any(x.startswith("py_clob") for x in GRAPH.external.get(m, ())))
    assert sdk == [], f"these modules, reachable from polybot.sim, import the CLOB SDK: {sdk}"
    # and at run time (catches anything the static graph could miss)
    code = (
        "import sys, polybot.sim.server, polybot.sim.__main__; "
        "print(sorted(k for k in sys.modules if k.startswith('polybot.exchange') or k.startswith('py_clob')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE_DIR.parent, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the checker itself
def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "pkg"


def test_the_checker_finds_cycles_hidden_in_functions_relative_imports_and_package_inits(tmp_path):
    top = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            # a → b at module level; b → a inside a function, by a relative import
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from . import a\n",
            # c → d by `from pkg.sub import d` (d is a module, not a name in sub/__init__)
            "pkg/c.py": "from pkg.sub import d\n",
            "pkg/sub/__init__.py": "from .d import X\nfrom .e import Y\n",
            "pkg/sub/d.py": "X = 1\n",
            # e → c: only a cycle because importing pkg.sub.d runs sub/__init__, which imports e
            "pkg/sub/e.py": "import pkg.c\nY = 2\n",
            # a self import is a cycle; a type-only import is not (it never runs)
            "pkg/f.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.g import G\n",
            "pkg/g.py": "from .f import *\nG = 1\n",
            "pkg/h.py": "import pkg.h\n",
            # a package __init__ importing its own submodules is NOT a cycle
            "pkg/ok/__init__.py": "from .one import ONE\n",
            "pkg/ok/one.py": "from pkg.ok.two import TWO\nONE = TWO\n",
            "pkg/ok/two.py": "TWO = 2\n",
            # a lazy "module:function" entry is data, not an edge (checked to resolve instead)
            "pkg/reg.py": "ENTRY = 'pkg.regtarget:main'\n",
            "pkg/regtarget.py": "import pkg.reg\ndef main(): pass\n",
        },
    )
    g = build_graph(top)
    cycles = strongly_connected(g.modules, g.edges)
    assert cycles == [
        ["pkg.a", "pkg.b"],
        ["pkg.c", "pkg.sub", "pkg.sub.e"],
        ["pkg.h"],
    ]
    assert [(m, f) for _, _, m, f in g.entries] == [("pkg.regtarget", "main")]
    assert g.type_edges["pkg.f"] == {"pkg.g": ["pkg/f.py:3"]} and "pkg.f" in g.edges["pkg.g"]
    text = describe_cycles(cycles, g)
    assert "pkg.b -> pkg.a  (pkg/b.py:2)" in text
    assert "pkg.c -> pkg.sub  (pkg/c.py:1 (runs pkg.sub/__init__))" in text
