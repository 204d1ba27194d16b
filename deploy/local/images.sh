#!/usr/bin/env bash
# The services' OCI images, built and started here without a container engine:
# Debian's buildah (`--isolation chroot`) on a base made by mmdebstrap from Debian's
# packages, from the same Dockerfiles compose and Kubernetes use.
#
#   deploy/local/images.sh install   buildah and mmdebstrap, with apt (once)
#   deploy/local/images.sh base      the base image: Debian bookworm, python3.11, venv
#   deploy/local/images.sh build     base, then every service's image
#   deploy/local/images.sh check     start each image's own entrypoint against the local
#                                    Kafka and store; /readyz, non-root, no build tools,
#                                    nothing written; sizes to .local/images/report.json
#   deploy/local/images.sh all       install, build, check (make images)
#
# The Dockerfiles' base is an argument (PYTHON_IMAGE); here it is the mmdebstrap base,
# tagged localhost/hookflow-python:3.11. Needs KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL
# for `check` (deploy/local/infra.sh env).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$ROOT/.local/images"
BASE="localhost/hookflow-python:3.11"
SERVICES=(gateway engine auth)
mkdir -p "$STATE"
log() { echo "[images] $*" >&2; }

install() {
  if command -v buildah >/dev/null && command -v mmdebstrap >/dev/null; then return; fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian's buildah and mmdebstrap (once)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends buildah mmdebstrap >/dev/null 2>&1 || {
    $sudo apt-get update >/dev/null
    $sudo apt-get install -y --no-install-recommends buildah mmdebstrap >/dev/null
  }
}

base() {
  if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    log "base $BASE is built"
    return
  fi
  # the machine's own apt sources: no mirror is named here
  log "making the base with mmdebstrap (bookworm, python3.11, venv)"
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    bookworm "$STATE/base.tar"
  local container
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$STATE/base.tar" / >/dev/null
  buildah config --env LANG=C.UTF-8 --cmd python3 "$container"
  buildah commit --quiet --rm "$container" "$BASE" >/dev/null
  rm -f "$STATE/base.tar"
}

# the CA bundle this machine's own clients trust (pip's, else the system's): handed to
# the build stage only, for a network that inspects TLS
ca_bundle() {
  local bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
  [ -s "$bundle" ] || bundle=/dev/null
  echo "$bundle"
}

build() {
  base
  for service in "${SERVICES[@]}"; do
    log "building hookflow-$service (services/$service/Dockerfile)"
    buildah build --quiet --isolation chroot --layers --format docker \
      --build-arg "PYTHON_IMAGE=$BASE" --secret "id=cacert,src=$(ca_bundle)" \
      -f "services/$service/Dockerfile" -t "localhost/hookflow-$service:dev" "$ROOT" >/dev/null
  done
}

check() {
  "$ROOT/.venv/bin/python" "$HERE/images_check.py" --report "$STATE/report.json" \
    "${SERVICES[@]}"
}

case "${1:-all}" in
  install) install ;;
  base) base ;;
  build) build ;;
  check) check ;;
  all) install && build && check ;;
  *) echo "usage: $0 install|base|build|check|all" >&2; exit 2 ;;
esac
