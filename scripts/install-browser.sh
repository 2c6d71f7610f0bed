#!/usr/bin/env bash
# Installs what the dashboard's browser test (tests/e2e/test_dashboard_browser.py) needs beyond the
# virtualenv: Debian's Chromium at /usr/bin/chromium, which Playwright drives (Playwright never
# downloads a browser here). Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian-package.sh" /usr/bin/chromium chromium
