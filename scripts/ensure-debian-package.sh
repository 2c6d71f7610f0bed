#!/usr/bin/env bash
# ensure-debian-package.sh PROGRAM PACKAGE: installs the Debian package PACKAGE when PROGRAM (a command
# name or an absolute path) is missing; does nothing when it is there. Needs root and apt-get to install.
set -euo pipefail
program=$1
package=$2
present() { if [[ $program == /* ]]; then [ -x "$program" ]; else command -v "$program" >/dev/null 2>&1; fi; }
present && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $program is missing: install Debian's $package package (apt-get install $package)" >&2
    exit 1
fi
echo "installing $program (Debian package $package)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >/dev/null
present
