#!/bin/sh
# A Python 3.11 base image made from Debian bookworm packages, for machines that reach a Debian
# mirror but no container registry (so `python:3.11.X-slim-bookworm` cannot be pulled). Build the
# project image on top of it with `--build-arg BASE_IMAGE=IMAGE`.
#
#   sudo docker/debian-base.sh localhost/metalore-base:bookworm            # podman (default)
#   sudo ENGINE=docker docker/debian-base.sh metalore-base:bookworm
#
# Like the official image: `python` and `pip` are Python 3.11's (a venv in /opt/python, first on
# PATH, so pip installs need no --break-system-packages), LANG=C.UTF-8, rsync included (the Ray
# cluster launcher needs it; the Dockerfile then skips apt). Needs root and debootstrap
# (`apt-get install debootstrap`); about 1-2 min and 300 MB of downloads.
# Environment: ENGINE (podman), MIRROR (http://deb.debian.org/debian), SUITE (bookworm),
# WORKDIR (a temporary directory, removed at the end).
set -eu

IMAGE=${1:?usage: debian-base.sh IMAGE}
ENGINE=${ENGINE:-podman}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}

work=${WORKDIR:-$(mktemp -d /var/tmp/metalore-base.XXXXXX)}
rootfs="$work/rootfs"
trap 'rm -rf "$work"' EXIT INT TERM

debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-distutils,ca-certificates,rsync \
    "$SUITE" "$rootfs" "$MIRROR"

# The interpreter's own venv: pip and setuptools from python3.11-venv's bundled wheels.
chroot "$rootfs" /usr/bin/python3.11 -m venv /opt/python
chroot "$rootfs" /opt/python/bin/python -m pip --version

# Smaller image: no downloaded packages, package lists, docs or translations.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*

tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE"
