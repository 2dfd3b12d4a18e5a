#!/usr/bin/env bash
# Build the local base image instances run on, when its tag is missing: a minimal Debian
# bookworm (debootstrap minbase) with python3, venv, pip and the CA certificates, from the
# mirror apt is configured with, imported with `docker import`. No registry is needed.
#
# Usage: scripts/base-image.sh [TAG]   (default: $JUPYTER_DEPLOY_BASE_IMAGE or
#        jupyter-deploy-base:bookworm). Needs root and a running engine.
set -euo pipefail

tag=${1:-${JUPYTER_DEPLOY_BASE_IMAGE:-jupyter-deploy-base:bookworm}}
suite=bookworm

if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi

# The first deb.debian.org-style URI of the configured sources (deb822 or one-line form).
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
         | grep -v -- '-security' | head -n 1 || true)
if [ -z "$mirror" ]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             | awk '{print $2}' | grep -v -- '-security' | head -n 1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null; then
    echo "base-image: installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        debootstrap >&2 || {
        apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            debootstrap >&2
    }
fi

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/jupyter-deploy-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
echo "base-image: building $tag from $mirror (a minute or so)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || {
    echo "base-image: debootstrap failed; the end of its log:" >&2
    tail -n 20 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    exit 1
}
rm -f "$rootfs.log"
# Package lists and caches only weigh the image down.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "base-image: built $tag" >&2
