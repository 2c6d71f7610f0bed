#!/usr/bin/env bash
# Installs what `make deploy-check` needs beyond the virtualenv: promtool, from Debian's prometheus
# package. Idempotent: does nothing when promtool is already there.
# (kubectl, Docker Compose, kubernetes-validate and jsonschema are uv dev dependencies.)
set -euo pipefail
exec "$(dirname "$0")/ensure-debian-package.sh" promtool prometheus
