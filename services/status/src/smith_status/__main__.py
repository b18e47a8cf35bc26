"""`python -m smith_status`: serve the status aggregator on $SMITH_LISTEN (default 127.0.0.1:7402),
writing Bundle status and Events with the credentials of $KUBECONFIG (or the in-cluster service account)."""

from smith_wire.rpc import run_service

from smith_kube import KubeClient, KubeConfig, TokenBucket
from smith_status.servicer import StatusServicer


def main() -> None:
    kube = KubeClient(KubeConfig.auto(), rate=TokenBucket.from_env())
    servicer = StatusServicer(kube)

    async def stopping() -> None:
        await servicer.events.drain()
        await kube.close()

    run_service(
        "smith-status", [servicer.registration()], default_address="127.0.0.1:7402", stopping=stopping
    )


if __name__ == "__main__":
    main()
