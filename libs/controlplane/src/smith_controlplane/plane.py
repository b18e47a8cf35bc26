"""Start and stop a real control plane on loopback: etcd, kube-apiserver and the garbage collector
(kube-controller-manager running only it: every cluster has one, and foreground and orphan deletions
wait for it), and for the full plane all of kube-controller-manager, kube-scheduler and kwok with fake
nodes, so Deployments really roll out.

Ports are free ones picked at start; everything lives in one temporary directory removed at stop.
Children die with the process that started them (PR_SET_PDEATHSIG) unless the plane is detached
(`make cluster-up`), so an interrupted test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import yaml

from smith_controlplane import binaries
from smith_controlplane.certs import Pki, generate

SERVICE_CIDR = "10.0.0.0/24"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
STAGES = Path(__file__).with_name("kwok-stages.yaml")


class ControlPlaneError(RuntimeError):
    pass


class PlaneState(TypedDict):
    """What `cluster-down` needs to stop a detached plane."""

    kubeconfig: str
    workdir: str
    server: str
    pids: dict[str, int]


WORKDIR_PREFIX = "smith-plane-"
OWNER_FILE = "owner.pid"


def sweep_orphans() -> None:
    """Remove the directories of planes whose owning process was killed before it could clean up."""
    for directory in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int((directory / OWNER_FILE).read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except (OSError, ValueError):
            continue


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all held open while they are chosen, so that the system
    cannot hand the same one out twice (it would, to successive one-at-a-time choices)."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def dying_with_parent(command: Sequence[str]) -> list[str]:
    """`command`, made to receive SIGKILL when the process that started it dies (PR_SET_PDEATHSIG,
    set by util-linux's setpriv just before it execs the command). Not a preexec_fn: forking a
    process with threads (tests run kopf in one) and running Python before exec can crash the child."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else list(command)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    """A local control plane. `start()` / `stop()`, or use it as a context manager."""

    full: bool = False
    nodes: int = 1
    detached: bool = False
    workdir: Path | None = None
    bin_dir: Path | None = None
    processes: list[Process] = field(default_factory=list)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False, default="")
    _own_workdir: bool = field(init=False, default=False)
    _pki: Pki | None = field(init=False, default=None)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.bin_dir is None:
            self.bin_dir = binaries.find(full=self.full)
        if self.workdir is None:
            sweep_orphans()
            self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / OWNER_FILE).write_text(str(os.getpid()))
        try:
            self._pki = generate(self.workdir)
            self._start_etcd()
            self._start_apiserver()
            if self.full:
                self.start_full()
            else:
                self._start_controller_manager(["garbagecollector"])
        except BaseException:
            self.stop()
            raise

    def start_full(self) -> None:
        """Add kube-scheduler, kwok (`nodes` fake nodes) and all of kube-controller-manager's controllers
        (in place of the garbage collector alone) to a running plane."""
        if any(p.name == "kwok" for p in self.processes):
            return
        if self.bin_dir is None or not binaries._has(self.bin_dir, binaries.FULL):
            self.bin_dir = binaries.find(full=True)
        self.full = True
        if gc_only := next((p for p in self.processes if p.name == "kube-controller-manager"), None):
            self._stop_process(gc_only)
        self._start_controller_manager(["*", "-node-ipam-controller", "-node-lifecycle-controller"])
        self._spawn(
            "kube-scheduler",
            [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0"],
        )
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={STAGES}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.1.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        self.add_nodes(self.nodes)
        kwok = self.processes[-1]
        self._wait(kwok, "managing Ready nodes", self._nodes_ready, timeout=60)

    def _start_controller_manager(self, controllers: Sequence[str]) -> None:
        assert self._pki is not None
        pki = self._pki
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--use-service-account-credentials=false",
                f"--controllers={','.join(controllers)}",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=20",
            ],
        )

    def _stop_process(self, process: Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()
        self.processes.remove(process)

    def _nodes_ready(self) -> bool:
        nodes = self.api("GET", "/api/v1/nodes").get("items", [])
        ready = [
            n
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def stop(self) -> None:
        """Stop every process this plane started (newest first) and remove its directory."""
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        # The data is throw-away: a short grace, then SIGKILL (kube-apiserver drains for a minute otherwise).
        deadline = time.monotonic() + 2
        for process in reversed(self.processes):
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        self.processes.clear()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- processes --------------------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> Process:
        assert self.bin_dir is not None and self.workdir is not None
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            command = [str(self.bin_dir / name), *args]
            popen = subprocess.Popen(
                command if self.detached else dying_with_parent(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _wait(self, process: Process, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
                )
            if ready():
                return
            time.sleep(0.1)
        raise ControlPlaneError(f"{process.name} did not become {what} in {timeout:.0f}s:\n{process.tail()}")

    def _start_etcd(self, client: int | None = None, peer: int | None = None) -> None:
        assert self.workdir is not None
        client, peer = client or free_port(), peer or free_port()
        self._etcd_peer = peer
        self.etcd_url = f"http://127.0.0.1:{client}"
        process = self._spawn(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(process, "healthy", lambda: _http_ok(f"{self.etcd_url}/health"))

    def restart_etcd(self, down_seconds: float = 0.0) -> None:
        """An etcd outage: kill it, leave it down `down_seconds`, start it again on the same ports over
        the same data. kube-apiserver stays up and answers errors meanwhile."""
        client = int(self.etcd_url.rpartition(":")[2])
        self._restart("etcd", down_seconds, lambda: self._start_etcd(client=client, peer=self._etcd_peer))

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """An outage: kill kube-apiserver, leave it down `down_seconds`, start it again on the same port
        over the same etcd. Whoever was connected sees its connections reset and refused meanwhile."""
        port = int(self.server.rpartition(":")[2])
        self._restart("kube-apiserver", down_seconds, lambda: self._start_apiserver(port=port))

    def _restart(self, name: str, down_seconds: float, start: Callable[[], None]) -> None:
        old = next(p for p in self.processes if p.name == name)
        index = self.processes.index(old)
        self._stop_process(old)
        time.sleep(down_seconds)
        start()
        self.processes.insert(index, self.processes.pop())

    def _start_apiserver(self, port: int | None = None) -> None:
        assert self._pki is not None and self.workdir is not None
        pki, port = self._pki, port or free_port()
        self.server = f"https://127.0.0.1:{port}"
        process = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
                "--enable-priority-and-fairness=false",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--event-ttl=10m",
            ],
        )
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_dict()))
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(pki.admin_cert, pki.admin_key)
        self._ssl = context
        self._wait(process, "ready", lambda: _http_ok(f"{self.server}/readyz", context), timeout=120)

    def kubeconfig_dict(self) -> dict[str, Any]:
        assert self._pki is not None
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "smith-local",
                    "cluster": {"server": self.server, "certificate-authority": str(self._pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "smith-admin",
                    "user": {
                        "client-certificate": str(self._pki.admin_cert),
                        "client-key": str(self._pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": "smith-local", "context": {"cluster": "smith-local", "user": "smith-admin"}}
            ],
            "current-context": "smith-local",
        }

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """Write a kubeconfig at `path` that acts as ServiceAccount `namespace/name` (a fresh token
        from the TokenRequest API): what a Pod of that ServiceAccount would be allowed to do."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 24 * 3600},
        }
        answer = self.api("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request)
        config = self.kubeconfig_dict()
        config["users"] = [{"name": "smith-admin", "user": {"token": answer["status"]["token"]}}]
        path.write_text(yaml.safe_dump(config))
        return path

    # --- API access for set-up (tests use smith_kube) ----------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One synchronous API call with the admin identity, for set-up and tear-down."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, context=self._ssl, timeout=30) as response:
            payload: dict[str, Any] = json.loads(response.read() or b"{}")
            return payload

    def add_nodes(self, count: int) -> None:
        for i in range(count):
            name = f"kwok-node-{i}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                },
            }
            try:
                self.api("POST", "/api/v1/nodes", node)
            except urllib.error.HTTPError as e:
                e.close()
                if e.code != 409:
                    raise

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the plane's kubectl (when built) against this plane."""
        assert self.bin_dir is not None
        kubectl = self.bin_dir / "kubectl"
        if not kubectl.exists():
            kubectl = binaries.find(full=True) / "kubectl"
        return subprocess.run(
            [str(kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            check=check,
            capture_output=True,
            text=True,
            input=input,
        )

    def state(self) -> PlaneState:
        return {
            "kubeconfig": str(self.kubeconfig),
            "workdir": str(self.workdir),
            "server": self.server,
            "pids": {p.name: p.popen.pid for p in self.processes},
        }


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as e:
        e.close()  # an error answer (503 while starting) still holds its connection
        return False
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def running(*, full: bool = False, nodes: int = 1) -> Iterator[ControlPlane]:
    plane = ControlPlane(full=full, nodes=nodes)
    with plane:
        yield plane
