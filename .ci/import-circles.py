"""Import circles between the files of each crate: file A names a module of file B (by a
crate::, super::, self:: or child path) and B names one of A's. Declaring a child with
`mod x;` is not an import; comments and test modules do not count. Exits 1 on a circle."""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else '.'
def crates():
    for d in sorted(os.listdir(os.path.join(root, 'crates'))):
        src = os.path.join(root, 'crates', d, 'src')
        if os.path.isdir(src): yield d, src
def modpath(src, f):
    rel = os.path.relpath(f, src)[:-3].split(os.sep)
    if rel[-1] in ('lib', 'main', 'mod'): rel = rel[:-1]
    return tuple(rel)
total = 0
for name, src in crates():
    files = {}
    for dp, _, fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                p = os.path.join(dp, f); files[modpath(src, p)] = p
    mods = set(files)
    edges = {m: set() for m in mods}
    for m, p in files.items():
        text = open(p).read()
        text = re.split(r'#\[cfg\(test\)\]', text)[0]
        text = re.sub(r'^\s*//.*$', '', text, flags=re.M)
        for path in re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', text):
            parts = path.split('::')
            if parts[0] == 'crate': base = []; rest = parts[1:]
            else:
                base = list(m); rest = parts
                while rest and rest[0] in ('super', 'self'):
                    if rest[0] == 'super': base = base[:-1]
                    rest = rest[1:]
            target = tuple(base + rest)
            while target and target not in mods: target = target[:-1]
            if target != m and target in mods: edges[m].add(target)
        for child in [x for x in mods if len(x) == len(m) + 1 and x[:-1] == m]:
            if re.search(r'(?<![:\w])' + child[-1] + r'::', text): edges[m].add(child)
        for head, group in re.findall(r'\b((?:crate|super|self)(?:::\w+)*)::\{([^}]*)\}', text):
            parts = head.split('::')
            if parts[0] == 'crate': base = parts[1:]
            else:
                base = list(m)
                for part in parts:
                    if part == 'super': base = base[:-1]
                    elif part != 'self': base.append(part)
            for item in re.findall(r'(\w+)', group):
                target = tuple(base) + (item,)
                while target and target not in mods: target = target[:-1]
                if target != m and target in mods: edges[m].add(target)
        if '--why' in sys.argv:
            print(name, '/'.join(m), '->', sorted('/'.join(t) for t in edges[m]))
    for a, b in itertools.combinations(sorted(mods), 2):
        if b in edges[a] and a in edges[b]:
            total += 1; print(f'{name}: {"/".join(a) or "lib"} <-> {"/".join(b) or "lib"}')
print('import circles:', total)
sys.exit(1 if total else 0)
