"""The versions the kube backend installs and was written against, in one place.

Each pin is checked against its release when it is changed (see docs/KUBE_BACKEND.md):
the kind node image comes from the kind release's own default (by digest, so a re-pushed
tag cannot change the cluster under us), and the Kubernetes version it runs is inside
the range the pinned Istio release supports.
"""

from __future__ import annotations

__all__ = [
    "GATEWAY_HOST_PORT",
    "GATEWAY_NODE_PORT",
    "ISTIO_VERSION",
    "KIND_NODE_IMAGE",
    "KIND_VERSION",
    "MIN_ISTIO_MINOR",
]

KIND_VERSION = "v0.32.0"
# kind v0.32.0's default node image (pkg/apis/config/defaults/image.go at that tag).
KIND_NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
# Supports Kubernetes 1.32 to 1.36, so the node image above.
ISTIO_VERSION = "1.30.5"
# The oldest Istio whose networking.istio.io/v1 API the catalogue's policies use (1.22).
MIN_ISTIO_MINOR = (1, 22)
# The ingress gateway's http2 port as a fixed NodePort, mapped by kind to the host's
# loopback. The node port must equal the kind mapping's containerPort.
GATEWAY_NODE_PORT = 30080
GATEWAY_HOST_PORT = 18080
