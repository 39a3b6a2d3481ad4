#!/usr/bin/env bash
# Builds the real binaries podguard's tests run against (etcd, kube-apiserver,
# kubectl, helm) from their Go modules and caches them by version outside the
# repository. There is no download site for release binaries here, so they are
# compiled; a cached version is never rebuilt.
#
# Usage: hack/tools.sh [all|k8s|etcd|helm|assets-dir|helm-path|crds-dir|addon-crds-dir|...]
#   all         build everything that is missing (default)
#   assets-dir  print the directory to use as KUBEBUILDER_ASSETS (builds if needed)
#   helm-path   print the path of the helm binary (builds if needed)
#   crds-dir    print the directory of the OpenReports and wgpolicyk8s.io report CRDs (fetches if needed)
#   addon-crds-dir  print the directory of the cert-manager (Certificate, Issuer) and Prometheus
#               Operator (ServiceMonitor, PrometheusRule) CRDs the chart can create objects of:
#               cert-manager's as its module publishes them, the Prometheus Operator's generated
#               with controller-gen from its API module's types (the repository's own YAML is
#               not in a Go module)
#   promtool    print the path of promtool (builds it from the Prometheus Go module if needed), for the alert tests
#   sbom-tool   print the path of cyclonedx-gomod (builds if needed), for make release's SBOM
#   controller-gen  print the path of controller-gen (builds if needed): make generate writes
#               PodGuardException's deep copies and CRD with it
#   browser     install a headless browser (Debian's chromium) for the audit report's browser test,
#               when running as root with apt-get; elsewhere say so (the test then skips, saying why)
#   browser-path  print the path of chromium, or fail
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE="${PODGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podguard}"
ASSETS="$CACHE/k8s/$K8S_VERSION-etcd$ETCD_VERSION"
# Helm stamps the Kubernetes version it assumes offline (helm template,
# lint) from its client-go line, 1.37 for 3.22; without it, it says 1.20.
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
HELM_DIR="$CACHE/helm/$HELM_VERSION-k8s1.$HELM_K8S_MINOR"
# The report CRDs the background audit writes, from their projects' Go
# modules (upstream schemas, not stand-ins).
OPENREPORTS_VERSION="${OPENREPORTS_VERSION:-0.2.1}"
KYVERNO_VERSION="${KYVERNO_VERSION:-1.19.1}"
CRD_DIR="$CACHE/crds/openreports-$OPENREPORTS_VERSION-kyverno-$KYVERNO_VERSION"

log() { echo "hack/tools.sh: $*" >&2; }

# A throwaway module per tool keeps the build's replace directives out of
# podguard's own go.mod.
scratch() {
  local d
  d="$CACHE/build/$1"
  rm -rf "$d"
  mkdir -p "$d"
  (cd "$d" && go mod init "podguard-tools/$1" >/dev/null 2>&1)
  echo "$d"
}

build_etcd() {
  [ -x "$ASSETS/etcd" ] && return 0
  log "building etcd v$ETCD_VERSION (cached afterwards in $ASSETS)"
  local d
  d=$(scratch etcd)
  (
    cd "$d"
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/api/v3@v$ETCD_VERSION" \
      "go.etcd.io/etcd/client/pkg/v3@v$ETCD_VERSION" "go.etcd.io/etcd/client/v3@v$ETCD_VERSION" \
      "go.etcd.io/etcd/pkg/v3@v$ETCD_VERSION" >&2
    mkdir -p "$ASSETS"
    CGO_ENABLED=0 go build -trimpath -o "$ASSETS/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$ASSETS/etcd.tmp" "$ASSETS/etcd"
  )
}

build_k8s() {
  [ -x "$ASSETS/kube-apiserver" ] && [ -x "$ASSETS/kubectl" ] && return 0
  log "building kube-apiserver and kubectl v$K8S_VERSION (several minutes on a cold cache)"
  local d kdir minor
  d=$(scratch k8s)
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  (
    cd "$d"
    kdir=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$kdir" ] || { log "cannot download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
    # k8s.io/kubernetes points its staging modules at local paths; a consumer
    # must name the published versions instead.
    grep -E '^[[:space:]]*k8s.io/[^ ]+ => ./staging/' "$kdir/go.mod" | awk '{print $1}' | while read -r m; do
      go mod edit -replace "$m=$m@v0.$minor.${K8S_VERSION##*.}"
    done
    go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >&2
    local ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.gitCommit=v$K8S_VERSION-podguard-build -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "$ASSETS"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$ASSETS/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$ASSETS/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
    mv "$ASSETS/kubectl.tmp" "$ASSETS/kubectl"
  )
}

build_helm() {
  [ -x "$HELM_DIR/helm" ] && return 0
  log "building helm v$HELM_VERSION"
  mkdir -p "$HELM_DIR"
  CGO_ENABLED=0 GOBIN="$HELM_DIR" go install -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
}

# fetch_crds copies the OpenReports and wgpolicyk8s.io report CRDs out of
# the modules that publish them.
fetch_crds() {
  [ -f "$CRD_DIR/wgpolicyk8s.io_policyreports.yaml" ] && return 0
  log "fetching the report CRDs (openreports $OPENREPORTS_VERSION, kyverno $KYVERNO_VERSION)"
  local d or ky
  d=$(scratch crds)
  or=$(cd "$d" && go mod download -json "github.com/openreports/reports-api@v$OPENREPORTS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  ky=$(cd "$d" && go mod download -json "github.com/kyverno/kyverno@v$KYVERNO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$or" ] && [ -n "$ky" ] || { log "cannot download the report CRD modules"; exit 1; }
  mkdir -p "$CRD_DIR.tmp"
  cp "$or/config/crd/openreports.io_reports.yaml" "$or/config/crd/openreports.io_clusterreports.yaml" \
     "$ky/config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml" "$ky/config/crds/policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml" "$CRD_DIR.tmp/"
  chmod 644 "$CRD_DIR.tmp"/*.yaml
  rm -rf "$CRD_DIR" && mv "$CRD_DIR.tmp" "$CRD_DIR"
}

CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-1.21.2}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-0.95.2}"
CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-0.23.0}"
ADDON_CRD_DIR="$CACHE/crds/cert-manager-$CERT_MANAGER_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"

fetch_addon_crds() {
  [ -f "$ADDON_CRD_DIR/monitoring.coreos.com_prometheusrules.yaml" ] && return 0
  log "fetching cert-manager v$CERT_MANAGER_VERSION CRDs and generating Prometheus Operator v$PROMETHEUS_OPERATOR_VERSION CRDs with controller-gen v$CONTROLLER_TOOLS_VERSION"
  local d cm
  d=$(scratch addon-crds)
  cm=$(cd "$d" && go mod download -json "github.com/cert-manager/cert-manager@v$CERT_MANAGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$cm" ] || { log "cannot download the cert-manager module"; exit 1; }
  build_controller_gen
  mkdir -p "$ADDON_CRD_DIR.tmp"
  cp "$cm/deploy/crds/cert-manager.io_certificates.yaml" "$cm/deploy/crds/cert-manager.io_issuers.yaml" "$ADDON_CRD_DIR.tmp/"
  (
    cd "$d"
    go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@v$PROMETHEUS_OPERATOR_VERSION" >&2
    printf 'package gen\n\nimport _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"\n' > gen.go
    go mod tidy >&2
    "$CONTROLLER_GEN_DIR/controller-gen" crd:crdVersions=v1,maxDescLen=0 \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir="$d/out" >&2
  )
  cp "$d/out/monitoring.coreos.com_servicemonitors.yaml" "$d/out/monitoring.coreos.com_prometheusrules.yaml" "$ADDON_CRD_DIR.tmp/"
  chmod 644 "$ADDON_CRD_DIR.tmp"/*.yaml
  rm -rf "$ADDON_CRD_DIR" && mv "$ADDON_CRD_DIR.tmp" "$ADDON_CRD_DIR"
}

CONTROLLER_GEN_DIR="$CACHE/controller-gen/$CONTROLLER_TOOLS_VERSION"

# go_install_tool DIR PACKAGE@VERSION builds a Go tool into DIR (the cache
# entry of that version) unless it is there already.
go_install_tool() {
  local dir=$1 pkg=$2
  [ -x "$dir/$(basename "${pkg%@*}")" ] && return 0
  log "building $pkg"
  mkdir -p "$dir"
  CGO_ENABLED=0 GOBIN="$dir" go install -trimpath "$pkg" >&2
}

build_controller_gen() { go_install_tool "$CONTROLLER_GEN_DIR" "sigs.k8s.io/controller-tools/cmd/controller-gen@v$CONTROLLER_TOOLS_VERSION"; }

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-0.316.0}"
PROMTOOL_DIR="$CACHE/promtool/$PROMETHEUS_VERSION"

# A few minutes on a cold cache.
build_promtool() { go_install_tool "$PROMTOOL_DIR" "github.com/prometheus/prometheus/cmd/promtool@v$PROMETHEUS_VERSION"; }

CYCLONEDX_VERSION="${CYCLONEDX_VERSION:-1.10.0}"
CYCLONEDX_DIR="$CACHE/cyclonedx-gomod/$CYCLONEDX_VERSION"

build_cyclonedx() { go_install_tool "$CYCLONEDX_DIR" "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v$CYCLONEDX_VERSION"; }

# install_package COMMAND PACKAGE PURPOSE installs PACKAGE from the
# distribution's packages when COMMAND is missing. It never fails the build:
# without root or apt-get it only says what will not run.
install_package() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "no $1, and no root apt-get to install $2: $3 will skip (install $2 to run it)"
    return 0
  fi
  log "installing $2 from Debian's packages (for $3)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >&2; } ||
    log "installing $2 failed: $3 will skip"
}

# install_browser: chromium, which the HTML report's browser test opens.
install_browser() { install_package chromium chromium "the HTML report's browser test"; }

# install_iproute2: ip, for the fault test's network namespaces.
install_iproute2() { install_package ip iproute2 "the fault test"; }

case "${1:-all}" in
  all) build_etcd; build_k8s; build_helm; fetch_crds; fetch_addon_crds; build_controller_gen; build_promtool; build_cyclonedx; install_browser; install_iproute2; log "ready: KUBEBUILDER_ASSETS=$ASSETS, helm=$HELM_DIR/helm, report CRDs in $CRD_DIR" ;;
  browser) install_browser ;;
  promtool) build_promtool; echo "$PROMTOOL_DIR/promtool" ;;
  controller-gen) build_controller_gen; echo "$CONTROLLER_GEN_DIR/controller-gen" ;;
  sbom-tool) build_cyclonedx; echo "$CYCLONEDX_DIR/cyclonedx-gomod" ;;
  browser-path) command -v chromium || { log "no chromium on PATH (hack/tools.sh browser installs it as root)"; exit 1; } ;;
  crds-dir) fetch_crds; echo "$CRD_DIR" ;;
  addon-crds-dir) fetch_addon_crds; echo "$ADDON_CRD_DIR" ;;
  k8s) build_etcd; build_k8s ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  assets-dir) build_etcd; build_k8s; echo "$ASSETS" ;;
  helm-path) build_helm; echo "$HELM_DIR/helm" ;;
  *) echo "usage: $0 [all|k8s|etcd|helm|assets-dir|helm-path|crds-dir|addon-crds-dir|browser|browser-path|sbom-tool|promtool|controller-gen]" >&2; exit 2 ;;
esac
