#!/usr/bin/env python3
"""Fails when two modules of atq-core import each other, directly or through others.

A module is a top-level module of the crate (`src/foo.rs` or `src/foo/`), and inside
`director/` each of its files (`director::plan`, ...), since the director is split on purpose.
An edge A -> B is any `crate::B` path written in A (a `use` or a qualified path), outside
comments. Test code (`#[cfg(test)]` modules and `tests.rs` files) is left out: tests may reach
anywhere. Prints the cycles it finds and exits 1; prints the module order and exits 0 otherwise.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "atq-core" / "src"
SPLIT = {"director"}  # modules whose children count as modules of their own


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts and parts[0] in SPLIT and len(parts) > 1:
        return "::".join(parts[:2])
    return parts[0] if parts else "lib"


def strip(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    # Drop `#[cfg(test)] mod tests { ... }` blocks (brace-matched).
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def targets(text: str, known: set[str]) -> set[str]:
    found = set()
    for m in re.finditer(r"crate::([a-z_]+)(?:::([a-z_]+))?", text):
        top, sub = m.group(1), m.group(2)
        name = f"{top}::{sub}" if top in SPLIT and sub and f"{top}::{sub}" in known else top
        if name in known:
            found.add(name)
    # `use crate::{a, b::c}` groups
    for m in re.finditer(r"use crate::\{([^}]*)\}", text):
        for item in m.group(1).split(","):
            top = item.strip().split("::")[0]
            if top in known:
                found.add(top)
    return found


def main() -> int:
    files = [p for p in SRC.rglob("*.rs") if p.name != "tests.rs" and "tests" not in p.parts[len(SRC.parts):-1]]
    known = {module_of(p) for p in files} - {"lib"}
    known |= {m.split("::")[0] for m in known}
    graph: dict[str, set[str]] = {m: set() for m in known}
    for p in files:
        a = module_of(p)
        if a == "lib":
            continue
        for b in targets(strip(p.read_text()), known):
            if b != a and not (b in SPLIT and a.startswith(b + "::")) and not (a in SPLIT and b.startswith(a + "::")):
                graph[a].add(b)
    # A split module's facade and its children are one unit towards the rest of the crate.
    for m in list(graph):
        if "::" in m:
            parent = m.split("::")[0]
            graph[parent] |= {b for b in graph[m] if not b.startswith(parent)}
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    if cycles:
        for c in cycles:
            print("import cycle in atq-core: " + " -> ".join(c), file=sys.stderr)
        return 1
    print(f"atq-core: {len(graph)} modules, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
