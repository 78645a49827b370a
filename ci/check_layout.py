#!/usr/bin/env python3
"""Check the workspace's layout rules that the compiler does not: no import circles between the
files of a crate, and no production source file over the size a reader can hold in their head.

Usage: check_layout.py [--max-lines N] [--edges] CRATE_SRC_DIR...
       (default: fleet/src loadgen/src reports/src, relative to the repository root)

An edge A -> B means file A names an item that lives in file B: through `use crate::...`,
`use super::...`, `use self::...`, a `use` relative to A's module (`use child::Item`, or from the
crate root `use module::Item`), or an inline `crate::x::y` / `super::x` path. A circle is a set of
files that reach each other along edges; a child module importing from its parent's `mod.rs`
while the parent imports the child closes one, which is why a `mod.rs` only declares and wires
its children and shared items live in a child file of their own. Test code does not count:
`#[cfg(test)]` modules inline or in their own files (and everything below them) are skipped.

Production lines are the lines of a file before its first `#[cfg(test)]` item.
Exit status: 0 when every rule holds, 1 when one is broken (each printed), 2 on a usage error.
Standard library only.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
TEST_MOD = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", re.M)
INLINE_TEST = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", re.M)
USE = re.compile(r"\buse\s+((?:crate|super|self)\s*::\s*)?([^;]*);", re.S)
INLINE_PATH = re.compile(r"(?<![\w:])(crate|super)((?:::" + IDENT + r")+)")


def modules(src):
    """Maps module paths (tuples) to files, leaving out test-only files and what is below them."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)[:-3].split(os.sep)
                if rel[-1] in ("mod", "lib", "main"):
                    rel = rel[:-1]
                files[tuple(rel)] = path
    test_only = set()
    for module, path in files.items():
        for m in TEST_MOD.finditer(read(path)):
            test_only.add(module + (m.group(1),))
    return {
        m: p for m, p in files.items()
        if not any(m[: len(t)] == t for t in test_only)
    }


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def production_end(text):
    """Where the first `#[cfg(test)]` module (inline or in its own file) starts, or the end."""
    starts = [m.start() for m in (INLINE_TEST.search(text), TEST_MOD.search(text)) if m]
    return min(starts, default=len(text))


def production(text):
    """The text before the first `#[cfg(test)]` module, comments removed."""
    return re.sub(r"//[^\n]*", "", text[: production_end(text)])


def use_paths(tree, prefix, out):
    """Expands a use tree (`a::{b, c::d}`) into full paths below `prefix`."""
    tree = tree.strip()
    if tree.startswith("{"):
        depth, part, parts = 0, "", []
        for ch in tree[1 : tree.rindex("}")]:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(part)
                part = ""
            else:
                part += ch
        parts.append(part)
        for part in parts:
            if part.strip():
                use_paths(part, prefix, out)
        return
    m = re.match(r"(" + IDENT + r")\s*(?:::\s*(.*))?$", tree, re.S)
    if not m:
        return
    if m.group(2) and m.group(2).strip():
        use_paths(m.group(2), prefix + [m.group(1)], out)
    else:
        out.append(prefix + [m.group(1)])


def edges_of(module, path, files):
    here = list(module)

    def base(word):
        return {"crate": [], "self": here, "super": here[:-1]}[word]

    paths = []
    text = production(read(path))
    for m in USE.finditer(text):
        word = m.group(1)
        if word:
            use_paths(m.group(2), base(word.split(":")[0].strip()), paths)
        else:
            # Relative to this module: a child declared here, or (at the crate root) a module.
            found = []
            use_paths(m.group(2), [], found)
            paths += [here + p for p in found if tuple(here + p[:1]) in files]
    for m in INLINE_PATH.finditer(USE.sub("", text)):
        paths.append(base(m.group(1)) + m.group(2).split("::")[1:])
    out = set()
    for p in paths:
        for n in range(len(p), 0, -1):
            target = tuple(p[:n])
            if target in files:
                if target != module:
                    out.add(target)
                break
    return out


def circles(edges):
    """Tarjan's strongly connected components of more than one file."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def main(argv):
    max_lines, show_edges, srcs = 800, False, []
    args = iter(argv)
    for arg in args:
        if arg == "--max-lines":
            value = next(args, "")
            if not value.isdigit():
                print("check_layout: --max-lines takes a whole number", file=sys.stderr)
                return 2
            max_lines = int(value)
        elif arg == "--edges":
            show_edges = True
        elif arg.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            srcs.append(arg)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    srcs = srcs or [os.path.join(root, c, "src") for c in ("fleet", "loadgen", "reports")]
    broken_total = 0
    for src in srcs:
        broken = 0
        if not os.path.isdir(src):
            print(f"check_layout: {src} is not a directory", file=sys.stderr)
            return 2
        files = modules(src)
        edges = {m: edges_of(m, p, files) for m, p in files.items()}
        name = lambda m: "/".join(m) or "lib"  # noqa: E731
        if show_edges:
            for m in sorted(edges):
                print(f"{name(m)} -> {', '.join(sorted(name(t) for t in edges[m]))}")
        for component in circles(edges):
            broken += 1
            members = set(component)
            print(f"FAIL circle in {src}: " + ", ".join(sorted(name(m) for m in component)))
            for a in sorted(component):
                for b in sorted(edges[a] & members):
                    print(f"       {name(a)} -> {name(b)}")
        for module, path in sorted(files.items()):
            text = read(path)
            lines = text[: production_end(text)].count("\n")
            if lines > max_lines:
                broken += 1
                print(f"FAIL {path}: {lines} production lines (at most {max_lines})")
        print(f"{'FAIL' if broken else 'PASS'} {src}: {len(files)} files, "
              f"{sum(map(len, edges.values()))} edges, no circle, none over {max_lines} lines"
              if not broken else f"FAIL {src}: {broken} problem(s)")
        broken_total += broken
    return 1 if broken_total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
