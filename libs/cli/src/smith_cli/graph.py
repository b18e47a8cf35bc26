"""A Bundle's dependency graph as text other tools draw: Mermaid (GitHub renders it in Markdown) and
Graphviz dot, and as SVG or PNG through Graphviz's `dot` when it is installed. Nodes are resources (with
the object they stand for, and their `forEach`, `includeWhen` and `readyWhen`), edges go from a
dependency to what depends on it, and resources of one creation wave share a rank. Given the live states
(a Bundle's status), nodes are coloured by them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from smith_engine.graph import creation_waves
from smith_engine.model import Bundle, Resource

# a resource's state (its True condition) → fill colour
COLOURS = {"Ready": "#b7e4c7", "InProgress": "#ffe8a3", "Blocked": "#c6dbef", "Error": "#f4a6a6"}


class GraphvizMissingError(RuntimeError):
    pass


def _label(resource: Resource) -> str:
    obj = resource.object
    made = f"plugin {resource.plugin.name}: " if resource.plugin else ""
    return f"{made}{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


def _conditions(resource: Resource) -> list[str]:
    """A resource's collection and conditions, shortened: `for each of <forEach>`, `if <includeWhen>`,
    `ready when <readyWhen>`."""

    def short(text: str) -> str:
        return text if len(text) <= 40 else text[:37] + "..."

    each = [f"for each of {short(resource.for_each)}"] if resource.for_each else []
    return [*each, *(f"if {short(c)}" for c in resource.include_when)] + [
        f"ready when {short(c)}" for c in resource.ready_when
    ]


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _edges(bundle: Bundle) -> list[tuple[str, str]]:
    return sorted((d, r.name) for r in bundle.resources for d in r.dependencies)


def mermaid(bundle: Bundle, states: Mapping[str, str] | None = None) -> str:
    states = states or {}
    lines = ["graph LR"]
    for r in bundle.resources:
        said = "".join(f"<br/>{_mermaid_text(c)}" for c in _conditions(r))
        lines.append(f'  {r.name}["{r.name}<br/>{_label(r)}{_said(states, r)}{said}"]')
    lines += [f"  {a} --> {b}" for a, b in _edges(bundle)]
    used = sorted({s for s in states.values() if s in COLOURS})
    lines += [f"  classDef {s} fill:{COLOURS[s]}" for s in used]
    lines += [f"  class {r.name} {states[r.name]}" for r in bundle.resources if states.get(r.name) in COLOURS]
    return "\n".join(lines) + "\n"


def _said(states: Mapping[str, str], resource: Resource) -> str:
    return f" ({states[resource.name]})" if resource.name in states else ""


def dot(bundle: Bundle, states: Mapping[str, str] | None = None) -> str:
    states = states or {}
    lines = [f'digraph "{bundle.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for r in bundle.resources:
        fill = (
            f', style=filled, fillcolor="{COLOURS[states[r.name]]}"' if states.get(r.name) in COLOURS else ""
        )
        said = "".join(f"\\n{_dot_text(c)}" for c in _conditions(r))
        lines.append(f'  "{r.name}" [label="{r.name}\\n{_label(r)}{_said(states, r)}{said}"{fill}];')
    for wave in creation_waves(bundle.dependencies):
        lines.append("  { rank=same; " + " ".join(f'"{n}";' for n in sorted(wave)) + " }")
    lines += [f'  "{a}" -> "{b}";' for a, b in _edges(bundle)]
    return "\n".join(lines) + "\n}\n"


def render(dot_text: str, fmt: str) -> bytes:
    """`dot_text` drawn as `fmt` (svg, png) by Graphviz's `dot`."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissingError(
            f"drawing {fmt} needs Graphviz's `dot` (apt-get install graphviz); mermaid and dot need nothing"
        )
    done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise GraphvizMissingError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
