#!/usr/bin/env bash
# Debian's Chromium, for the console's browser tests: installed with apt when missing.
# Playwright drives this one; it never downloads a browser of its own.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "[chromium] installing Debian's chromium (once)"
$sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
  $sudo apt-get update >/dev/null
  $sudo apt-get install -y --no-install-recommends chromium >/dev/null
}
chromium --version
