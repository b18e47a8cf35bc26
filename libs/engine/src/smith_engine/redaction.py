"""Values out of error messages. Pure.

The API server's validation errors echo the value they refuse (`metadata.labels: Invalid value:
"aHVudGVyMg==": a valid label must ...`), and such a value may have come from a Secret (a reference
to one, `bindsecret`). Smith passes these messages on (status, Events, logs, spans), so it takes the
values out first, keeping the field and the rule that was broken."""

from __future__ import annotations

import re
from typing import Final

REDACTED: Final = '"[value not shown]"'
# `Invalid value: "…"` (a string, quoted as Go's %q), or a Go %#v of a map, slice or struct.
_QUOTED: Final = r'"(?:[^"\\]|\\.)*"'
_GO_VALUE: Final = r"[\w.\[\]*]*\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}"  # two levels of braces
_ECHOED: Final = re.compile(rf"((?:Invalid|Unsupported|Duplicate) value: )({_QUOTED}|{_GO_VALUE})")


def without_values(message: str) -> str:
    """`message` with every value the API server echoed replaced by a placeholder."""
    return _ECHOED.sub(lambda m: m.group(1) + REDACTED, message)
