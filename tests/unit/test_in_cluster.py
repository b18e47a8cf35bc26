"""A service in its Pod reads its service account without the `kubernetes` package (some 39 MiB and two
seconds of every process's start): the API server from the environment, the mounted CA, the mounted
token, read again when the kubelet rotates it. Run where importing `kubernetes` fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, sys
sys.modules["kubernetes"] = None  # importing it fails, as in a service's image
from pathlib import Path
import smith_kube.config as config
from smith_kube import KubeConfig
from smith_kube.config import KubeConfigError

mounted = Path(sys.argv[1])
config.SERVICE_ACCOUNT = mounted
config.CHECK_EVERY = 0
kube = KubeConfig.in_cluster()
print(kube.server, kube.namespace, kube.ca_file == str(mounted / "ca.crt"), kube.authorization())
(mounted / "token").write_text("second\\n")
asyncio.run(kube.fresh())
print(kube.authorization())
try:
    KubeConfig.load(sys.argv[2])
except KubeConfigError as e:
    print(e)
"""


def test_the_service_account_is_read_without_the_kubernetes_package(tmp_path: Path) -> None:
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    (mounted / "token").write_text("first\n")
    (mounted / "ca.crt").write_text("not read until a connection is made\n")
    (mounted / "namespace").write_text("smith-system\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443", "PATH": "/usr/bin:/bin"}
    env |= {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(mounted), str(kubeconfig)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "https://[fd00::1]:443 smith-system True Bearer first",
        "Bearer second",
        "reading a kubeconfig needs the kubernetes package: install smith-kube[kubeconfig] "
        "(in a Pod, Smith reads its service account without it)",
    ]
