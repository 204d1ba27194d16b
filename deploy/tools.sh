#!/usr/bin/env bash
# The tools that check the deployment files offline, from the Go module proxy through
# the ordinary `go` client; each command prints the path to use:
#   deploy/tools.sh kustomize        the kustomize binary (built once into .local/bin)
#   deploy/tools.sh keda-crds        KEDA's CustomResourceDefinitions (ScaledObject...)
#   deploy/tools.sh compose-schema   the Compose specification's JSON Schema
#   deploy/tools.sh rulecheck        checks Prometheus rule files as Prometheus loads them
#                                    (deploy/monitoring/rulecheck, built once into .local/bin)
source "$(dirname "${BASH_SOURCE[0]}")/local/common.sh"

KUSTOMIZE_VERSION=v5.7.1
KEDA_VERSION=v2.16.1
COMPOSE_GO_VERSION=v2.16.2

module_dir() {
  need go "to fetch $1"
  (cd "$LOCAL_DIR" && go mod download -json "$1@$2") |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d.get("Error")) if d.get("Error") else print(d["Dir"])'
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
    bin=$LOCAL_DIR/bin/rulecheck
    src=$HOOKFLOW_ROOT/deploy/monitoring/rulecheck
    stamp=$LOCAL_DIR/bin/.rulecheck
    want=$(file_hash "$src/go.mod" "$src/go.sum" "$src/main.go")
    if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      need go "to build the rule checker"
      log "building the rule checker (once)" >&2
      (cd "$src" && go build -o "$bin" .) >&2
      echo "$want" >"$stamp"
    fi
    echo "$bin"
    ;;
  compose-schema) echo "$(module_dir github.com/compose-spec/compose-go/v2 "$COMPOSE_GO_VERSION")/schema/compose-spec.json" ;;
  *) echo "usage: $0 kustomize|keda-crds|compose-schema|rulecheck" >&2; exit 2 ;;
esac
