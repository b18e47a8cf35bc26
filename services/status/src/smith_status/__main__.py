"""`python -m smith_status`: serve the status aggregator on $SMITH_LISTEN (default 127.0.0.1:7402),
writing Bundle status with the credentials of $KUBECONFIG (or the in-cluster service account)."""

from smith_wire.rpc import run_service

from smith_kube import KubeClient, KubeConfig
from smith_status.servicer import StatusServicer


def main() -> None:
    kube = KubeClient(KubeConfig.auto())
    run_service(
        "smith-status",
        [StatusServicer.registration(kube)],
        default_address="127.0.0.1:7402",
        stopping=kube.close,
    )


if __name__ == "__main__":
    main()
