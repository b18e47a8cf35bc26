"""A real local Kubernetes control plane (etcd + kube-apiserver, optionally kube-controller-manager and
kwok) started from binaries built by tools/controlplane/build.sh, for tests and `make run`."""
