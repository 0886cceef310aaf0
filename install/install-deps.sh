#!/usr/bin/env bash
# Installs the Debian packages tabula needs to build, run and test.
#   install/install-deps.sh          build + run dependencies
#   install/install-deps.sh --test   also what the test suite uses (Xvfb, the Xorg dummy
#                                    driver, PyTorch for fixtures, clang, valgrind)
#   install/install-deps.sh --kiosk  also an X server for tabula-kiosk.service
#                                    (install/install.sh --kiosk USER)
# Needs root (or sudo). Safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(
  build-essential cmake pkg-config
  libglfw3-dev libglew-dev libgl1-mesa-dri libegl-dev
  portaudio19-dev libv4l-dev libasound2-dev liblo-dev liblo-tools libmicrohttpd-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev  # libavcodec59 brings libx264 (takes)
  libjpeg-dev libpng-dev libstb-dev libopenblas-dev libopenblas0-pthread libdnnl-dev libsystemd-dev
  ffmpeg xvfb xauth jackd2
)
for opt in "$@"; do
  case $opt in
    # xset: tests/app/test_install.sh checks that the kiosk session turns blanking off.
    # Xorg's dummy driver and xwininfo (x11-utils): test_channels_windows.sh's two monitors.
    --test) PKGS+=(python3-torch python3-numpy python3-pil xdotool x11-xserver-utils
                   xserver-xorg-core xserver-xorg-video-dummy x11-utils clang valgrind) ;;
    # A bare X server with no desktop: Xorg with its drivers (xserver-xorg);
    # Xorg.wrap, which starts it as root where a GPU driver needs that
    # (xserver-xorg-legacy); xset (x11-xserver-utils); chvt (kbd); the logind
    # session that gives the kiosk user the seat's devices (libpam-systemd).
    --kiosk) PKGS+=(xserver-xorg xserver-xorg-legacy x11-xserver-utils kbd libpam-systemd) ;;
    *) echo "install-deps: unknown option $opt (--test, --kiosk)" >&2; exit 2 ;;
  esac
done

need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
