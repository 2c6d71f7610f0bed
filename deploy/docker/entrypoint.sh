#!/bin/sh
# The command of every service image. /app/service.env (written at build time) names the service.
set -eu
# shellcheck source=/dev/null
. /app/service.env

case "${1:-serve}" in
    serve)
        # Behind a proxy or ingress, set FORWARDED_ALLOW_IPS to its addresses so client IPs are kept.
        exec uvicorn "${SERVICE_MODULE}.main:app" --host 0.0.0.0 --port "${PORT:-8000}" \
            --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" --no-access-log \
            --http servicekit.http.server:ProblemHttpProtocol
        ;;
    migrate)
        # One-shot: run before the new version's pods start (compose `migrate-*`, the k8s Job).
        exec python -c "
import importlib
from servicekit.migrations import upgrade
config = importlib.import_module('${SERVICE_MODULE}.config')
upgrade(config.ALEMBIC_INI, config.Settings().database_url)
print('${SERVICE}: database at the latest migration')
"
        ;;
    healthcheck)
        # Ready = the database and the broker answer (GET /readyz).
        exec python -c "
import os, sys, urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/readyz', timeout=3)
except Exception as exc:
    sys.exit(f'not ready: {exc}')
"
        ;;
    *)
        exec "$@"
        ;;
esac
