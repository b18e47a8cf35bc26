"""`smith status`: each Bundle as a tree of its resources with state, reason, message and age, drawn from
what the API server stores. `--watch` redraws it in place on every change (a terminal), or prints a line
per change (a pipe, a CI log); a broken watch shows "reconnecting…" until the server is back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from smith_cli.follow import Snapshot, follow
from smith_engine.conditions import by_type
from smith_engine.model import JSONObject
from smith_kube import KubeClient

STATES = ("Error", "Blocked", "InProgress", "Ready")  # a resource's state: its condition that is True
STYLE = {"Ready": "green", "InProgress": "yellow", "Blocked": "blue", "Error": "red", "?": "dim"}
MARK = {"Ready": "✓", "InProgress": "…", "Blocked": "⏸", "Error": "✗", "?": "?"}


@dataclass(frozen=True)
class Line:
    """One resource (or the Bundle itself) as shown: the True condition among STATES, and why."""

    name: str
    state: str
    reason: str = ""
    message: str = ""
    since: datetime | None = None
    what: str = ""  # the object, `Kind name`
    after: tuple[str, ...] = ()  # the resources it depends on


def _active(conditions: object) -> tuple[str, JSONObject]:
    found = by_type(conditions)
    for state in STATES:
        if found.get(state, {}).get("status") == "True":
            return state, found[state]
    return "?", {}


def _since(condition: JSONObject) -> datetime | None:
    stamp = condition.get("lastTransitionTime")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def bundle_line(bundle: JSONObject) -> Line:
    status = bundle.get("status") or {}
    conditions = by_type(status.get("conditions"))
    if conditions.get("Error", {}).get("status") == "True":
        state, condition = "Error", conditions["Error"]
    elif conditions.get("Ready", {}).get("status") == "True":
        state, condition = "Ready", conditions["Ready"]
    elif conditions:
        state, condition = "InProgress", conditions.get("InProgress") or conditions.get("Ready", {})
    else:
        state, condition = "?", {}
    return Line(
        bundle["metadata"]["name"],
        state,
        str(condition.get("reason", "")),
        str(condition.get("message", "")),
        _since(condition),
        what=str(status.get("readyResources", "")),
    )


def resource_lines(bundle: JSONObject) -> list[Line]:
    """The Bundle's resources in the order it lists them, each with what its status says."""
    reported = {
        str(r.get("name")): r
        for r in (bundle.get("status") or {}).get("resourceStatuses") or []
        if isinstance(r, Mapping)
    }
    lines = []
    for resource in (bundle.get("spec") or {}).get("resources") or []:
        if not isinstance(resource, Mapping):
            continue
        name = str(resource.get("name", "?"))
        state, condition = _active(reported.get(name, {}).get("conditions"))
        lines.append(
            Line(
                name,
                state,
                str(condition.get("reason", "")),
                str(condition.get("message", "")),
                _since(condition),
                what=_object(resource),
                after=tuple(str(d) for d in resource.get("dependsOn") or () if isinstance(d, str)),
            )
        )
    return lines


def _object(resource: Mapping[str, object]) -> str:
    spec = resource.get("spec")
    if not isinstance(spec, Mapping):
        return ""
    if isinstance(plugin := spec.get("plugin"), Mapping):
        return f"plugin {plugin.get('name', '?')} → {plugin.get('objectName', '?')}"
    obj = spec.get("object", spec)
    if not isinstance(obj, Mapping):
        return ""
    meta = obj.get("metadata")
    return f"{obj.get('kind', '?')} {meta.get('name', '?') if isinstance(meta, Mapping) else '?'}"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _text(line: Line, now: datetime, *, bold: bool = False) -> Text:
    style = STYLE.get(line.state, "dim")
    text = Text()
    text.append(f"{MARK.get(line.state, '?')} ", style=style)
    text.append(line.name, style="bold" if bold else "")
    if line.what:
        text.append(f"  {line.what}", style="cyan")
    text.append(f"  {line.state}", style=style)
    if line.reason:
        text.append(f" {line.reason}")
    if when := age(line.since, now):
        text.append(f"  {when}", style="dim")
    if line.after:
        text.append(f"  after {', '.join(line.after)}", style="dim")
    if line.message:
        text.append(f"\n  {line.message}", style="red" if line.state == "Error" else "dim")
    return text


def tree(bundle: JSONObject, now: datetime) -> Tree:
    root = Tree(_text(bundle_line(bundle), now, bold=True), guide_style="dim")
    for line in resource_lines(bundle):
        root.add(_text(line, now))
    return root


def view(snapshot: Snapshot, names: Sequence[str] | None, now: datetime) -> RenderableType:
    """The Bundles `names` (all, when None) of `snapshot`, and a line saying when it may be stale."""
    shown = [snapshot.bundles[n] for n in names or sorted(snapshot.bundles) if n in snapshot.bundles]
    parts: list[RenderableType] = [tree(b, now) for b in shown]
    if missing := [n for n in names or () if n not in snapshot.bundles]:
        parts.append(Text(f"not there yet: {', '.join(missing)}", style="dim"))
    if not snapshot.connected:
        parts.append(Text(f"reconnecting… ({snapshot.trouble})", style="yellow"))
    return Group(*parts)


def all_ready(snapshot: Snapshot, names: Sequence[str] | None) -> bool:
    wanted = names or list(snapshot.bundles)
    return bool(wanted) and all(
        n in snapshot.bundles and bundle_line(snapshot.bundles[n]).state == "Ready" for n in wanted
    )


class ChangeLog:
    """The lines a log gets as snapshots come: a Bundle's line when it changed, the connection lost and
    back, and `all N Bundles are Ready` each time they all become Ready."""

    def __init__(self, names: Sequence[str] | None) -> None:
        self.names = names
        self.said: dict[str, str] = {}
        self.connected = True
        self.ready = False

    def lines(self, snapshot: Snapshot) -> list[str]:
        out = []
        if snapshot.connected != self.connected:
            self.connected = snapshot.connected
            out.append("connected again" if snapshot.connected else f"reconnecting… ({snapshot.trouble})")
        if not snapshot.connected:
            return out
        for name in self.names or sorted(snapshot.bundles):
            if (bundle := snapshot.bundles.get(name)) is not None and (
                said := summary(bundle)
            ) != self.said.get(name):
                out.append(said)
                self.said[name] = said
        ready = all_ready(snapshot, self.names)
        if ready and not self.ready:
            out.append(f"all {len(self.names or snapshot.bundles)} Bundles are Ready")
        self.ready = ready
        return out


async def watch(
    kube: KubeClient,
    namespace: str,
    names: Sequence[str] | None,
    *,
    console: Console,
    until_ready: bool = False,
) -> None:
    """Show the Bundles `names` (all of the namespace, when None) as they change, until interrupted or
    (`until_ready`) until all are Ready. A terminal gets the trees redrawn in place; a pipe or a log gets
    a line per change (see ChangeLog)."""
    if console.is_terminal:
        latest = Snapshot(trouble="connecting")
        with Live(console=console, refresh_per_second=2, get_renderable=lambda: view(latest, names, _now())):
            async for latest in follow(kube, namespace, names):
                if until_ready and all_ready(latest, names):
                    break
        if until_ready:
            console.print(f"all {len(names or latest.bundles)} Bundles are Ready")
        return
    log = ChangeLog(names)
    async for snapshot in follow(kube, namespace, names):
        for line in log.lines(snapshot):
            console.print(line, highlight=False, soft_wrap=True)
        if until_ready and log.ready:
            return


def summary(bundle: JSONObject) -> str:
    """A Bundle in one line (for logs): its state, ready count, each resource's state, and its error."""
    line = bundle_line(bundle)
    resources = " ".join(f"{r.name}:{r.state}" for r in resource_lines(bundle))
    text = f"{line.name:<14} {line.state:<10} {line.what:>5}  {resources}"
    return text + (f"\n{'':<15}error: {line.message}" if line.state == "Error" and line.message else "")


def _now() -> datetime:
    return datetime.now(UTC)
