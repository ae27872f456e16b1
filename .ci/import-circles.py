"""Import circles between the files (modules) of each crate, of any length.

Builds each crate's module graph: file A has an edge to file B when A names a module of B
by a `crate::`, `super::` or `self::` path, a `use` group under one, or a child module's
name followed by `::`. Declaring a child with `mod x;` is not an import; comments and
`#[cfg(test)]` modules do not count. A circle is a strongly connected component of more
than one file (Tarjan's algorithm, linear in the graph). Exits 1 when there is one.

  python3 .ci/import-circles.py [ROOT]          report circles
  python3 .ci/import-circles.py [ROOT] --graph  also print every edge, crate by crate
"""
import os
import re
import sys

root = next((a for a in sys.argv[1:] if not a.startswith('--')), '.')
show_graph = '--graph' in sys.argv


def crates():
    for d in sorted(os.listdir(os.path.join(root, 'crates'))):
        src = os.path.join(root, 'crates', d, 'src')
        if os.path.isdir(src):
            yield d, src


def modpath(src, f):
    rel = os.path.relpath(f, src)[:-3].split(os.sep)
    if rel[-1] in ('lib', 'main', 'mod'):
        rel = rel[:-1]
    return tuple(rel)


def resolve(target, mods):
    """The deepest module file that `target` (a path of names) lies in."""
    while target and target not in mods:
        target = target[:-1]
    return target


def edges_of(m, text, mods):
    found = set()
    text = re.split(r'#\[cfg\(test\)\]', text)[0]
    text = re.sub(r'//.*$', '', text, flags=re.M)
    for path in re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', text):
        parts = path.split('::')
        if parts[0] == 'crate':
            base, rest = [], parts[1:]
        else:
            base, rest = list(m), parts
            while rest and rest[0] in ('super', 'self'):
                if rest[0] == 'super':
                    base = base[:-1]
                rest = rest[1:]
        found.add(resolve(tuple(base + rest), mods))
    for child in [x for x in mods if len(x) == len(m) + 1 and x[:-1] == m]:
        if re.search(r'(?<![:\w])' + child[-1] + r'::', text):
            found.add(child)
    for head, group in re.findall(r'\b((?:crate|super|self)(?:::\w+)*)::\{([^}]*)\}', text):
        parts = head.split('::')
        if parts[0] == 'crate':
            base = parts[1:]
        else:
            base = list(m)
            for part in parts:
                if part == 'super':
                    base = base[:-1]
                elif part != 'self':
                    base.append(part)
        for item in re.findall(r'(\w+)', group):
            found.add(resolve(tuple(base) + (item,), mods))
    found.discard(m)
    return {t for t in found if t in mods}


def components(nodes, edges):
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
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
                out.append(component)
    return out


def name(m):
    return '/'.join(m) or 'lib'


circles = 0
for crate, src in crates():
    files = {}
    for dp, _, fs in os.walk(src):
        for f in fs:
            # A binary beside a library reaches it by the crate's name, not `crate::`.
            if f == 'main.rs' and dp == src and 'lib.rs' in fs:
                continue
            if f.endswith('.rs'):
                p = os.path.join(dp, f)
                files[modpath(src, p)] = p
    mods = set(files)
    edges = {m: edges_of(m, open(files[m]).read(), mods) for m in sorted(mods)}
    if show_graph:
        for m in sorted(mods):
            print(f'{crate}: {name(m)} -> {", ".join(sorted(name(t) for t in edges[m])) or "-"}')
    for component in components(sorted(mods), edges):
        if len(component) > 1:
            circles += 1
            print(f'{crate}: circle of {len(component)} files: {", ".join(sorted(name(m) for m in component))}')
print('import circles:', circles)
sys.exit(1 if circles else 0)
