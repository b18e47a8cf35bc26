"""Turn a Bundle object (as the API server holds it) into the model, or say everything wrong with it.

Both resource shapes are accepted: the object directly under `spec` (Smith's original shape) and
`spec: {object: ...}` (the later one). Every problem is collected, so a user fixes them in one pass.

Only what leaves the graph unknowable stops the whole Bundle (InvalidBundleError): a cycle, an unknown
or duplicate name, a resource without an object or a name to key it by, the Bundle's own shape and
limits. A problem of one resource's own content — a marker no reference declares, a bad path or
modifier, a plugin spec its schema refuses, a controller ownerReference — is kept to that resource, as
Go Smith kept it (`Bundle.refused`): it is a terminal error, its dependents wait, the rest goes on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final

from smith_engine.errors import (
    BundleError,
    CycleError,
    DuplicateObjectError,
    DuplicateReferenceError,
    DuplicateResourceError,
    ForeignNamespaceError,
    InvalidBundleError,
    InvalidExpressionError,
    InvalidFieldError,
    InvalidNameError,
    InvalidPathError,
    LimitError,
    MalformedMarkerError,
    MissingFieldError,
    OutputNotDependencyError,
    PluginSpecError,
    SelfDependencyError,
    UndeclaredReferenceError,
    UnknownDependencyError,
    UnknownModifierError,
)
from smith_engine.expressions import (
    EACH,
    OPEN,
    SELF,
    ExpressionError,
    check,
    expressions_in,
    names_read,
    resources_read,
    scan,
    variable,
    variables,
)
from smith_engine.graph import creation_waves
from smith_engine.limits import MAX_DEPTH, MAX_OUTSIDE, MAX_RESOURCES, ExpansionError, shown, too_deep
from smith_engine.model import (
    Bundle,
    JSONObject,
    Modifier,
    ObjectKey,
    PluginRef,
    Reference,
    Resource,
    dns1123_problem,
    resource_object,
)
from smith_engine.plugins import PluginInfo, identity, plugin_problems, plugin_ref, schema_problems
from smith_engine.references import (
    MarkerSyntaxError,
    PathSyntaxError,
    compile_path,
    markers_in,
    output_name,
    outputs_in,
    substitute,
)
from smith_engine.workloads import external_refs, outside_sources

_REFERENCE_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def load_bundle(obj: JSONObject, *, plugins: Mapping[str, PluginInfo] | None = None) -> Bundle:
    """The validated model of the Bundle `obj`. Raises InvalidBundleError listing every problem.
    `plugins` are the registered plugins by name: a plugin resource takes its object's kind from its
    plugin, and its spec is checked against the plugin's schema early, with the references' examples."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec")
    problems: list[BundleError] = []
    if (deep := too_deep(spec, MAX_DEPTH - 1)) is not None:  # the Bundle itself is level 1
        where = shown(("spec", *deep))
        raise InvalidBundleError(
            [LimitError(f"{where}: the Bundle is nested more than {MAX_DEPTH} levels deep")]
        )
    if not isinstance(spec, Mapping):
        raise InvalidBundleError([InvalidFieldError(resource="", field="spec", reason="must be an object")])
    raw_resources = spec.get("resources")
    raw_resources = [] if raw_resources is None else raw_resources
    if not isinstance(raw_resources, list):
        raise InvalidBundleError(
            [InvalidFieldError(resource="", field="spec.resources", reason="must be a list")]
        )
    if len(raw_resources) > MAX_RESOURCES:
        raise InvalidBundleError(
            [
                LimitError(
                    f"the Bundle has {len(raw_resources)} resources; one may have at most {MAX_RESOURCES}"
                )
            ]
        )
    namespace = str(metadata.get("namespace") or "")
    resources: list[Resource] = []
    refused: dict[str, tuple[BundleError, ...]] = {}
    known = variables(
        [r["name"] for r in raw_resources if isinstance(r, Mapping) and isinstance(r.get("name"), str)]
    )
    collections = frozenset(
        variable(r["name"])
        for r in raw_resources
        if isinstance(r, Mapping) and isinstance(r.get("name"), str) and r.get("forEach")
    )
    for index, raw in enumerate(raw_resources):
        resource, found, own = _parse_resource(
            raw, index=index, namespace=namespace, plugins=plugins or {}, known=known, lists=collections
        )
        problems.extend(found)
        if resource is not None:
            resources.append(resource)
            if own:
                refused[resource.name] = tuple(own)
    problems.extend(_bundle_problems(resources))
    for name, found in _reads_of_collections(resources).items():
        refused[name] = (*refused.get(name, ()), *found)
    if (outside := len(outside_sources(obj)) + len(external_refs(obj))) > MAX_OUTSIDE:
        problems.append(
            LimitError(
                f"the Bundle reads {outside} objects it does not hold (ConfigMaps and Secrets its objects "
                f"read, externalRefs); Smith reads and watches at most {MAX_OUTSIDE} for one Bundle"
            )
        )
    if problems:
        raise InvalidBundleError(problems)
    return Bundle(
        namespace=namespace,
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        generation=int(metadata.get("generation") or 0),
        resources=tuple(resources),
        description=str(spec.get("description") or obj.get("description") or ""),
        refused=refused,
    )


def _parse_resource(
    raw: Any,
    *,
    index: int,
    namespace: str,
    plugins: Mapping[str, PluginInfo],
    known: Mapping[str, str],
    lists: frozenset[str] = frozenset(),
) -> tuple[Resource | None, list[BundleError], list[BundleError]]:
    """The resource, the problems that stop the whole Bundle, and those of the resource alone."""
    if not isinstance(raw, Mapping):
        return (
            None,
            [InvalidFieldError(resource="", field=f"spec.resources[{index}]", reason="must be an object")],
            [],
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None, [MissingFieldError(resource=f"#{index}", field="name")], []
    problems: list[BundleError] = []
    if (why := dns1123_problem(name)) is not None:
        problems.append(InvalidNameError(resource=name, field="resource name", name=name, reason=why))
    if "externalRef" in raw:
        return _external(raw, name, namespace, problems)
    if shape := plugin_problems(raw.get("spec")):
        return None, [*problems, *(InvalidFieldError(resource=name, field=f, reason=r) for f, r in shape)], []
    plugin = plugin_ref(raw.get("spec"))
    obj = identity(plugin, plugins.get(plugin.name)) if plugin else resource_object(raw.get("spec"))
    content = plugin.spec if plugin else obj  # where its markers are
    if not isinstance(obj, Mapping):
        missing = MissingFieldError(resource=name, field="spec (the object, or spec.object)")
        return None, [*problems, missing], []
    depends_on = raw.get("dependsOn") or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        problems.append(
            InvalidFieldError(resource=name, field="dependsOn", reason="must be a list of resource names")
        )
        depends_on = []
    for_each = raw.get("forEach")
    if for_each is not None and (not isinstance(for_each, str) or plugin is not None):
        why = "a plugin's resource makes one object" if plugin else "must be an expression: ${...}"
        problems.append(InvalidFieldError(resource=name, field="forEach", reason=why))
        for_each = None
    problems.extend(_object_key_problems(name, _item_like(obj) if for_each else obj))
    references, own = _parse_references(name, raw.get("references") or [])
    if for_each and raw.get("references"):
        own.append(InvalidFieldError(resource=name, field="references", reason=FOR_EACH_REFERENCES))
    own.extend(_object_rule_problems(name, obj, namespace=namespace))
    own.extend(_marker_problems(name, content, references))
    dependencies = {*depends_on, *(r.resource for r in references)}
    outputs, found = _output_references(name, content, dependencies=dependencies)
    own.extend(found)
    references += outputs
    if plugin and (info := plugins.get(plugin.name)) and not found:
        own.extend(_early_plugin_problems(name, plugin, references, info, dependencies))
    cel = _expressions(name, raw, content, known, for_each=for_each, lists=lists)
    problems.extend(cel.shape)
    own.extend(cel.problems)
    resource = Resource(
        name=name,
        object=obj,
        depends_on=tuple(depends_on),
        references=references,
        plugin=plugin,
        expressions=cel.expressions,
        ready_when=cel.ready_when,
        include_when=cel.include_when,
        reads=cel.reads,
        for_each=cel.for_each,
    )
    return resource, problems, own


FOR_EACH_REFERENCES: Final = "a forEach resource reads its dependencies with expressions, not references"


def _reads_of_collections(resources: list[Resource]) -> dict[str, list[BundleError]]:
    """References to forEach resources (which stand for many objects: read with an expression), and
    plugin resources depending on them (a plugin is given one object per dependency)."""
    collections = {r.name for r in resources if r.for_each}
    found: dict[str, list[BundleError]] = {}
    for r in resources:
        if r.plugin is not None and (depended := sorted(r.dependencies & collections)):
            reason = f"a plugin's resource cannot depend on forEach resources ({', '.join(depended)})"
            found.setdefault(r.name, []).append(
                InvalidFieldError(resource=r.name, field="dependsOn", reason=reason)
            )
        for ref in r.references:
            if ref.resource in collections and ref.name:
                read = f"${{{variable(ref.resource)}}}"
                reason = f"{ref.resource!r} is a forEach resource, read with an expression: {read}"
                found.setdefault(r.name, []).append(
                    InvalidFieldError(resource=r.name, field="references", reason=reason)
                )
    return found


def _item_like(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """A forEach template as one of its items would be for the checks of its identity: its name (made
    of expressions) stood in for by a valid one; the items' own names are checked when planned."""
    metadata = obj.get("metadata")
    if (
        not isinstance(metadata, Mapping)
        or not isinstance(metadata.get("name"), str)
        or OPEN not in metadata["name"]
    ):
        return obj
    return {**obj, "metadata": {**metadata, "name": "item"}}


def _external(
    raw: Mapping[str, Any], name: str, namespace: str, problems: list[BundleError]
) -> tuple[Resource | None, list[BundleError], list[BundleError]]:
    """A resource naming an object Smith reads and never writes: `externalRef: {apiVersion, kind,
    metadata: {name}}`, in the Bundle's namespace."""
    ref = raw.get("externalRef")
    if raw.get("forEach") is not None:
        problems.append(
            InvalidFieldError(resource=name, field="forEach", reason="an externalRef is one object")
        )
    if raw.get("spec") is not None:
        problems.append(
            InvalidFieldError(resource=name, field="externalRef", reason="takes the place of spec")
        )
    if not isinstance(ref, Mapping):
        return (
            None,
            [*problems, InvalidFieldError(resource=name, field="externalRef", reason="must be an object")],
            [],
        )
    metadata = ref.get("metadata")
    meta: dict[str, Any] = dict(metadata) if isinstance(metadata, Mapping) else {}
    obj = {"apiVersion": ref.get("apiVersion"), "kind": ref.get("kind"), "metadata": meta}
    problems.extend(_object_key_problems(name, obj))
    own = list(_object_rule_problems(name, obj, namespace=namespace))
    depends_on = raw.get("dependsOn") or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        problems.append(
            InvalidFieldError(resource=name, field="dependsOn", reason="must be a list of resource names")
        )
        depends_on = []
    cel = _expressions(name, raw, {}, {})
    problems.extend(cel.shape)
    own.extend(cel.problems)
    if cel.include_when:
        problems.append(
            InvalidFieldError(resource=name, field="includeWhen", reason="an externalRef is read, never made")
        )
    resource = Resource(
        name=name,
        object={"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": meta.get("name")}},
        depends_on=tuple(depends_on),
        ready_when=cel.ready_when,
        external=True,
    )
    return resource, problems, own


@dataclass
class _Expressions:
    expressions: tuple[str, ...] = ()
    for_each: str = ""
    ready_when: tuple[str, ...] = ()
    include_when: tuple[str, ...] = ()
    reads: frozenset[str] = frozenset()
    shape: list[BundleError] = dataclass_field(default_factory=list)  # fields of the wrong type
    problems: list[BundleError] = dataclass_field(default_factory=list)  # the resource's own


def _expressions(
    resource: str,
    raw: Mapping[str, Any],
    content: Any,
    known: Mapping[str, str],
    *,
    for_each: str | None = None,
    lists: frozenset[str] = frozenset(),
) -> _Expressions:
    """The CEL expressions of a resource: those of its object (or plugin spec), its `forEach`, `readyWhen`
    and `includeWhen`; what they read; what is wrong with them (each a problem of this resource alone)."""
    own: tuple[str, ...] = (EACH,) if for_each else ()
    found = _Expressions(expressions=tuple(dict.fromkeys(expressions_in(content, known, own))))
    reads: set[str] = set()
    names = tuple(known)
    for source in found.expressions:
        reads |= resources_read(source, known)
        found.problems.extend(_checked(resource, "object", source, (*names, *own), lists=lists))
    if for_each:
        found.for_each = condition_source(for_each)
        reads |= resources_read(found.for_each, known)
        found.problems.extend(_checked(resource, "forEach", found.for_each, names, lists=lists))
        name = (content.get("metadata") or {}).get("name") if isinstance(content, Mapping) else None
        if not any(EACH in names_read(s) for s in expressions_in(name, known, own)):
            reason = "must vary with each element: make it with ${each}, e.g. app-${each}"
            found.problems.append(InvalidFieldError(resource=resource, field="metadata.name", reason=reason))
    for field, into in (("includeWhen", "include_when"), ("readyWhen", "ready_when")):
        conditions = raw.get(field) or []
        if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
            found.shape.append(
                InvalidFieldError(resource=resource, field=field, reason="must be a list of strings")
            )
            continue
        sources = tuple(condition_source(c) for c in conditions)
        setattr(found, into, sources)
        for index, source in enumerate(sources):
            where = f"{field}[{index}]"
            if field == "readyWhen":
                itself = (SELF, variable(resource))
                found.problems.extend(_checked(resource, where, source, itself, hint=READY_WHEN_HINT))
            else:
                reads |= resources_read(source, known)
                found.problems.extend(_checked(resource, where, source, names, lists=lists))
    found.reads = frozenset(reads)
    return found


READY_WHEN_HINT: Final = "readyWhen reads its own object only, as `self`"


def condition_source(text: str) -> str:
    """A `readyWhen` or `includeWhen` entry's expression: `${...}` as a whole, or the text itself."""
    whole = next(scan(text.strip()), None)
    stripped = text.strip()
    if whole is not None and (whole.start, whole.end) == (0, len(stripped)):
        return whole.source
    return stripped


def _checked(
    resource: str,
    field: str,
    source: str,
    names: Sequence[str],
    *,
    hint: str = "",
    lists: frozenset[str] = frozenset(),
) -> Iterator[BundleError]:
    try:
        check(source, names, lists)
    except ExpressionError as e:
        reason = f"{e} ({hint})" if hint and "undeclared reference" in str(e) else str(e)
        yield InvalidExpressionError(resource=resource, field=field, expression=source, reason=reason)


def _early_plugin_problems(
    resource: str,
    plugin: PluginRef,
    references: tuple[Reference, ...],
    info: PluginInfo,
    dependencies: set[str],
) -> list[BundleError]:
    """The plugin's spec against its schema before any dependency is READY, each reference's `example`
    in place of its value: a Bundle that can never work fails at once, not half-way. A spec with a marker
    whose reference has no example is checked when its values are known."""
    examples = {r.name: r.example for r in references if r.carries_value and r.example is not None}
    declared = {r.name for r in references if r.carries_value}
    try:
        if not markers_in(plugin.spec, declared) <= examples.keys() or outputs_in(plugin.spec, dependencies):
            return []
        problems = schema_problems(info.schema, substitute(dict(plugin.spec), examples))
    except MarkerSyntaxError:
        return []  # reported by _marker_problems
    except ExpansionError:
        return []  # told on the resource when its values are known
    return (
        [PluginSpecError(resource=resource, plugin=info.name, problems=tuple(problems))] if problems else []
    )


def _parse_references(resource: str, raw: Any) -> tuple[tuple[Reference, ...], list[BundleError]]:
    if not isinstance(raw, list):
        return (), [InvalidFieldError(resource=resource, field="references", reason="must be a list")]
    references: list[Reference] = []
    problems: list[BundleError] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        field = f"references[{index}]"
        if not isinstance(item, Mapping):
            problems.append(InvalidFieldError(resource=resource, field=field, reason="must be an object"))
            continue
        name, target, path = item.get("name") or "", item.get("resource"), item.get("path") or ""
        if not isinstance(target, str) or not target:
            problems.append(InvalidFieldError(resource=resource, field=field, reason="needs a resource"))
            continue
        if not isinstance(name, str) or not isinstance(path, str):
            problems.append(
                InvalidFieldError(resource=resource, field=field, reason="name and path must be strings")
            )
            continue
        if name and not _REFERENCE_NAME.match(name):
            problems.append(
                InvalidNameError(
                    resource=resource,
                    field="reference name",
                    name=name,
                    reason="use letters, digits, '-', '_' or '.'",
                )
            )
        if name and name in seen:
            problems.append(DuplicateReferenceError(resource=resource, reference=name))
        seen.add(name)
        if path:
            try:
                compile_path(path)
            except PathSyntaxError as e:
                problems.append(
                    InvalidPathError(resource=resource, reference=name or target, path=path, reason=str(e))
                )
        modifier: Modifier | None = None
        if (raw_modifier := item.get("modifier")) not in (None, ""):
            try:
                modifier = Modifier(raw_modifier)
            except ValueError:
                problems.append(
                    UnknownModifierError(
                        resource=resource,
                        reference=name or target,
                        modifier=str(raw_modifier),
                        known=tuple(m.value for m in Modifier),
                    )
                )
        references.append(
            Reference(name=name, resource=target, path=path, modifier=modifier, example=item.get("example"))
        )
    return tuple(references), problems


def _output_references(
    resource: str, obj: JSONObject, *, dependencies: set[str]
) -> tuple[tuple[Reference, ...], list[BundleError]]:
    """The `{{resource#path}}` markers of Smith's first form, as references (each to a dependency)."""
    references: list[Reference] = []
    problems: list[BundleError] = []
    for target, path in sorted(outputs_in(obj, dependencies)):
        marker = f"{{{{{target}#{path}}}}}"
        if target not in dependencies:
            problems.append(OutputNotDependencyError(resource=resource, marker=marker, target=target))
            continue
        try:
            compile_path(path)
        except PathSyntaxError as e:
            problems.append(InvalidPathError(resource=resource, reference=marker, path=path, reason=str(e)))
            continue
        references.append(Reference(name=output_name(target, path), resource=target, path=path))
    return tuple(references), problems


def _object_key_problems(resource: str, obj: JSONObject) -> Iterator[BundleError]:
    """What leaves the object without an identity (its kind and name): the Bundle's graph of objects
    (two resources for one object, objects removed) cannot be known."""
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj.get(field):
            yield MissingFieldError(resource=resource, field=field)
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        yield MissingFieldError(resource=resource, field="metadata.name")
        return
    name = metadata["name"]
    if (why := dns1123_problem(name)) is not None:
        yield InvalidNameError(resource=resource, field="metadata.name", name=name, reason=why)


def _object_rule_problems(resource: str, obj: JSONObject, *, namespace: str) -> Iterator[BundleError]:
    """What the object may not say (a controller of its own, another namespace): its resource's own."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return
    if any(isinstance(o, Mapping) and o.get("controller") for o in metadata.get("ownerReferences") or []):
        yield InvalidFieldError(
            resource=resource,
            field="metadata.ownerReferences",
            reason="must not name a controller: Smith makes the Bundle the controller of every object",
        )
    own_namespace = metadata.get("namespace")
    if own_namespace not in (None, "", namespace):
        yield ForeignNamespaceError(
            resource=resource, namespace=str(own_namespace), bundle_namespace=namespace
        )


def _marker_problems(
    resource: str, obj: JSONObject, references: tuple[Reference, ...]
) -> Iterator[BundleError]:
    declared = tuple(r.name for r in references if r.name and r.path)
    try:
        used = markers_in(obj, declared)
    except MarkerSyntaxError as e:
        yield MalformedMarkerError(resource=resource, text=e.text)
        return
    for marker in sorted(used - set(declared)):
        yield UndeclaredReferenceError(resource=resource, reference=marker, declared=declared)


def _bundle_problems(resources: list[Resource]) -> Iterator[BundleError]:
    counts: dict[str, int] = defaultdict(int)
    for r in resources:
        counts[r.name] += 1
    for name in sorted(n for n, c in counts.items() if c > 1):
        yield DuplicateResourceError(resource=name)
    by_object: dict[ObjectKey, list[str]] = defaultdict(list)
    for r in resources:
        by_object[r.key].append(r.name)
    for key, sharing in sorted(by_object.items()):
        if len(sharing) > 1:
            yield DuplicateObjectError(resources=tuple(sharing), object=str(key))
    deps = {r.name: r.dependencies for r in resources}
    names = deps.keys()
    for r in resources:
        if r.name in r.dependencies:
            yield SelfDependencyError(resource=r.name)
        if missing := r.dependencies - names:
            yield UnknownDependencyError(resource=r.name, missing=tuple(sorted(missing)))
    if any(c > 1 for c in counts.values()):
        return  # the graph of a bundle with duplicate names is not well defined
    acyclic = {n: frozenset(d & names) - {n} for n, d in deps.items()}
    try:
        creation_waves(acyclic)
    except CycleError as e:
        yield e
