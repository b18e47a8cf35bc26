"""A Bundle's dependency graph as text other tools draw: Mermaid (GitHub renders it in Markdown) and
Graphviz dot. Nodes are resources (with the object they stand for), edges go from a dependency to what
depends on it, and resources of one creation wave share a rank."""

from __future__ import annotations

from smith_engine.graph import creation_waves
from smith_engine.model import Bundle, Resource


def _label(resource: Resource) -> str:
    obj = resource.object
    made = f"plugin {resource.plugin.name}: " if resource.plugin else ""
    return f"{made}{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


def _edges(bundle: Bundle) -> list[tuple[str, str]]:
    return sorted((d, r.name) for r in bundle.resources for d in r.dependencies)


def mermaid(bundle: Bundle) -> str:
    lines = ["graph LR"]
    lines += [f'  {r.name}["{r.name}<br/>{_label(r)}"]' for r in bundle.resources]
    lines += [f"  {a} --> {b}" for a, b in _edges(bundle)]
    return "\n".join(lines) + "\n"


def dot(bundle: Bundle) -> str:
    lines = [f'digraph "{bundle.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    lines += [f'  "{r.name}" [label="{r.name}\\n{_label(r)}"];' for r in bundle.resources]
    for wave in creation_waves(bundle.dependencies):
        lines.append("  { rank=same; " + " ".join(f'"{n}";' for n in sorted(wave)) + " }")
    lines += [f'  "{a}" -> "{b}";' for a, b in _edges(bundle)]
    return "\n".join(lines) + "\n}\n"
