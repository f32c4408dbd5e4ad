"""Checks of the server's shape that import-linter's contracts do not cover (issue 18):

1. no import circle between server modules, counting imports inside functions too (grimp,
   which import-linter uses, reads every import statement of a module wherever it is);
2. no server module over 600 lines without a comment saying why: a line starting with
   ``# size:`` near its top.

``scripts/test`` runs it after ``lint-imports``. Exit status 1 with a list when a check fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "server"
MAX_LINES = 600
SIZE_MARK = "# size:"


def import_graph() -> dict[str, set[str]]:
    """Module → the server modules it imports (the package's own ``__init__`` included)."""
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges.get(node, ()):
                        found.append(sorted(component))
    return found


def oversized() -> list[str]:
    """Server modules over MAX_LINES lines without a ``# size:`` comment in their first 60."""
    problems = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) <= MAX_LINES:
            continue
        if not any(line.lstrip().startswith(SIZE_MARK) for line in lines[:60]):
            problems.append(f"{path.relative_to(ROOT)}: {len(lines)} lines, no '{SIZE_MARK}' why")
    return problems


def main() -> int:
    failed = False
    for component in cycles(import_graph()):
        failed = True
        print("import circle: " + " → ".join(component), file=sys.stderr)
    for problem in oversized():
        failed = True
        print(f"over {MAX_LINES} lines: {problem}", file=sys.stderr)
    if not failed:
        print(
            f"check_layers: no import circle in {PACKAGE}/, every module ≤ {MAX_LINES} lines "
            f"or says why"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
