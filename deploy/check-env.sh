#!/usr/bin/env bash
# `make up` runs this first: the .env file must exist and give a value to every variable that
# .env.example lists, so no service starts with an empty or development secret.
set -euo pipefail
ENV_FILE=${1:-.env}
EXAMPLE="$(dirname "$0")/../.env.example"
if [ ! -f "$ENV_FILE" ]; then
    echo "error: $ENV_FILE not found: copy .env.example to .env and set real secrets" >&2
    exit 1
fi
status=0
while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=$(grep -E "^${key}=" "$ENV_FILE" | tail -1 | cut -d= -f2- || true)
    if [ -z "$value" ]; then
        echo "error: $key is empty in $ENV_FILE" >&2
        status=1
    fi
done < "$EXAMPLE"
exit $status
