"""Objects Go Smith wrote, adopted at cutover. Go Smith created and updated objects with plain Create
and Update calls under its user agent (`smith/<version> (linux/amd64) kubernetes/<commit>`, set by
atlassian/ctrl from the controller's name), so the API server recorded their fields as owned by manager
`smith`, operation Update. Smith writes by server-side apply (manager `smith`, operation Apply): what a
Bundle stops saying — a key, a label, an annotation — must still go from those objects."""

from __future__ import annotations

from typing import Any

from live import Json, as_go_smith, bundle, edit_bundle, until_condition
from smith_kube import KubeClient
from support import config_map, resource


async def test_what_the_bundle_no_longer_says_goes_from_an_object_go_smith_wrote(
    kube: KubeClient, namespace: str, smith_without_controller: Any
) -> None:
    smith = smith_without_controller
    settings = config_map("settings", {"LOG_LEVEL": "info", "FEATURE_X": "on"})
    settings["metadata"].update(labels={"tier": "web"}, annotations={"example.com/owner": "team-a"})
    made = await kube.create(bundle("moved", namespace, resource("settings", settings)))
    uid = made["metadata"]["uid"]
    old = config_map("settings", {"LOG_LEVEL": "debug", "FEATURE_X": "on"})
    old["metadata"].update(
        namespace=namespace, labels={"tier": "web"}, annotations={"example.com/owner": "team-a"}
    )
    created = await as_go_smith(kube, "POST", old, bundle="moved", bundle_uid=uid)
    created["data"]["LOG_LEVEL"] = "info"  # Go Smith's later Update, after the Bundle changed
    stored = await as_go_smith(kube, "PUT", created, bundle="moved", bundle_uid=uid)
    owners = {(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]}
    assert owners == {("smith", "Update")}, "written as Go Smith wrote it"

    def dropped(spec: Json) -> None:  # the team drops a key, a label and an annotation
        obj = spec["resources"][0]["spec"]["object"]
        obj["data"] = {"LOG_LEVEL": "info"}
        obj["metadata"].pop("labels")
        obj["metadata"].pop("annotations")

    await edit_bundle(kube, namespace, "moved", dropped)
    await smith.start_controller()  # Smith takes over
    try:
        await until_condition(kube, namespace, "moved", "Ready", within=60)
        now = await kube.get("v1", "ConfigMap", "settings", namespace)
    finally:
        await smith.kill_controller()  # the fixture starts its own again
    assert now["data"] == {"LOG_LEVEL": "info"}
    assert "tier" not in now["metadata"].get("labels", {})
    assert "example.com/owner" not in (now["metadata"].get("annotations") or {})
    assert now["metadata"]["uid"] == created["metadata"]["uid"], "adopted, not made again"
    owners = {(e["manager"], e["operation"]) for e in now["metadata"]["managedFields"]}
    assert ("smith", "Update") not in owners, "its fields were moved to Smith's apply, once"
