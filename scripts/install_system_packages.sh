#!/usr/bin/env bash
# The Debian/Ubuntu packages the napari tests need (Xvfb and the GL/Qt xcb libraries).
# The one list: `.ci/run` and `make test` call this script.
#   scripts/install_system_packages.sh            install them (apt-get; sudo when not root)
#   scripts/install_system_packages.sh --missing  print the ones not installed (nothing when all are)
#   scripts/install_system_packages.sh --if-missing  install only when some are missing
set -euo pipefail

PACKAGES="xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libdbus-1-3 libfontconfig1 fonts-dejavu-core
libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libglib2.0-0"

missing() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install the equivalents of: $PACKAGES" >&2
    return 0
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
}

case "${1:-}" in
  --missing) missing ;;
  --if-missing)
    todo="$(missing | tr '\n' ' ')"
    if [ -n "${todo// /}" ]; then echo "installing system packages for the napari tests: $todo"; install; fi ;;
  "") install ;;
  *) echo "usage: $0 [--missing|--if-missing]" >&2; exit 2 ;;
esac
