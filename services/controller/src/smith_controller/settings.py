"""The controller's settings (from its environment) and its metrics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from smith_wire.trust import ClientTrust, Insecure, client_trust_from_env

from smith_controller.members import default_identity
from smith_kube import TokenBucket

RECONCILES = Histogram(
    "smith_reconcile_duration_seconds",
    "Time of one reconcile of one Bundle, by result (ok, retry, error)",
    ["result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HELD = Counter(
    "smith_status_reports_held_total",
    "Passes that only made progress, told with the next report (a status was written a moment before)",
)
RESYNCS = Counter(
    "smith_resyncs_total", "Periodic resyncs: every Bundle looked at again (SMITH_RESYNC_SECONDS)"
)
SKIPPED = Counter(
    "smith_passes_skipped_total",
    "Resync passes not made: the Bundle was left converged and nothing it reads changed since",
)
QUEUE_DEPTH = Gauge("smith_work_queue_depth", "Bundles waiting for a reconcile")
BUNDLES = Gauge("smith_bundles", "Bundles the controller knows")
OWNED = Gauge("smith_bundles_owned", "Bundles this controller replica owns (reconciles)")
CACHED = Gauge("smith_controller_cached_objects", "Objects of its Bundles this replica keeps in memory")
MEMBERS = Gauge("smith_controller_members", "Live controller replicas, as this one sees them")
LOST = Counter(
    "smith_reconciles_given_up_total",
    "Reconciles stopped before a write because the Bundle stopped being this replica's",
)
HEARTBEAT = Gauge(
    "smith_executor_heartbeat_timestamp_seconds", "Last heartbeat of each registered executor", ["executor"]
)


@dataclass(frozen=True)
class Settings:
    planner: str = "127.0.0.1:7401"
    status: str = "127.0.0.1:7402"
    namespace: str = "smith-system"  # where Executor resources live
    concurrency: int = 16
    watch_namespace: str = ""  # "": every namespace; else only this one (single-namespace install)
    resync_seconds: float = 600.0  # every Bundle is reconciled at least this often (0: never)
    # replicas share the Bundles through a Lease each, in `namespace` (0: one replica, no leases)
    lease_seconds: float = 15.0
    identity: str = field(default_factory=default_identity)  # this replica's, among the members
    api_qps: float = 0.0  # client-side limit of API requests per second (0: none)
    api_burst: int = 0  # requests at once before the limit applies (0: twice the QPS)
    # a Bundle's status is written at most once per window while it is only in progress (0: every pass)
    status_window: float = 1.0
    # a pass applies the waves the planner plans ahead with the wave before them (see smith_engine.ahead)
    plan_ahead: bool = True
    # the ServiceAccount a Bundle naming none acts as (the executors' SMITH_DEFAULT_SERVICE_ACCOUNT):
    # an externalRef is read for a Bundle only where its account may (see outside.Access)
    default_account: str = ""
    # who impersonates a Bundle's account (`namespace:name` of a ServiceAccount): executor-core
    impersonator: str = "smith-system:smith-executor-core"
    # how it calls the services: TLS and its ServiceAccount token (see smith_wire.trust)
    trust: ClientTrust | Insecure = field(default_factory=client_trust_from_env)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            planner=os.environ.get("SMITH_PLANNER", "127.0.0.1:7401"),
            status=os.environ.get("SMITH_STATUS", "127.0.0.1:7402"),
            namespace=os.environ.get("SMITH_NAMESPACE", "smith-system"),
            concurrency=int(os.environ.get("SMITH_CONCURRENCY", "16")),
            watch_namespace=os.environ.get("SMITH_WATCH_NAMESPACE", ""),
            resync_seconds=float(os.environ.get("SMITH_RESYNC_SECONDS", "600")),
            lease_seconds=float(os.environ.get("SMITH_LEASE_SECONDS", "15")),
            api_qps=float(os.environ.get("SMITH_API_QPS") or 0),
            api_burst=int(os.environ.get("SMITH_API_BURST") or 0),
            status_window=float(os.environ.get("SMITH_STATUS_WINDOW", "1")),
            plan_ahead=os.environ.get("SMITH_PLAN_AHEAD", "1") != "0",
            default_account=os.environ.get("SMITH_DEFAULT_SERVICE_ACCOUNT", ""),
            impersonator=os.environ.get(
                "SMITH_IMPERSONATOR",
                f"{os.environ.get('SMITH_NAMESPACE', 'smith-system')}:smith-executor-core",
            ),
        )

    def rate(self) -> TokenBucket | None:
        return TokenBucket.of(self.api_qps, self.api_burst)
