#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from the Go module proxy: their
# release downloads are unreachable from CI, but both build from source. The binaries are
# cached in OUT (default bin/envtest) and rebuilt only when the versions change.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.5}
OUT=$(mkdir -p "${1:-bin/envtest}" && cd "${1:-bin/envtest}" && pwd)
stamp="$OUT/.versions"
want="kube-apiserver=$K8S_VERSION etcd=$ETCD_VERSION"

if [[ -x $OUT/kube-apiserver && -x $OUT/etcd && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "envtest binaries up to date in $OUT ($want)"
  exit 0
fi

# A machine that built them once (for another clone) keeps a copy: a fresh clone in CI on the
# same machine then costs a copy, not a build.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shadowgate-envtest/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
if [[ -x $cache/kube-apiserver && -x $cache/etcd ]]; then
  cp "$cache/kube-apiserver" "$cache/etcd" "$OUT/"
  echo "$want" > "$stamp"
  echo "envtest binaries copied from $cache ($want)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
staging="0.${K8S_VERSION#1.}"

echo "building kube-apiserver v$K8S_VERSION (staging modules v$staging)..."
mkdir -p "$work/apiserver"
cd "$work/apiserver"
go mod init shadowgate.dev/envtest-apiserver >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
# kubernetes replaces each staging module with a directory of its own repository; point
# each at the published module of the matching version instead.
{
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 v'"$staging"'#p' "$gomod"
} >> go.mod
go mod tidy >/dev/null 2>&1 || true
go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" >/dev/null
CGO_ENABLED=0 go build -trimpath -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

echo "building etcd v$ETCD_VERSION..."
mkdir -p "$work/etcd"
cd "$work/etcd"
go mod init shadowgate.dev/envtest-etcd >/dev/null 2>&1
go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
CGO_ENABLED=0 go build -trimpath -o "$OUT/etcd" go.etcd.io/etcd/server/v3

echo "$want" > "$stamp"
mkdir -p "$cache" && cp "$OUT/kube-apiserver" "$OUT/etcd" "$cache/" || true
echo "envtest binaries in $OUT ($want)"
