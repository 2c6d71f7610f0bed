#!/usr/bin/env bash
# Installs what the dashboard's browser test (tests/e2e/test_dashboard_browser.py) needs beyond the
# virtualenv: Debian's Chromium at /usr/bin/chromium, which Playwright drives (no browser is ever
# downloaded by Playwright). Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: /usr/bin/chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2
    exit 1
fi
echo "installing Chromium (Debian package chromium)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ]
