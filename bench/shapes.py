"""The jobs the benchmarks give Smith and its baselines: Bundle shapes, the manifests they list, and how
figures are compared."""

from __future__ import annotations

import base64
import statistics
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
API = "smith.atlassian.com/v1"
Json = dict[str, Any]
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION"})


# --- shapes ---------------------------------------------------------------------------------------


def layered(waves: int, width: int, prefix: str = "r") -> list[list[str]]:
    """Names in waves; every resource depends on every resource of the wave before."""
    return [[f"{prefix}{w}-{i}" for i in range(width)] for w in range(waves)]


SHAPES = {"chain (depth 10)": (10, 1), "fan-out (width 50)": (1, 50), "layered (5 waves x 10)": (5, 10)}


def config_map(name: str, namespace: str | None = None, value: str = "v") -> Json:
    meta: Json = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


def member(name: str, namespace: str | None = None) -> Json:
    """The object of one resource: ConfigMaps and Secrets in turn (by the name's last number)."""
    obj = config_map(name, namespace)
    if int(name.rsplit("-", 1)[1]) % 2:
        obj |= {"kind": "Secret", "data": {"k": base64.b64encode(b"v").decode()}}
    return obj


REFERENCE_CHAIN = 10  # ConfigMaps, each holding a value read from the one before (a reference)
CHAINS_AT_ONCE = 100
PASSES_AT_ONCE = 100  # Bundles of Sleepers at once (the status window's figure)
PASSES_ALONE = 10  # and one after the other
CONCURRENCY = 16  # the controller's reconciles at once (SMITH_CONCURRENCY's default); kro gets as many


def reference_chain(name: str, namespace: str, depth: int, seed: str = "seed") -> Json:
    """Bundle `name`: ConfigMaps `name`-c0…, each holding the value of the one before (a reference)."""
    resources: list[Json] = [{"name": "c0", "spec": {"object": config_map(f"{name}-c0", value=seed)}}]
    for i in range(1, depth):
        ref = {"name": "v", "resource": f"c{i - 1}", "path": "data.k"}
        obj = config_map(f"{name}-c{i}", value="!{v}")
        resources.append(
            {"name": f"c{i}", "dependsOn": [f"c{i - 1}"], "references": [ref], "spec": {"object": obj}}
        )
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


SLEEPERS = "bench.smith.test"  # a kind Ready when its status says Awake; the bench wakes each


def sleeper_chain(name: str, namespace: str, depth: int) -> Json:
    """Bundle `name`: Sleepers s0…, each made when the one before is awake (a pass each), then a
    ConfigMap."""
    resources: list[Json] = []
    for i in range(depth):
        obj = {"apiVersion": f"{SLEEPERS}/v1", "kind": "Sleeper", "metadata": {"name": f"{name}-s{i}"}}
        resources.append({"name": f"s{i}", "spec": {"object": obj}, "dependsOn": [f"s{i - 1}"] if i else []})
    resources.append(
        {"name": "done", "dependsOn": [f"s{depth - 1}"], "spec": {"object": config_map(f"{name}-d")}}
    )
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


# Smith's Bundle kind under another name (in the Sleepers' group): no service watches it
COPIES = "BundleCopy"


def bundle_copy_crd() -> Json:
    """Smith's Bundle CRD as it is (schema, validation rules, status subresource) for a kind no Smith
    service watches: writing a BundleCopy costs the API server what writing that Bundle costs."""
    crd: Json = yaml.safe_load((ROOT / "deploy" / "crds" / "bundle.yaml").read_text())
    plural = "bundlecopies"
    crd["metadata"]["name"] = f"{plural}.{SLEEPERS}"
    crd["spec"]["group"] = SLEEPERS
    crd["spec"]["names"] = {
        "kind": COPIES,
        "listKind": f"{COPIES}List",
        "plural": plural,
        "singular": "bundlecopy",
    }
    return crd


def owned(name: str, namespace: str, owners: list[Json]) -> Json:
    """`member(name)` as Smith applies it: labelled with its Bundle's name, with these owners."""
    obj = member(name, namespace)
    obj["metadata"] |= {
        "labels": {"smith.atlassian.com/BundleName": "b"},
        "ownerReferences": owners,
    }
    return obj


def bundle(name: str, namespace: str, waves: list[list[str]]) -> Json:
    resources = []
    for w, wave in enumerate(waves):
        for n in wave:
            item: Json = {"name": n, "spec": {"object": member(n)}}
            if w:
                item["dependsOn"] = waves[w - 1]
            resources.append(item)
    return {
        "apiVersion": API,
        "kind": "Bundle",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": resources},
    }


def compared(smith: list[float], floor: list[float], **baselines: list[float]) -> dict[str, float]:
    """Smith's times next to the baseline's (and other baselines', by name), from the same run."""
    row = {
        "smith_median_s": statistics.median(smith),
        "smith_p95_s": pct(smith, 0.95),
        "floor_median_s": statistics.median(floor),
        "floor_p95_s": pct(floor, 0.95),
        "ratio_median": statistics.median(smith) / statistics.median(floor),
    }
    for name, times in baselines.items():
        row |= {
            f"{name}_median_s": statistics.median(times),
            f"ratio_{name}": statistics.median(smith) / statistics.median(times),
        }
    return row


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
