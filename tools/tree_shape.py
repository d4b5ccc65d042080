"""The shape of the source tree, measured the same way every time it is run.

    python tools/tree_shape.py [--root src/corespond] [--details]

Reports, for the packages under ``src/corespond``:

* lines per package (every line of every ``.py`` file, as ``wc -l`` counts them; the
  modules at the top of ``corespond`` are one row);
* package import cycles: pairs of packages that import each other, and the groups of
  packages joined by longer cycles (strongly connected components), with a count of the
  simple cycles of three packages or more;
* imports of another domain's ``models``, ``repository`` or ``router`` module (a domain is a
  package under ``corespond``; each importing module and imported module counted once);
* files over 600 lines.

An import is any ``import`` or ``from … import`` of a ``corespond`` module anywhere in a file
(inside functions and ``TYPE_CHECKING`` blocks too): each is a dependency a reader must
follow. Packages are the directories right under ``corespond``; each module at the top of
``corespond`` (``app``, ``cli``, ``db`` …) is a node of its own in the cycle graph. Only the
standard library is used, so any Python 3.11 runs it.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT_PACKAGE = "corespond"
CROSS_DOMAIN_MODULES = ("models", "repository", "router")
LONG_FILE = 600
CYCLE_LENGTH_LIMIT = 8  # simple cycles longer than this are not enumerated (said so if any)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([ROOT_PACKAGE, *parts])


def is_package(root: Path, module: str) -> bool:
    return (root.joinpath(*module.split(".")[1:]) / "__init__.py").exists()


def exists(root: Path, module: str) -> bool:
    relative = module.split(".")[1:]
    if not relative:
        return True
    return is_package(root, module) or root.joinpath(*relative).with_suffix(".py").exists()


def imported_modules(root: Path, path: Path, module: str) -> Iterator[str]:
    """The ``corespond`` modules a file imports (a name imported from a package counts as
    the package, a submodule imported from it as the submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT_PACKAGE or alias.name.startswith(ROOT_PACKAGE + "."):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target != ROOT_PACKAGE and not target.startswith(ROOT_PACKAGE + "."):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield candidate if exists(root, candidate) else target


def node_of(root: Path, module: str) -> str | None:
    """The cycle-graph node of a module: its package under ``corespond``, or the top-level
    module itself (None for ``corespond`` itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return ".".join(parts[:2])


def domain_of(root: Path, module: str) -> str | None:
    node = node_of(root, module)
    return node if node is not None and is_package(root, node) else None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
    return sorted(found, key=lambda c: (-len(c), c))


def simple_cycles(graph: dict[str, set[str]], members: list[str]) -> tuple[int, bool]:
    """How many simple cycles of three or more nodes run within ``members`` (each counted
    once, from its smallest node), and whether some were too long to enumerate."""
    inside = set(members)
    count = 0
    truncated = False
    for start in sorted(inside):
        allowed = {m for m in inside if m >= start}
        # Depth-first over paths from ``start``: (path so far, its next nodes to try).
        stack: list[tuple[list[str], list[str]]] = [
            ([start], sorted(graph.get(start, set()) & allowed))
        ]
        while stack:
            path, todo = stack[-1]
            if not todo:
                stack.pop()
                continue
            nxt = todo.pop()
            if nxt == start:
                count += len(path) >= 3
            elif nxt not in path:
                if len(path) >= CYCLE_LENGTH_LIMIT:
                    truncated = True
                else:
                    stack.append(([*path, nxt], sorted(graph.get(nxt, set()) & allowed)))
    return count, truncated


def short(module: str) -> str:
    return module.removeprefix(ROOT_PACKAGE + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("src") / ROOT_PACKAGE)
    parser.add_argument("--details", action="store_true", help="list every counted import")
    args = parser.parse_args()
    root: Path = args.root.resolve()

    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    lines: dict[str, int] = defaultdict(int)
    long_files: list[tuple[int, str]] = []
    graph: dict[str, set[str]] = defaultdict(set)
    cross: list[tuple[str, str]] = []
    for path in files:
        module = module_name(root, path)
        count = len(path.read_bytes().splitlines())
        domain = domain_of(root, module)
        lines[short(domain) if domain else "(top-level modules)"] += count
        if count > LONG_FILE:
            long_files.append((count, str(path.relative_to(root.parent.parent))))
        source = node_of(root, module)
        for target in sorted(set(imported_modules(root, path, module))):
            target_node = node_of(root, target)
            if source is not None and target_node is not None and target_node != source:
                graph[source].add(target_node)
            target_domain = domain_of(root, target)
            if (
                domain is not None
                and target_domain is not None
                and target_domain != domain
                and target.split(".")[-1] in CROSS_DOMAIN_MODULES
                and len(target.split(".")) == 3
            ):
                cross.append((short(module), short(target)))

    print("== lines per package ==")
    for name, count in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{count:7d}  {name}")
    print(f"{sum(lines.values()):7d}  total ({len(files)} files)")

    print()
    print("== package import cycles ==")
    pairs = sorted(
        (short(a), short(b)) for a in graph for b in graph[a] if a < b and a in graph.get(b, ())
    )
    print(f"pairs importing each other: {len(pairs)}")
    for a, b in pairs:
        print(f"  {a} <-> {b}")
    components = strongly_connected(graph)
    print(f"groups joined by cycles: {len(components)}")
    for component in components:
        count, truncated = simple_cycles(graph, component)
        more = f", more longer than {CYCLE_LENGTH_LIMIT} not counted" if truncated else ""
        print(
            f"  {len(component)} packages, {count} simple cycles of 3 or more{more}: "
            + ", ".join(short(m) for m in component)
        )

    print()
    print("== imports of another domain's models / repository / router ==")
    by_kind: dict[str, int] = defaultdict(int)
    for _, target in cross:
        by_kind[target.split(".")[-1]] += 1
    kinds = ", ".join(f"{k} {by_kind[k]}" for k in CROSS_DOMAIN_MODULES)
    print(f"total: {len(cross)} ({kinds})")
    if args.details:
        for importer, target in sorted(cross):
            print(f"  {importer} -> {target}")

    print()
    print(f"== files over {LONG_FILE} lines ==")
    print(f"count: {len(long_files)}")
    for count, name in sorted(long_files, reverse=True):
        print(f"{count:7d}  {name}")


if __name__ == "__main__":
    main()
