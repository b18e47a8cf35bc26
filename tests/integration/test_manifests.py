"""Every manifest we ship is accepted by the real API server (server-side dry run): the CRDs, each
service's Deployment, and every sample Bundle against the installed Bundle CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smith_controlplane.plane import ControlPlane
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


KUSTOMIZATIONS = sorted(
    p.parent for p in [*ROOT.glob("deploy/**/Kustomization"), *ROOT.glob("services/*/deploy/Kustomization")]
)


@pytest.mark.parametrize(
    "directory",
    [d for d in KUSTOMIZATIONS if "components" not in d.parts],
    ids=lambda d: str(d.relative_to(ROOT)),
)
def test_kustomization_is_accepted_by_the_api_server(
    control_plane: ControlPlane, smith: Any, directory: Path
) -> None:
    """`kubectl apply --dry-run=server -k`: built by kubectl's kustomize, validated by the API server."""
    done = control_plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", str(directory), check=False
    )
    assert done.returncode == 0, done.stderr
    assert "(server dry run)" in done.stdout


@pytest.mark.parametrize(
    "directory",
    [
        ROOT / "deploy" / "base",
        *(ROOT / "deploy" / "overlays" / o for o in ("single-namespace", "ha", "multi-tenant", "all-in-one")),
    ],
    ids=lambda d: d.name,
)
def test_every_deployment_runs_hardened_with_metrics_and_probes(
    control_plane: ControlPlane, directory: Path
) -> None:
    built = list(yaml.safe_load_all(control_plane.kubectl("kustomize", str(directory)).stdout))
    deployments = [d for d in built if d and d["kind"] == "Deployment"]
    services = {p.parent.name for p in ROOT.glob("services/*/pyproject.toml")}
    # one Deployment per service; all-in-one, one for all of them (smith-all)
    names = {"all"} if directory.name == "all-in-one" else services - {"all"}
    assert {d["metadata"]["name"] for d in deployments} == {f"smith-{n}" for n in names}
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "SMITH_METRICS", "value": "0.0.0.0:9090"} in container["env"]
        assert container["readinessProbe"]
        assert container["livenessProbe"]
        assert pod["serviceAccountName"] == deployment["metadata"]["name"]


def overlay(control_plane: ControlPlane, name: str) -> list[dict[str, Any]]:
    """What deploy/overlays/<name> builds (kubectl's kustomize)."""
    built = control_plane.kubectl("kustomize", str(ROOT / "deploy" / "overlays" / name)).stdout
    return [d for d in yaml.safe_load_all(built) if d]


def test_the_single_namespace_overlay_grants_nothing_cluster_wide_but_reading_crds(
    control_plane: ControlPlane,
) -> None:
    built = overlay(control_plane, "single-namespace")
    cluster_bindings = [d for d in built if d["kind"] == "ClusterRoleBinding"]
    # and asking the API server who calls (TokenReview: cluster-wide by nature, it reads nothing)
    granted = {b["roleRef"]["name"] for b in cluster_bindings} - {"system:auth-delegator"}
    assert granted == {"smith-executor-dynamic-crds"}
    (controller,) = [
        d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == "smith-controller"
    ]
    env = controller["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SMITH_WATCH_NAMESPACE", "value": "smith-system"} in env


def test_the_multi_tenant_overlay_leaves_the_executors_no_rights_of_their_own_to_write(
    control_plane: ControlPlane,
) -> None:
    """Every executor runs with the default account; its cluster-wide grants are reading (Bundles, CRDs)
    and asking who calls; acting as anyone is granted per namespace (tenant-example.yaml), not here."""
    built = overlay(control_plane, "multi-tenant")
    executors = [
        d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("smith-executor-")
    ]
    assert len(executors) == 3
    for deployment in executors:
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "SMITH_DEFAULT_SERVICE_ACCOUNT", "value": "bundle-deployer"} in env
    roles = {d["metadata"]["name"]: d for d in built if d["kind"] == "ClusterRole"}
    granted = {
        b["roleRef"]["name"]
        for b in built
        if b["kind"] == "ClusterRoleBinding"
        and any(s["name"].startswith("smith-executor-") for s in b["subjects"])
    }
    assert granted == {"smith-executor-bundle-reader", "smith-executor-dynamic-crds", "system:auth-delegator"}
    for name in granted - {"system:auth-delegator"}:
        verbs = {v for rule in roles[name]["rules"] for v in rule["verbs"]}
        assert verbs <= {"get", "list", "watch"}, name


def test_the_ha_overlay_runs_several_replicas_of_everything_spread_and_disruption_budgeted(
    control_plane: ControlPlane,
) -> None:
    built = overlay(control_plane, "ha")
    deployments = {d["metadata"]["name"]: d for d in built if d["kind"] == "Deployment"}
    budgets = {d["metadata"]["name"]: d for d in built if d["kind"] == "PodDisruptionBudget"}
    services = {d["metadata"]["name"]: d for d in built if d["kind"] == "Service"}
    assert deployments["smith-controller"]["spec"]["replicas"] == 3
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        pod = deployment["spec"]["template"]["spec"]
        (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        if name != "smith-controller":  # a gRPC service: clients reach every pod through its name
            assert services[name]["spec"]["clusterIP"] == "None", name
    env = {
        e["name"]: e.get("value")
        for e in deployments["smith-controller"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SMITH_PLANNER"].startswith("dns:///")
    core = {
        e["name"]: e.get("value")
        for e in deployments["smith-executor-core"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert core["SMITH_SERVICE"] == "smith-executor-core"
