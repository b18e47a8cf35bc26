"""A real local Kubernetes control plane (etcd + kube-apiserver + the garbage collector, optionally all
of kube-controller-manager, kube-scheduler and kwok) started from binaries built by
tools/controlplane/build.sh, for tests and `make run`."""
