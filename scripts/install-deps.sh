#!/bin/sh
# Installs every Debian package lemon needs to build, test and benchmark.
# Idempotent: packages already present are left alone. Run as root (or with
# sudo available).
set -eu

PKGS="build-essential pkg-config git ca-certificates jq python3 \
libpci-dev libkmod-dev libvulkan-dev libcjson-dev libcmocka-dev \
libcurl4-openssl-dev libssl-dev libarchive-dev libisal-dev \
umockdev libumockdev-dev mesa-vulkan-drivers vulkan-tools pciutils kmod \
hyperfine cmake libarchive-tools curl"
# promtool (tests check /metrics with `promtool check metrics`) ships only in
# Debian 12's prometheus package
PKGS="$PKGS prometheus"
# libdrm_amdgpu's header: detect/libdrm.c dlopens the library and needs only
# its types
PKGS="$PKGS libdrm-dev"
# headless Chromium for the web app's browser tests (tests/integration/
# test_browser.sh, driven by puppeteer-core from tests/node)
PKGS="$PKGS chromium"
# the Debian package and its checks (tests/integration/test_deb.sh,
# test_install.sh): dpkg-buildpackage, dh, lintian, groff for the man page
PKGS="$PKGS dpkg-dev debhelper lintian groff-base"
# a machine may already carry Node.js from elsewhere (with npm bundled);
# only a machine without node gets Debian's
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
