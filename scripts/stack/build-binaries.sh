#!/usr/bin/env bash
# Builds the local stack's binaries from the pinned helper modules in scripts/go/ into a cache directory.
# Usage: build-binaries.sh <k8s|kubectl|vault|helm|promtool|eso> <output-dir>
# Called by scripts/stack/binaries.ts when a binary is found neither in KUBEBUILDER_ASSETS/LEASEHOLD_BIN_DIR,
# PATH nor the per-user cache. Builds one component at a time with -p 2 (2-core machines, ~3 GB peak).
set -euo pipefail
what="$1"; out="$2"
here="$(cd "$(dirname "$0")/.." && pwd)/go"
command -v go >/dev/null || { echo "build-binaries: Go is not installed (need Go >= 1.24 to build $what)" >&2; exit 3; }
mkdir -p "$out"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -mod=readonly"
tmp="$out/.partial-$$"; mkdir -p "$tmp"; trap 'rm -rf "$tmp"' EXIT
case "$what" in
  k8s)
    cd "$here/k8s"
    v="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"; v="${v#v}"
    minor="$(echo "$v" | cut -d. -f2)"
    ldf="-s -w -X k8s.io/component-base/version.gitVersion=v$v -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z"
    go build -p 2 -ldflags "$ldf" -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    go build -p 2 -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
    mv "$tmp/kube-apiserver" "$tmp/kube-controller-manager" "$tmp/etcd" "$out/"
    ;;
  kubectl)
    # Only built when the machine has no kubectl: the tests drive the real kubectl binary.
    cd "$here/k8s"
    v="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"; v="${v#v}"
    minor="$(echo "$v" | cut -d. -f2)"
    go build -p 2 -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/component-base/version.gitVersion=v$v" -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
    mv "$tmp/kubectl" "$out/"
    ;;
  vault)
    cd "$here/vault"
    v="$(go list -m -f '{{.Version}}' github.com/hashicorp/vault)"; v="${v#v}"
    go build -p 2 -ldflags "-s -w -X github.com/hashicorp/vault/version.Version=$v" -o "$tmp/vault" github.com/hashicorp/vault
    mv "$tmp/vault" "$out/"
    ;;
  promtool)
    # promtool checks and unit-tests the alert rules; promql-selectors (ours) names the metrics an expression reads.
    cd "$here/promtool"
    v="$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
    go build -p 2 -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v" -o "$tmp/" \
      github.com/prometheus/prometheus/cmd/promtool ./promql-selectors
    mv "$tmp/promtool" "$tmp/promql-selectors" "$out/"
    ;;
  helm)
    # The chart tests' helm (lint, template, install); its version string comes from the pinned module.
    cd "$here/helm"
    v="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
    go build -p 2 -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm
    mv "$tmp/helm" "$out/"
    ;;
  eso)
    # External Secrets Operator's controller: the peer `npm run bench -- --peer eso` measures (not needed by npm test).
    cd "$here/eso"
    go build -p 2 -ldflags "-s -w" -o "$tmp/external-secrets" github.com/external-secrets/external-secrets
    mv "$tmp/external-secrets" "$out/"
    ;;
  *) echo "build-binaries: unknown component '$what' (k8s|kubectl|vault|helm|promtool|eso)" >&2; exit 2 ;;
esac
