"""Every manifest we ship is accepted by the real API server (server-side dry run): the CRDs, each
service's Deployment, and every sample Bundle against the installed Bundle CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smith_kube import KubeClient
from smith_kube.client import APPLY_PATCH
from support import ROOT

pytestmark = pytest.mark.controlplane

MANIFESTS = sorted(
    [
        *ROOT.glob("services/*/deploy/*.yaml"),
        *ROOT.glob("deploy/crds/*.yaml"),
        *ROOT.glob("deploy/servicecatalog/*.yaml"),
        *ROOT.glob("deploy/samples/crds/*.yaml"),
    ]
)


async def dry_run(kube: KubeClient, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """Server-side apply with dryRun=All: validated and defaulted like a real write, stored nowhere."""
    info = await kube.resource(doc["apiVersion"], doc["kind"])
    path = info.path(namespace or doc["metadata"].get("namespace"), doc["metadata"]["name"])
    params = {"dryRun": "All", "fieldManager": "smith-tests", "force": "true"}
    return await kube.request("PATCH", path, params=params, body=doc, content_type=APPLY_PATCH)


DOCS = [(p, d) for p in MANIFESTS for d in yaml.safe_load_all(p.read_text())]
SAMPLES = [(p, yaml.safe_load(p.read_text())) for p in sorted(ROOT.glob("deploy/samples/*.yaml"))]


def doc_id(entry: tuple[Path, dict[str, Any]]) -> str:
    return f"{entry[0].relative_to(ROOT)}:{entry[1]['kind']}"


@pytest.mark.parametrize("entry", DOCS, ids=doc_id)
async def test_manifest_is_accepted_by_the_api_server(
    kube: KubeClient, smith: Any, entry: tuple[Path, dict[str, Any]]
) -> None:
    _, doc = entry
    accepted = await dry_run(kube, doc)
    assert accepted["metadata"]["name"] == doc["metadata"]["name"]


@pytest.mark.parametrize("entry", SAMPLES, ids=lambda e: e[0].name)
async def test_sample_bundle_is_accepted_and_keeps_its_description(
    kube: KubeClient, smith: Any, namespace: str, entry: tuple[Path, dict[str, Any]]
) -> None:
    _, doc = entry
    accepted = await dry_run(kube, doc, namespace)
    assert accepted["spec"] == doc["spec"]
    assert accepted.get("description") == doc.get("description")
