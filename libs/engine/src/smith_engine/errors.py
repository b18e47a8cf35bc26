"""Typed errors for invalid bundles. Each carries the data that explains it, so the status can name
exactly what is wrong and tests can assert on fields instead of message text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class BundleError(Exception):
    """One problem with a Bundle; `str()` is the user's message.

    Subclasses are dataclasses, not frozen ones: pytest and hypothesis add notes to exceptions.
    """

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        raise NotImplementedError


@dataclass
class DuplicateResourceError(BundleError):
    resource: str

    @property
    def message(self) -> str:
        return f"resource name {self.resource!r} is used more than once"


@dataclass
class DuplicateObjectError(BundleError):
    resources: tuple[str, ...]
    object: str

    @property
    def message(self) -> str:
        return f"resources {', '.join(map(repr, self.resources))} describe the same object {self.object}"


@dataclass
class UnknownDependencyError(BundleError):
    resource: str
    missing: tuple[str, ...]

    @property
    def message(self) -> str:
        names = ", ".join(map(repr, self.missing))
        return f"resource {self.resource!r} depends on {names}, which the bundle does not have"


@dataclass
class SelfDependencyError(BundleError):
    resource: str

    @property
    def message(self) -> str:
        return f"resource {self.resource!r} depends on itself"


@dataclass
class CycleError(BundleError):
    """`cycle` lists the members in dependency order and repeats the first at the end: a -> b -> a."""

    cycle: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"dependency cycle: {' -> '.join(self.cycle)}"


@dataclass
class MissingFieldError(BundleError):
    resource: str
    field: str

    @property
    def message(self) -> str:
        return f"resource {self.resource!r}: the object has no {self.field}"


@dataclass
class InvalidFieldError(BundleError):
    """A field of the right name with the wrong type or shape."""

    resource: str
    field: str
    reason: str

    @property
    def message(self) -> str:
        where = f"resource {self.resource!r}: " if self.resource else ""
        return f"{where}{self.field} {self.reason}"


@dataclass
class InvalidNameError(BundleError):
    resource: str
    field: str
    name: str
    reason: str

    @property
    def message(self) -> str:
        where = f"resource {self.resource!r}: " if self.resource else ""
        return f"{where}{self.field} {self.name!r} is not a valid name: {self.reason}"


@dataclass
class ForeignNamespaceError(BundleError):
    resource: str
    namespace: str
    bundle_namespace: str

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: object is in namespace {self.namespace!r}, but objects of a "
            f"bundle live in the bundle's namespace {self.bundle_namespace!r}"
        )


@dataclass
class UndeclaredReferenceError(BundleError):
    """A `!{name}` marker that no reference of the resource declares."""

    resource: str
    reference: str
    declared: tuple[str, ...]

    @property
    def message(self) -> str:
        known = ", ".join(self.declared) or "none"
        return (
            f"resource {self.resource!r}: marker !{{{self.reference}}} names no declared reference "
            f"(declared: {known})"
        )


@dataclass
class DuplicateReferenceError(BundleError):
    resource: str
    reference: str

    @property
    def message(self) -> str:
        return f"resource {self.resource!r}: reference name {self.reference!r} is declared more than once"


@dataclass
class MalformedMarkerError(BundleError):
    resource: str
    text: str

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: malformed reference marker in {self.text!r} "
            "(expected !{name} with a name of letters, digits, '-', '_' or '.')"
        )


@dataclass
class UnknownModifierError(BundleError):
    resource: str
    reference: str
    modifier: str
    known: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: reference {self.reference!r} has unknown modifier "
            f"{self.modifier!r} (known: {', '.join(self.known)})"
        )


@dataclass
class InvalidPathError(BundleError):
    resource: str
    reference: str
    path: str
    reason: str

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: reference {self.reference!r} has invalid path {self.path!r}: "
            f"{self.reason}"
        )


@dataclass
class InvalidExpressionError(BundleError):
    """A CEL expression (`${...}`, `readyWhen`, `includeWhen`) that cannot be parsed or type-checked,
    or that cannot be evaluated."""

    resource: str
    field: str  # where it is: `object`, `readyWhen[0]`, `includeWhen[1]`
    expression: str
    reason: str

    @property
    def message(self) -> str:
        shown = self.expression if len(self.expression) <= 120 else self.expression[:117] + "..."
        return f"resource {self.resource!r}: {self.field} expression ${{{shown}}}: {self.reason}"


@dataclass
class OutputNotDependencyError(BundleError):
    """A `{{resource#path}}` marker naming a resource this one does not depend on."""

    resource: str
    marker: str
    target: str

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: {self.marker} reads resource {self.target!r}, which is not "
            f"one of its dependencies (add it to dependsOn)"
        )


class InvalidBundleError(Exception):
    """Every problem found in a Bundle, in a stable order."""

    def __init__(self, problems: Sequence[BundleError]) -> None:
        self.problems = tuple(problems)
        told = [_short(p.message) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            told.append(f"and {len(self.problems) - MAX_PROBLEMS} more problems")
        super().__init__("; ".join(told))


MAX_PROBLEMS = 20  # problems an invalid Bundle's message tells, 500 characters of each (see limits)


def _short(message: str, most: int = 500) -> str:
    return message if len(message) <= most else message[: most - 1] + "…"


@dataclass
class PluginSpecError(BundleError):
    """A plugin resource's spec that does not fit the plugin's JSON Schema (checked early, with the
    references' examples in place of their values)."""

    resource: str
    plugin: str
    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"resource {self.resource!r}: the spec does not fit plugin {self.plugin!r}'s schema: "
            + "; ".join(self.problems)
        )


@dataclass
class ParametersError(BundleError):
    """A ServiceInstance's parameters that do not fit its plan's instanceCreateParameterSchema."""

    resource: str
    plan: str
    problems: tuple[str, ...]

    @property
    def detail(self) -> str:
        return f"the parameters do not fit plan {self.plan!r}'s schema: " + "; ".join(self.problems)

    @property
    def message(self) -> str:
        return f"resource {self.resource!r}: {self.detail}"


@dataclass
class LimitError(BundleError):
    """A Bundle beyond one of Smith's limits (see smith_engine.limits): what is over, and the limit."""

    what: str

    @property
    def message(self) -> str:
        return self.what
