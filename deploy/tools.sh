#!/usr/bin/env bash
# The tools that check the deployment files offline, from the Go module proxy through
# the ordinary `go` client; each command prints the path to use:
#   deploy/tools.sh kustomize        the kustomize binary (built once into .local/bin)
#   deploy/tools.sh keda-crds        KEDA's CustomResourceDefinitions (ScaledObject...)
#   deploy/tools.sh compose-schema   the Compose specification's JSON Schema
#   deploy/tools.sh rulecheck        checks Prometheus rule files as Prometheus loads them
#                                    (deploy/monitoring/rulecheck, built once into .local/bin)
#   deploy/tools.sh jaeger           Jaeger v2 for `make traces` (deploy/monitoring/jaeger's
#                                    module, built once into .local/bin: about 8 minutes)
source "$(dirname "${BASH_SOURCE[0]}")/local/common.sh"

KUSTOMIZE_VERSION=v5.7.1
KEDA_VERSION=v2.16.1
COMPOSE_GO_VERSION=v2.16.2

module_dir() {
  need go "to fetch $1"
  (cd "$LOCAL_DIR" && go mod download -json "$1@$2") |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d.get("Error")) if d.get("Error") else print(d["Dir"])'
}

# build_once NAME DIR PACKAGE FILES...: the binary .local/bin/NAME, built from PACKAGE in
# the module DIR, again only when one of FILES changed; prints its path
build_once() {
  local name=$1 dir=$2 package=$3 bin=$LOCAL_DIR/bin/$1 stamp=$LOCAL_DIR/bin/.$1 want
  shift 3
  want=$(file_hash "$@")
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    need go "to build $name"
    log "building $name (once)" >&2
    (cd "$dir" && go build -o "$bin" "$package") >&2
    echo "$want" >"$stamp"
  fi
  echo "$bin"
}

mkdir -p "$LOCAL_DIR/bin"
case "${1:-}" in
  kustomize)
    bin=$LOCAL_DIR/bin/kustomize
    if [ ! -x "$bin" ] || ! "$bin" version 2>/dev/null | grep -q "${KUSTOMIZE_VERSION#v}"; then
      need go "to build kustomize"
      log "building kustomize $KUSTOMIZE_VERSION (once)" >&2
      (cd "$LOCAL_DIR" && GOBIN=$LOCAL_DIR/bin go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION") >&2
    fi
    echo "$bin"
    ;;
  keda-crds) echo "$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")/config/crd/bases" ;;
  rulecheck)
    src=$HOOKFLOW_ROOT/deploy/monitoring/rulecheck
    build_once rulecheck "$src" . "$src/go.mod" "$src/go.sum" "$src/main.go"
    ;;
  jaeger)
    src=$HOOKFLOW_ROOT/deploy/monitoring/jaeger
    build_once jaeger "$src" github.com/jaegertracing/jaeger/cmd/jaeger "$src/go.mod" "$src/go.sum"
    ;;
  compose-schema) echo "$(module_dir github.com/compose-spec/compose-go/v2 "$COMPOSE_GO_VERSION")/schema/compose-spec.json" ;;
  *) echo "usage: $0 kustomize|keda-crds|compose-schema|rulecheck|jaeger" >&2; exit 2 ;;
esac
