"""A Secret's value never shown, on an error path: a reference puts it where the API server refuses it,
and its 422 echoes the value; the status, the Events and the spans tell the error without it."""

from __future__ import annotations

import base64
import json
from typing import Any

from live import bundle, get_bundle, resource_condition
from smith_kube import KubeClient
from support import config_map, eventually, resource

PASSWORD = "hunter2!"


async def test_a_secret_value_the_api_server_echoes_in_an_error_is_shown_nowhere(
    kube: KubeClient, namespace: str, smith: Any
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": PASSWORD},
    }
    labelled = config_map("labelled", {"a": "1"})
    labelled["metadata"]["labels"] = {"password": "!{pw}"}  # base64 ends in "=": not a label value
    refs = [{"name": "pw", "resource": "creds", "path": "data.password"}]
    await kube.create(
        bundle("leaky", namespace, resource("creds", secret), resource("labelled", labelled, references=refs))
    )
    seen: dict[str, Any] = {}

    async def refused() -> bool:
        nonlocal seen
        seen = await get_bundle(kube, namespace, "leaky")
        return resource_condition(seen, "labelled", "Error").get("status") == "True"

    await eventually(refused, within=60, what="the label refused")
    message = resource_condition(seen, "labelled", "Error")["message"]
    assert "metadata.labels" in message, message
    assert "Invalid value" in message, message
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    events = json.dumps((await kube.list("v1", "Event", namespace))["items"])
    spans = json.dumps([json.loads(s.to_json()) for s in smith.spans.get_finished_spans()])
    for where, text in (("status", json.dumps(seen["status"])), ("Events", events), ("spans", spans)):
        assert PASSWORD not in text, where
        assert encoded not in text, where
