#!/usr/bin/env bash
# `make images`: the base image, then one image per service, tagged ecom/<service>:$TAG.
#   SERVICES="gateway customer" deploy/docker/build-images.sh    builds only those
set -euo pipefail
cd "$(dirname "$0")/../.."

ENGINE=${CONTAINER_ENGINE:-docker}
TAG=${TAG:-latest}
SERVICES=${SERVICES:-gateway customer product sync analytics}
export BASE_IMAGE=${BASE_IMAGE:-ecom/python:3.11}

"$ENGINE" version >/dev/null 2>&1 || {
    echo "error: no container engine answers ($ENGINE): start dockerd (see docs/operations.md)" >&2
    exit 1
}
deploy/docker/base-image.sh

# Builds reach PyPI through the host's trust store (a TLS-inspecting proxy, if any, is in it).
host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ -s "$host_ca" ]; then
    cp "$host_ca" deploy/docker/certs/ca-certificates.crt
fi

for service in $SERVICES; do
    echo "=== ecom/$service:$TAG"
    start=$(date +%s)
    "$ENGINE" build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "SERVICE=$service" \
        -t "ecom/$service:$TAG" .
    echo "ecom/$service:$TAG built in $(( $(date +%s) - start ))s"
done
"$ENGINE" image ls --filter reference='ecom/*'
