#!/usr/bin/env bash
# Builds the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok) from the pinned Go modules beside this script, once, into a cache outside
# the repository keyed by the modules' content. Prints the binaries' directory.
#
# Skipped when KUBEBUILDER_ASSETS names a directory that already holds etcd and kube-apiserver.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

# Bump `recipe` when the build commands below change in a way that changes the binaries.
recipe=2
key=$( (echo "recipe $recipe"; cat "$here"/*/go.mod "$here"/*/go.sum "$here"/etcd/main.go) | sha256sum | cut -c1-12)
k8s_version=$(grep -Eo 'k8s.io/kubernetes v[0-9.]+' "$here/kubernetes/go.mod" | head -1 | cut -d' ' -f2)
out="${SMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smith}/controlplane/${k8s_version}-${key}"
bin="$out/bin"
wanted=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

missing=()
for b in "${wanted[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
if ((${#missing[@]} == 0)); then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath" GOTOOLCHAIN=local
major=${k8s_version#v}; minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} \
  -X k8s.io/component-base/version.gitMajor=${major} -X k8s.io/component-base/version.gitMinor=${minor} \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}"

build() { # build <module dir> <output name> <package> <ldflags>
  local start=$SECONDS
  echo "building $2 ..." >&2
  (cd "$here/$1" && go build -ldflags "$4" -o "$bin/$2.tmp" "$3")
  mv "$bin/$2.tmp" "$bin/$2"
  echo "built $2 in $((SECONDS - start))s" >&2
}
for b in "${missing[@]}"; do
  case $b in
    etcd) build etcd etcd . "-s -w" ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) build kubernetes "$b" "k8s.io/kubernetes/cmd/$b" "$k8s_ldflags" ;;
    kwok) build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-s -w" ;;
  esac
done
echo "$bin"
