"""A small asyncio Kubernetes API client for Smith's services and tests.

Generic over kinds (discovery maps apiVersion + kind to a REST path), so custom resources that
appear at run time need no generated code. Speaks JSON, server-side apply and watch.
"""

from smith_kube.client import (
    ApiError,
    ConflictError,
    DeadlineError,
    GoneError,
    KubeClient,
    KubeError,
    NotFoundError,
    ResourceInfo,
    TransportError,
    UnservedKindError,
    WatchEvent,
)
from smith_kube.config import KubeConfig
from smith_kube.ratelimit import TokenBucket

__all__ = [
    "ApiError",
    "ConflictError",
    "DeadlineError",
    "GoneError",
    "KubeClient",
    "KubeConfig",
    "KubeError",
    "NotFoundError",
    "ResourceInfo",
    "TokenBucket",
    "TransportError",
    "UnservedKindError",
    "WatchEvent",
]
