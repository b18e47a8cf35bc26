"""`smith migrate`: before a cutover from Go Smith, what each Bundle will do differently here.

Read from Bundle files, or from the cluster where Go Smith runs (every Bundle, and the objects it made).
Each finding says what happens at cutover; a finding that `blocks` needs a change first (a Bundle or a
resource refused here, text whose meaning changes), and the command's exit status says whether any does.
The rest is told so nobody is surprised: a Deployment that rolls once, objects Smith updates, fields of
Go Smith's writes moved to Smith's apply, soft-delete countdowns that start again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smith_cli.preview import preview
from smith_engine.errors import InvalidBundleError
from smith_engine.managedfields import upgraded
from smith_engine.model import BUNDLE_NAME_LABEL, Bundle, GroupKind, JSONObject, Resource
from smith_engine.references import escaped_markers, markers_in
from smith_engine.servicecatalog import SERVICE_INSTANCE, parameter_problems
from smith_engine.validation import load_bundle
from smith_kube import ApiError, KubeClient, NotFoundError, UnservedKindError
from smith_kube.catalog import service_catalog

FIELD_MANAGER = "smith"
ROLLS = "spec.template"  # a change under a workload's pod template rolls its Pods


@dataclass(frozen=True)
class Finding:
    what: str
    blocks: bool = False  # cutover is not safe until this is dealt with


def document_findings(document: JSONObject) -> list[Finding]:
    """What the Bundle `document` (a file, or as the cluster holds it) does differently here, from the
    Bundle alone."""
    try:
        bundle = load_bundle(document)
    except InvalidBundleError as e:
        return [Finding(f"refused here as a whole: {p}", blocks=True) for p in e.problems]
    found = [Finding(f"refused here: {p}", blocks=True) for own in bundle.refused.values() for p in own]
    found += list(_meaning_changes(bundle))
    pending = ((document.get("status") or {}).get("objectsToDelete")) or []
    waiting = [p for p in pending if isinstance(p, Mapping) and not p.get("deletionDue")]
    if waiting:
        names = ", ".join(f"{p.get('kind')} {p.get('name')}" for p in waiting)
        told = f"removed from the Bundle, not deleted yet: {names}; a deletionDelay counts again from cutover"
        found.append(Finding(told))
    return found


def _meaning_changes(bundle: Bundle) -> Iterator[Finding]:
    """Text Go Smith left as written that Smith substitutes: `!{name}` inside a longer string, where
    `name` is a reference the resource declares."""
    for resource in bundle.resources:
        declared = {r.name for r in resource.references if r.carries_value and "#" not in r.name}
        for where, text in _strings(_content(resource), ""):
            if text.startswith("!{") and text.endswith("}"):
                continue  # a whole-string marker: substituted by Go Smith too
            for name in sorted(markers_in(text, declared)):
                told = (
                    f"resource {resource.name!r}: {where} says !{{{name}}} inside longer text: Go Smith "
                    f"left it as written, Smith puts the reference's value there; to keep the text, "
                    f"write \\!{{{name}}}"
                )
                yield Finding(told, blocks=True)
            for name in sorted(set(escaped_markers(text)) & declared):
                told = (  # told, not blocking: it is also how a team keeps the text after the above
                    f"resource {resource.name!r}: {where} says \\!{{{name}}}: Go Smith kept the backslash, "
                    f"Smith reads it as the escape of !{{{name}}} and writes that"
                )
                yield Finding(told)


def _content(resource: Resource) -> Any:
    return resource.plugin.spec if resource.plugin is not None else resource.object


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


async def live_findings(kube: KubeClient, document: JSONObject) -> list[Finding]:
    """What happens at cutover to the objects of the live Bundle `document`: what Smith updates (and
    which workloads roll), and whose fields Go Smith's plain writes own."""
    found: list[Finding] = []
    try:
        bundle = load_bundle(document)
    except InvalidBundleError:
        return found  # told by document_findings
    for resource in bundle.resources:
        obj = resource.object
        try:
            stored = await kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], bundle.namespace)
        except (NotFoundError, UnservedKindError):
            continue
        if stored.get("metadata", {}).get("labels", {}).get(BUNDLE_NAME_LABEL) != bundle.name:
            continue
        if upgraded(stored["metadata"].get("managedFields"), manager=FIELD_MANAGER) is not None:
            found.append(
                Finding(
                    f"{obj['kind']} {obj['metadata']['name']}: the fields Go Smith's writes own move to "
                    f"Smith's apply once, so what the Bundle no longer says goes from it"
                )
            )
    catalog = await service_catalog(kube) if any(_is_instance(r) for r in bundle.resources) else []
    found += [
        Finding(f"refused here: resource {name!r}: {why}", blocks=True)
        for name, why in sorted(parameter_problems(bundle, catalog).items())
    ]
    try:
        previews = await preview(kube, document)
    except (ApiError, InvalidBundleError) as e:
        return [*found, Finding(f"could not be previewed: {e}", blocks=True)]
    plugged = {r.name for r in bundle.resources if r.plugin is not None}
    for p in previews:
        if p.resource in plugged:
            continue  # made by a plugin: the preview does not call plugins
        if p.action == "refused":
            found.append(Finding(f"resource {p.resource!r} ({p.what}) refused here: {p.detail}", blocks=True))
        elif p.action == "update":
            fields = ", ".join(c.path for c in p.changes) or "its fields"
            rolls = " (its Pods roll once)" if any(c.path.startswith(ROLLS) for c in p.changes) else ""
            found.append(Finding(f"{p.what} is updated at cutover{rolls}: {fields}"))
    return found


def _is_instance(resource: Resource) -> bool:
    return GroupKind.of(resource.object) == SERVICE_INSTANCE


def report_lines(name: str, findings: list[Finding]) -> list[str]:
    if not findings:
        return [f"✓ {name}: nothing changes"]
    mark = "✗" if any(f.blocks for f in findings) else "~"
    return [f"{mark} {name}", *(f"  {'✗' if f.blocks else '·'} {f.what}" for f in findings)]
