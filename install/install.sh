#!/usr/bin/env bash
# install/install.sh: installs tabula system-wide on a Debian 12 machine.
# Run as root from a checkout; safe to run again (an upgrade is the same
# command after a `git pull`).
#
#   install/install.sh [--prefix DIR] [--kiosk USER]
#   install/install.sh --uninstall [--prefix DIR]
#
# What goes where (PREFIX defaults to /usr/local):
#   PREFIX/bin/tabula                   the program (a Release build of this checkout)
#   PREFIX/share/tabula/                the bundled clip and its licence, default.ini
#                                       (every setting), scenes/, midi/, show.ini
#   PREFIX/lib/tabula/kiosk-session     the X session of the kiosk unit
#   PREFIX/lib/systemd/user/tabula.service   the desktop user unit
#   /etc/tabula/tabula.ini              the show config: written once, never overwritten
#   /var/lib/tabula/{autosave,snapshots,takes,midi}   what the show writes
# With --kiosk USER, a show machine with no desktop:
#   USER (created if missing; groups video, audio) owns /var/lib/tabula;
#   /etc/systemd/system/tabula-kiosk.service starts X with only tabula in it
#   at boot (enabled and started here).
# --uninstall removes the program, PREFIX/share/tabula, PREFIX/lib/tabula and
# the units; it keeps /etc/tabula, /var/lib/tabula and the user.
#
# For packaging and tests: --destdir DIR stages everything under DIR (no
# packages, users, ownership or systemctl); --build-dir DIR and --no-build use
# a build folder that is already built.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr/local
KIOSK_USER=
UNINSTALL=0
DESTDIR=
BUILD=$SRC/build-release
BUILD_IT=1
ETC=/etc/tabula
STATE=/var/lib/tabula

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --kiosk) KIOSK_USER=${2:?--kiosk needs a user name}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --destdir) DESTDIR=${2:?--destdir needs a folder}; shift 2 ;;
    --build-dir) BUILD=${2:?--build-dir needs a folder}; shift 2 ;;
    --no-build) BUILD_IT=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path, not $PREFIX" ;; esac
PREFIX=${PREFIX%/}
if [ -n "$KIOSK_USER" ] && ! [[ $KIOSK_USER =~ ^[a-z_][a-z0-9_-]*$ ]]; then
  die "--kiosk $KIOSK_USER: not a user name (lower case letters, digits, - and _)"
fi
if [ -n "$DESTDIR" ]; then
  mkdir -p "$DESTDIR"
  DESTDIR=$(cd "$DESTDIR" && pwd)
elif [ "$(id -u)" -ne 0 ]; then
  die "run it as root (sudo $0 ...)"
fi
D=$DESTDIR  # every path written below is "$D/..."

# The files of an installation, outside /etc/tabula and /var/lib/tabula.
ours=(
  "$PREFIX/bin/tabula"
  "$PREFIX/share/tabula"
  "$PREFIX/lib/tabula"
  "$PREFIX/lib/systemd/user/tabula.service"
  /etc/systemd/system/tabula-kiosk.service
)

systemctl_() { if [ -z "$D" ]; then systemctl "$@"; fi; }

# ---------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
  [ -e "$D$PREFIX/bin/tabula" ] || [ -e "$D$PREFIX/share/tabula" ] ||
    echo "install.sh: no tabula under $PREFIX (another --prefix?); removing what there is"
  unit=$D/etc/systemd/system/tabula-kiosk.service
  if [ -e "$unit" ]; then
    KIOSK_USER=$(sed -n 's/^User=//p' "$unit")
    systemctl_ disable --now tabula-kiosk.service || true
  fi
  for f in "${ours[@]}"; do
    if [ -e "$D$f" ]; then rm -rf -- "$D$f"; echo "removed $f"; fi
  done
  # Folders the install made that nothing else uses now.
  rmdir "$D$PREFIX/lib/systemd/user" "$D$PREFIX/lib/systemd" 2>/dev/null || true
  systemctl_ daemon-reload || true
  echo "install.sh: kept $ETC (the show config) and $STATE (autosaves, snapshots, takes,"
  echo "  MIDI mappings)${KIOSK_USER:+ and the user $KIOSK_USER}: remove them by hand if they are not wanted."
  exit 0
fi

# ---------------------------------------------------------------- packages, build
if [ -z "$D" ]; then
  if [ -n "$KIOSK_USER" ]; then "$SRC/install/install-deps.sh" --kiosk; else "$SRC/install/install-deps.sh"; fi
fi
if [ "$BUILD_IT" = 1 ]; then
  # Built by the checkout's owner when run through sudo, so the build folder
  # stays theirs. Release, no sanitizers, for this machine's CPU.
  as_owner=()
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ "$(stat -c %U "$SRC")" = "$SUDO_USER" ]; then
    as_owner=(runuser -u "$SUDO_USER" --)
  fi
  "${as_owner[@]}" cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTABULA_SANITIZE=OFF \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" >/dev/null
  # The program alone: the tests and benchmarks are not installed.
  "${as_owner[@]}" cmake --build "$BUILD" --target tabula -j"$(nproc)"
fi
[ -x "$BUILD/tabula" ] || die "no $BUILD/tabula: build it first (or drop --no-build)"

# ---------------------------------------------------------------- files
# The program and its data (CMake's install() rules, CMakeLists.txt).
DESTDIR=$D cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
echo "installed $PREFIX/bin/tabula, $PREFIX/share/tabula, $PREFIX/lib/tabula"

# fill TEMPLATE: the template with this install's prefix and kiosk user.
fill() { sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@USER@#${KIOSK_USER:-tabula}#g" "$1"; }

# The show config: the current template always (for comparing), /etc once.
fill "$SRC/install/tabula.ini" > "$D$PREFIX/share/tabula/show.ini"
install -d -m 755 "$D$ETC"
if [ -e "$D$ETC/tabula.ini" ]; then
  echo "kept $ETC/tabula.ini (yours; the new template is $PREFIX/share/tabula/show.ini)"
else
  install -m 644 "$D$PREFIX/share/tabula/show.ini" "$D$ETC/tabula.ini"
  echo "installed $ETC/tabula.ini (the show config: edit it)"
fi

# The desktop user unit, pointed at this prefix (its comments name /usr/local).
install -d -m 755 "$D$PREFIX/lib/systemd/user"
sed "/^#/!s#/usr/local/#$PREFIX/#g" "$SRC/install/tabula.service" > "$D$PREFIX/lib/systemd/user/tabula.service"

# What the show writes; MIDI learn writes into midi/, seeded with the shipped
# mappings (a file already there, perhaps learned, is kept).
for d in autosave snapshots takes midi; do install -d -m 755 "$D$STATE/$d"; done
for f in "$D$PREFIX/share/tabula/midi/"*.ini; do
  [ -e "$D$STATE/midi/${f##*/}" ] || install -m 644 "$f" "$D$STATE/midi/"
done
echo "state folders in $STATE"

# ---------------------------------------------------------------- kiosk
if [ -z "$KIOSK_USER" ]; then
  echo "install.sh: done: $PREFIX/bin/tabula. A show machine that starts it at boot: --kiosk USER"
  if [ -e "$D/etc/systemd/system/tabula-kiosk.service" ]; then
    echo "  tabula-kiosk.service is installed: systemctl restart tabula-kiosk runs the new program"
  fi
  exit 0
fi
if [ -z "$D" ]; then
  if ! id "$KIOSK_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --shell /usr/sbin/nologin \
      --comment "tabula kiosk" "$KIOSK_USER"
    echo "created user $KIOSK_USER"
  fi
  # The camera (video) and sound (audio) devices.
  usermod -a -G video,audio "$KIOSK_USER"
  chown -R "$KIOSK_USER:" "$STATE"
fi
install -d -m 755 "$D/etc/systemd/system"
fill "$SRC/install/tabula-kiosk.service" > "$D/etc/systemd/system/tabula-kiosk.service"
echo "installed /etc/systemd/system/tabula-kiosk.service (user $KIOSK_USER)"
if [ -z "$D" ]; then
  systemctl daemon-reload
  systemctl enable tabula-kiosk.service
  # Running again is an upgrade: the new program on the screen now (and a
  # unit that had given up after too many failed starts tries again).
  systemctl reset-failed tabula-kiosk.service 2>/dev/null || true
  systemctl restart tabula-kiosk.service
  echo "install.sh: done. tabula-kiosk is running and starts at boot."
  echo "  show config: $ETC/tabula.ini (then: systemctl restart tabula-kiosk)"
  echo "  its log:     journalctl -u tabula-kiosk"
fi
