#!/usr/bin/env bash
# Make the base image every service image builds on, tagged $BASE_IMAGE (default ecom/python:3.11).
#   - an image already tagged so is kept;
#   - else python:3.11-slim is pulled when a registry answers;
#   - else a Debian bookworm root (its python3 is 3.11) is made with debootstrap and imported.
# Usage: deploy/docker/base-image.sh            (needs root for debootstrap)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-ecom/python:3.11}
ENGINE=${CONTAINER_ENGINE:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base image $BASE_IMAGE already present"
    exit 0
fi

if timeout "${PULL_TIMEOUT:-60}" "$ENGINE" pull -q python:3.11-slim >/dev/null 2>&1; then
    "$ENGINE" tag python:3.11-slim "$BASE_IMAGE"
    echo "base image $BASE_IMAGE = python:3.11-slim"
    exit 0
fi

echo "no registry reachable: making $BASE_IMAGE with debootstrap (a few minutes)"
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed" >&2; exit 1; }
root=$(mktemp -d /tmp/ecom-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$MIRROR"
# What a container does not need: package caches, docs, man pages, locales.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
       "$root"/usr/share/locale/* "$root"/var/cache/* "$root"/var/log/*
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
tar -C "$root" -c . | "$ENGINE" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE"
echo "base image $BASE_IMAGE made with debootstrap"
