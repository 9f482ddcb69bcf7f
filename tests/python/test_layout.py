"""The library's layout (docs/design.md, "What each folder may include"), checked on the sources:
no include cycle, each layer includes only what it may, no library file over 700 lines, plugin/
the smallest layer, config keys named in plugin/config.c only, and no plugin callbacks outside
plugin/."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYERS = ("kernels", "src", "plugin")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def library_files():
    out = {}
    for layer in LAYERS:
        for p in sorted((ROOT / layer).rglob("*")):
            if p.suffix in (".c", ".h", ".cu") and p.is_file():
                out[p] = layer
    return out


def resolve(name, files):
    """The library file an include names (by file name; includes are flat), or None."""
    base = pathlib.Path(name).name
    hits = [p for p in files if p.name == base and p.suffix == ".h"]
    return hits[0] if hits else None


def graph():
    files = library_files()
    edges = {}
    for p in files:
        edges[p] = [q for q in (resolve(n, files) for n in INCLUDE.findall(p.read_text())) if q]
    return files, edges


def test_header_names_are_unique():
    # includes are resolved by file name (flat include paths): two headers of one name would be
    # ambiguous
    names = [p.name for p in library_files() if p.suffix == ".h"]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def modules():
    """Modules (a .c and its .h, by folder and stem) and the modules each includes: grad.c
    including tactile.h while tactile.c includes grad.h is a cycle of modules, though no header
    includes itself."""
    files, edges = graph()
    # a module's private header (X_internal.h, shared by X.c and its companions) is part of X
    mod = lambda p: p.parent / p.stem.removesuffix("_internal")
    medges = {}
    for p, qs in edges.items():
        medges.setdefault(mod(p), set()).update(mod(q) for q in qs if mod(q) != mod(p))
    for qs in list(medges.values()):
        for q in qs:
            medges.setdefault(q, set())
    return medges


def test_no_include_cycle():
    edges = modules()
    files = list(edges)
    state = {}
    cycle = []

    def visit(p, stack):
        state[p] = 1
        stack.append(p)
        for q in edges[p]:
            if state.get(q) == 1:
                cycle.extend(stack[stack.index(q):] + [q])
                return True
            if q not in state and visit(q, stack):
                return True
        state[p] = 2
        stack.pop()
        return False

    for p in files:
        if p not in state and visit(p, []):
            break
    assert not cycle, " -> ".join(str(p.relative_to(ROOT)) for p in cycle)


def test_layers_include_only_what_they_may():
    # kernels/ includes kernels/ only; src/ includes kernels/ and src/; plugin/ anything
    allowed = {"kernels": {"kernels"}, "src": {"kernels", "src"}, "plugin": set(LAYERS)}
    files, edges = graph()
    bad = [f"{p.relative_to(ROOT)} includes {q.relative_to(ROOT)}"
           for p, qs in edges.items() for q in qs if files[q] not in allowed[files[p]]]
    assert not bad, bad


def test_no_library_file_over_700_lines():
    big = {str(p.relative_to(ROOT)): n for p in library_files()
           if (n := len(p.read_text().splitlines())) > 700}
    assert not big, big


def test_plugin_is_the_smallest_layer():
    lines = {layer: 0 for layer in LAYERS}
    for p, layer in library_files().items():
        lines[layer] += len(p.read_text().splitlines())
    assert lines["plugin"] < lines["kernels"] and lines["plugin"] < lines["src"], lines


def test_config_keys_and_plugin_callbacks_live_in_plugin():
    for p, layer in library_files().items():
        text = p.read_text()
        if p.name != "config.c":
            assert "mj_getPluginConfig" not in text, f"{p.relative_to(ROOT)} reads a config key"
        if layer != "plugin":
            for word in ("mjp_registerPlugin", "mjp_defaultPlugin", "mjPLUGIN_LIB_INIT"):
                assert word not in text, f"{p.relative_to(ROOT)} uses {word}"
