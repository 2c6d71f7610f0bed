#!/usr/bin/env bash
# Installs what `make deploy-check` needs beyond the virtualenv: promtool, from Debian's prometheus
# package. Idempotent: does nothing when promtool is already there.
# (kubectl, Docker Compose, kubernetes-validate and jsonschema are uv dev dependencies.)
set -euo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: promtool is missing: install Debian's prometheus package (apt-get install prometheus)" >&2
    exit 1
fi
echo "installing promtool (Debian package prometheus)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
