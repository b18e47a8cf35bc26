"""`smith migrate` on a plane where Go Smith ran: Bundles with its finalizer and the status it wrote, and
objects written the way it wrote them (plain Create and Update under its user agent). It tells, per
Bundle, what changes at cutover, and exits 1 while any Bundle needs a change first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from live import Json, as_go_smith, bundle, run_smith
from smith_engine.deletion import FINALIZER
from smith_kube import KubeClient
from support import config_map, resource

GO_SMITH_STATUS = {
    "observedGeneration": 1,
    "conditions": [
        {"type": "InProgress", "status": "False", "lastTransitionTime": "2026-01-05T10:00:00Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-05T10:00:00Z"},
        {"type": "Error", "status": "False", "lastTransitionTime": "2026-01-05T10:00:00Z"},
    ],
    "objectsToDelete": [{"group": "", "version": "v1", "kind": "ConfigMap", "name": "retired"}],
}


async def as_go_smith_left_it(kube: KubeClient, document: Json, objects: list[Json]) -> None:
    document["metadata"]["finalizers"] = [FINALIZER]
    made = await kube.create(document)
    meta = made["metadata"]
    for obj in objects:
        obj["metadata"]["namespace"] = meta["namespace"]
        await as_go_smith(kube, "POST", obj, bundle=meta["name"], bundle_uid=meta["uid"])
    await kube.patch(
        "smith.atlassian.com/v1",
        "Bundle",
        meta["name"],
        {"status": GO_SMITH_STATUS},
        namespace=meta["namespace"],
        subresource="status",
    )


async def test_migrate_tells_what_changes_and_whether_cutover_is_safe(
    kube: KubeClient, namespace: str, kubeconfig: Path, tmp_path: Path, smith_without_controller: Any
) -> None:
    """Smith's CRDs are installed, its controller not running: Go Smith is the one acting."""
    settings = config_map("settings", {"LOG_LEVEL": "info"})
    await as_go_smith_left_it(
        kube,
        bundle("app", namespace, resource("settings", settings)),
        [config_map("settings", {"LOG_LEVEL": "info"})],
    )
    script = config_map("script", {"run.sh": "#!/bin/sh\necho !{host} !{HOME}"})
    refs = [{"name": "host", "resource": "settings", "path": "data.LOG_LEVEL"}]
    scripted = bundle(
        "scripted",
        namespace,
        resource("settings", config_map("other")),
        resource("script", script, references=refs),
    )
    await as_go_smith_left_it(kube, scripted, [])
    claimed = config_map("claimed")
    claimed["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1", "controller": True}
    ]
    await as_go_smith_left_it(kube, bundle("claimed", namespace, resource("claimed", claimed)), [])

    code, out, err = await run_smith(kubeconfig, "migrate", "-n", namespace)
    assert code == 1, (out, err)
    assert f"~ {namespace}/app\n" in out  # changes, none blocking
    assert "ConfigMap settings: the fields Go Smith's writes own move to Smith's apply once" in out
    assert "removed from the Bundle, not deleted yet: ConfigMap retired; a deletionDelay counts again" in out
    assert f"✗ {namespace}/scripted\n" in out
    assert "data.run.sh says !{host} inside longer text" in out
    assert "write \\!{host}" in out
    assert "!{HOME}" not in out, "undeclared text is literal here too: nothing to tell"
    assert f"✗ {namespace}/claimed\n" in out
    assert "refused here: resource 'claimed': metadata.ownerReferences must not name a controller" in out
    assert out.endswith("cutover is not safe: 2 of 3 Bundles need a change first\n"), out

    fixed = tmp_path / "scripted.yaml"
    script["data"]["run.sh"] = "#!/bin/sh\necho \\!{host} !{HOME}"
    fixed.write_text(yaml.safe_dump(scripted))
    code, out, err = await run_smith(kubeconfig, "migrate", str(fixed))
    assert (code, err) == (0, ""), out
    assert out.startswith(f"~ {fixed}\n  · resource 'script': data.run.sh says \\!{{host}}: Go Smith kept"), (
        out
    )
    assert out.endswith("cutover is safe: 1 Bundles checked\n")
