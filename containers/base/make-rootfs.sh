#!/usr/bin/env bash
# Makes the root filesystem of spinebench/base in ROOT: debootstrap minbase bookworm with the packages of
# packages.txt, the unprivileged user `algorithm` (uid 1000) every SpineBench image runs as, no apt caches.
# Usage: make-rootfs.sh ROOT MIRROR LOGFILE
set -euo pipefail
root=$1 mirror=$2 logfile=$3
include=$(grep -v '^#' "$(dirname "$0")/packages.txt" | grep -v '^$' | paste -sd, -)
debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$logfile" 2>&1 \
  || { tail -30 "$logfile" >&2; exit 1; }
echo 'algorithm:x:1000:1000:algorithm:/home/algorithm:/usr/sbin/nologin' >>"$root/etc/passwd"
echo 'algorithm:x:1000:' >>"$root/etc/group"
echo 'algorithm:!:19000:0:99999:7:::' >>"$root/etc/shadow"
install -d -o 1000 -g 1000 "$root/home/algorithm"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
