"""`smith plan --cluster`: what each resource of a Bundle file would do against the live cluster, with
nothing written. Smith's own planner decides, from the objects as they are; every object it would apply
goes to the API server as a server-side dry run, and the answer is compared field by field with what is
stored. Wave by wave: a dry run's answer stands for the object when the next wave's references read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smith_cli.plan import with_examples
from smith_engine.changes import FieldChange, changed_fields, desired_hash, digest, foreign_keys
from smith_engine.model import API_VERSION, BUNDLE_KIND, JSONObject
from smith_engine.planner import Apply, Observed, VerdictState, plan_bundle
from smith_engine.readiness import READY, assess
from smith_engine.validation import load_bundle
from smith_kube import ApiError, KubeClient, NotFoundError, UnservedKindError

FIELD_MANAGER = "smith"  # the executors' field manager: the dry run predicts their apply
NEW_BUNDLE_UID = "00000000-0000-0000-0000-000000000000"  # owner of the objects of a Bundle not there yet


@dataclass(frozen=True)
class Preview:
    resource: str
    action: str  # create, update, unchanged, blocked, waits, refused
    what: str = ""  # `Kind name`
    detail: str = ""
    changes: tuple[FieldChange, ...] = ()


def _what(obj: JSONObject) -> str:
    return f"{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


async def preview(kube: KubeClient, document: JSONObject) -> list[Preview]:
    """What applying the Bundle `document` would do to each of its resources, in creation order."""
    meta = document["metadata"]
    try:
        live_bundle = await kube.get(API_VERSION, BUNDLE_KIND, meta["name"], meta["namespace"])
        uid = live_bundle["metadata"]["uid"]
    except NotFoundError:
        uid = NEW_BUNDLE_UID
    bundle = load_bundle({**document, "metadata": {**meta, "uid": uid}})
    now = datetime.now(UTC)
    cluster: dict[str, Observed] = {}
    live: dict[str, JSONObject] = {}
    done: dict[str, Preview] = {}
    for resource in bundle.resources:
        if resource.plugin is not None:
            continue
        obj = resource.object
        try:
            found = await kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], bundle.namespace)
        except NotFoundError:
            continue
        except UnservedKindError as e:
            done[resource.name] = Preview(resource.name, "refused", _what(obj), str(e))
            continue
        live[resource.name] = found
        cluster[resource.name] = Observed(found, assess(found, now=now))
    while True:
        plan = plan_bundle(bundle, cluster.values(), now=now)
        applies = [a for a in plan.actions if isinstance(a, Apply) and a.resource not in done]
        if not applies:
            break
        for action in applies:
            done[action.resource], predicted = await _dry_run(kube, action, live.get(action.resource))
            if predicted is not None:  # taken as READY: the next wave reads what it would hold
                held = with_examples(bundle, action.resource, dict(predicted))
                cluster[action.resource] = Observed(held, READY, in_sync_with=desired_hash(action.object))
    for verdict in plan.verdicts:
        if verdict.resource in done:
            continue
        state = {VerdictState.BLOCKED: "blocked", VerdictState.ERROR: "refused"}.get(verdict.state, "waits")
        obj = bundle.by_name[verdict.resource].object
        done[verdict.resource] = Preview(verdict.resource, state, _what(obj), verdict.message)
    order = [r.name for r in bundle.resources]
    return sorted(done.values(), key=lambda p: order.index(p.resource))


async def _dry_run(
    kube: KubeClient, action: Apply, stored: JSONObject | None
) -> tuple[Preview, JSONObject | None]:
    """What the apply of `action` would do to `stored` (None: not there), and the object it would leave
    (None: refused)."""
    what = _what(action.object)
    try:
        predicted = await kube.apply(action.object, field_manager=FIELD_MANAGER, dry_run=True)
    except (ApiError, UnservedKindError) as e:
        return Preview(action.resource, "refused", what, str(e)), None
    if stored is None:
        return Preview(action.resource, "create", what), predicted
    if digest(predicted) == digest(stored) and not foreign_keys(action.object, predicted):
        return Preview(action.resource, "unchanged", what), predicted
    changes = tuple(changed_fields(stored, predicted))
    return Preview(action.resource, "update", what, changes=changes), predicted


def preview_lines(previews: list[Preview]) -> list[str]:
    marks = {"create": "+", "update": "~", "unchanged": "=", "blocked": "⏸", "waits": "…", "refused": "✗"}
    width = max((len(p.resource) for p in previews), default=0)
    lines = []
    for p in previews:
        line = f"  {marks.get(p.action, '?')} {p.action:<9} {p.resource:<{width}}  {p.what}"
        lines.append(line + (f": {p.detail}" if p.detail else ""))
        lines += [f"      {c.path}: {_value(c.before)} → {_value(c.after)}" for c in p.changes]
    return lines


def _value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
