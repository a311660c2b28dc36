#!/bin/sh
# Installs, idempotently, the Debian packages Cohort's build and tests use:
# OpenBLAS for the fast CPU path, nats-server for the external-server
# rendezvous tests, iproute2 for the two-node network-namespace test, g++
# for the host emulation of CUDA (make emu-test).
# Run as root (or with sudo available).
set -eu
pkgs="libopenblas-dev nats-server iproute2 g++"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all installed"; exit 0; }
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q $missing
