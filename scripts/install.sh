#!/bin/sh
# Installs a Harbor Satellite release tarball (see docs/install.md).
#   install.sh [--prefix DIR] [--root DIR] [--token TOKEN | --token-file FILE] [--ground-control URL]
#              [--board NAME] [--no-enable] [--groundcontrol] TARBALL
#   install.sh [--prefix DIR] [--root DIR] --uninstall [--purge]
# Idempotent. Every path honours --root (an image or chroot being prepared); the service is only
# started when installing into / on a machine running systemd.
set -eu

PREFIX=/opt/harbor-satellite
ROOT=/
TOKEN='' TOKEN_FILE='' GC_URL='' BOARD='' ENABLE=1 GROUNDCONTROL=0 UNINSTALL=0 PURGE=0 TARBALL=''
BOOT_TOKEN_FILE=/boot/firmware/harbor-satellite-token
ETC_DIR=/etc/harbor-satellite
DEFAULT_USER=harbor-satellite

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }
usage() { sed -n '3,4p' "$0" | sed 's/^# *//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  opt=$1 val=''
  case $opt in --*=*) val=${opt#*=} opt=${opt%%=*} ;; esac
  case $opt in
    --prefix|--root|--token|--token-file|--ground-control|--board)
      if [ -z "$val" ]; then [ $# -ge 2 ] || die "$opt needs a value"; val=$2; shift; fi ;;
  esac
  case $opt in
    --prefix) PREFIX=$val ;;
    --root) ROOT=$val ;;
    --token) TOKEN=$val ;;
    --token-file) TOKEN_FILE=$val ;;
    --ground-control) GC_URL=$val ;;
    --board) BOARD=$val ;;
    --no-enable) ENABLE=0 ;;
    --groundcontrol) GROUNDCONTROL=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h|--help) usage ;;
    -*) die "unknown option $opt" ;;
    *) [ -z "$TARBALL" ] || die "one tarball only (got $TARBALL and $opt)"; TARBALL=$opt ;;
  esac
  shift
done

# --- validation: fail before touching anything ---
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path, got '$PREFIX'" ;; esac
printf '%s' "$PREFIX" | grep -Eq '^[A-Za-z0-9._/-]+$' || die "--prefix may only hold letters, digits and ._/-"
PREFIX=${PREFIX%/}
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
R=$(cd -P -- "$ROOT" && pwd -P); [ "$R" = / ] && R=''
P=$R$PREFIX
[ "$(id -u)" = 0 ] || die "run as root (it creates a system user and writes $PREFIX, /etc and /var/lib)"
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge only goes with --uninstall"

if [ -n "$TOKEN_FILE" ]; then
  [ -z "$TOKEN" ] || die "give --token or --token-file, not both"
  [ -r "$TOKEN_FILE" ] || die "--token-file $TOKEN_FILE is not readable"
  TOKEN=$(tr -d ' \t\r\n' < "$TOKEN_FILE")
fi
if [ -n "$TOKEN" ]; then
  printf '%s' "$TOKEN" | grep -Eq '^[!-~]{16,200}$' || die "the registration token must be 16-200 printable characters without spaces"
  [ -n "$GC_URL" ] || die "a registration token needs --ground-control URL (where to register)"
fi
if [ -n "$GC_URL" ]; then
  printf '%s' "$GC_URL" | grep -Eq '^https?://[^][:space:]"\\/]+(/[^][:space:]"\\]*)?$' \
    || die "--ground-control must be an http(s) URL like https://gc.example.com, got '$GC_URL'"
fi
if [ -n "$BOARD" ]; then
  printf '%s' "$BOARD" | grep -Eq '^[a-z0-9][a-z0-9-]*$' || die "--board takes a profile name like raspberry-pi, got '$BOARD'"
fi
if [ "$GROUNDCONTROL" = 1 ] && [ -n "$TOKEN$GC_URL$BOARD" ]; then
  die "--token, --ground-control and --board are satellite options, not for --groundcontrol"
fi

# The user a unit runs as: its User= line, else harbor-satellite.
unit_key() { v=$(sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n 1); echo "${v:-$3}"; }
unit_user() { unit_key "$1" User "$DEFAULT_USER"; }
passwd_field() { awk -F: -v u="$1" -v f="$2" '$1 == u { print $f }' "$R/etc/passwd"; }
live_systemd() { [ -z "$R" ] && [ -d /run/systemd/system ]; }
useradm() { cmd=$1; shift; if [ -n "$R" ]; then "$cmd" --root "$R" "$@"; else "$cmd" "$@"; fi; }

# --- uninstall ---
if [ "$UNINSTALL" = 1 ]; then
  [ -z "$TARBALL" ] || die "--uninstall takes no tarball"
  users=''
  for unit in satellite.service groundcontrol.service; do
    f=$R/etc/systemd/system/$unit
    [ -f "$f" ] || continue
    users="$users $(unit_user "$f")"
    if live_systemd; then systemctl disable --now "$unit" || true
    elif [ -n "$R" ] && command -v systemctl >/dev/null 2>&1; then systemctl --root="$R" --quiet disable "$unit" || true
    fi
    rm -f "$f" "$R"/etc/systemd/system/*.wants/"$unit"
    say "removed $unit"
  done
  live_systemd && systemctl daemon-reload
  for cmd in satellite groundcontrol; do
    l=$R/usr/local/bin/$cmd
    if [ -h "$l" ] && [ "$(readlink "$l")" = "$PREFIX/bin/$cmd" ]; then rm -f "$l"; fi
  done
  rm -rf "$P"
  say "removed $PREFIX"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$R$ETC_DIR" "$R/var/lib/harbor-satellite" "$R/var/lib/harbor-groundcontrol"
    for u in ${users:-$DEFAULT_USER}; do
      if [ -f "$R/etc/passwd" ] && [ -n "$(passwd_field "$u" 1)" ]; then useradm userdel "$u"; say "removed user $u"; fi
    done
    say "purged $ETC_DIR, /var/lib/harbor-satellite and /var/lib/harbor-groundcontrol"
  else
    say "kept $ETC_DIR and the data in /var/lib (remove them with --uninstall --purge)"
  fi
  exit 0
fi

[ -n "$TARBALL" ] || usage
[ -f "$TARBALL" ] || die "no such tarball: $TARBALL"
for tool in tar gzip sha256sum awk sed; do command -v "$tool" >/dev/null 2>&1 || die "needs $tool"; done

# --- extract and verify, into the prefix so the final rename is atomic ---
CREATED='' INCOMING=''
cleanup() {
  [ -z "$INCOMING" ] || rm -rf "$INCOMING"
  # A failed first install leaves nothing behind.
  [ -z "$CREATED" ] || rm -rf "$CREATED"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
d=$P # the topmost directory this run creates, removed again on failure
while [ -n "$d" ] && [ ! -e "$d" ]; do CREATED=$d; d=${d%/*}; done
mkdir -p "$P/releases"
INCOMING=$(mktemp -d "$P/releases/.incoming.XXXXXX")
tar -xzf "$TARBALL" -C "$INCOMING" --no-same-owner 2>"$INCOMING.err" \
  || { e=$(cat "$INCOMING.err"); rm -f "$INCOMING.err"; die "cannot extract $TARBALL: $e; nothing was installed"; }
rm -f "$INCOMING.err"
set -- "$INCOMING"/*
[ $# = 1 ] && [ -d "$1" ] || die "$TARBALL is not a release: expected one top directory; nothing was installed"
TOP=$1 NAME=${1##*/}
[ -f "$TOP/SHA256SUMS" ] && [ -f "$TOP/VERSION" ] || die "$TARBALL has no SHA256SUMS or VERSION: not a release; nothing was installed"
VERSION=$(cat "$TOP/VERSION")
printf '%s' "$VERSION" | grep -Eq '^[0-9A-Za-z.+-]+$' || die "$TARBALL: bad VERSION '$VERSION'; nothing was installed"
ARCH=${NAME##*-linux-}
[ "$NAME" = "harbor-satellite-$VERSION-linux-$ARCH" ] || die "$TARBALL: top directory $NAME does not match VERSION $VERSION; nothing was installed"
if ! out=$(cd "$TOP" && sha256sum -c --quiet --strict SHA256SUMS 2>&1); then
  die "$TARBALL failed verification against its SHA256SUMS (corrupt or tampered):
$out
nothing was installed"
fi
odd=$(cd "$TOP" && find . ! -type d ! -type f | sed 's#^\./##')
[ -z "$odd" ] || die "$TARBALL holds entries that are not plain files (symlinks, devices): $odd; nothing was installed"
unlisted=$(cd "$TOP" && { find . ! -type d ! -path ./SHA256SUMS | sed 's#^\./##'; sed 's/^[0-9a-f]*  //' SHA256SUMS; sed 's/^[0-9a-f]*  //' SHA256SUMS; } | sort | uniq -u)
[ -z "$unlisted" ] || die "$TARBALL holds files SHA256SUMS does not list: $unlisted; nothing was installed"
if [ -z "$R" ]; then
  case $(uname -m) in aarch64|arm64) host=arm64 ;; x86_64|amd64) host=x64 ;; *) host=$(uname -m) ;; esac
  [ "$host" = "$ARCH" ] || die "$TARBALL is for linux-$ARCH, this machine is $host; nothing was installed"
fi
if [ "$GROUNDCONTROL" = 1 ]; then UNIT=groundcontrol.service DATA=/var/lib/harbor-groundcontrol CONF=$ETC_DIR/groundcontrol.json
else UNIT=satellite.service DATA=/var/lib/harbor-satellite CONF=$ETC_DIR/satellite.json
fi
[ -f "$TOP/systemd/$UNIT" ] || die "this release has no systemd/$UNIT; nothing was installed"
if [ "$GROUNDCONTROL" = 0 ]; then
  if [ -z "$BOARD" ]; then
    model=$(cat "$R/proc/device-tree/model" "$R/sys/firmware/devicetree/base/model" 2>/dev/null | tr -d '\000' || true)
    case $model in
      *"Raspberry Pi"*) BOARD=raspberry-pi ;;
      *Jetson*) BOARD=jetson ;;
      *) BOARD=generic-x86 ;;
    esac
    say "board: $BOARD (device-tree model: ${model:-none}; --board overrides)"
  fi
  [ -f "$TOP/board/$BOARD.json" ] || die "no board profile '$BOARD' in this release (have: $(cd "$TOP/board" && ls | sed 's/\.json$//' | tr '\n' ' ')); nothing was installed"
fi
[ -f "$R/etc/passwd" ] && [ -f "$R/etc/group" ] || die "$R/etc/passwd or $R/etc/group missing: --root must be a system tree; nothing was installed"
SVC_USER=$(unit_user "$TOP/systemd/$UNIT")
DATA_MODE=$(unit_key "$TOP/systemd/$UNIT" StateDirectoryMode 0750) # what systemd enforces on start
if [ -z "$R" ]; then
  # The runtime and its native bindings must load here (glibc 2.34+ for lmdb's prebuilt binding).
  if ! out=$(cd "$TOP/lib" && ../node/bin/node --input-type=module -e 'await import("lmdb"); await import("msgpackr-extract")' 2>&1); then
    die "this release cannot run on this machine (it needs glibc 2.34 or later):
$out
nothing was installed"
  fi
fi

# --- place the release: releases/<version>, then flip `current` (rename(2) of a symlink) ---
DEST=$P/releases/$VERSION
CHANGED=1
if [ -d "$DEST" ] && cmp -s "$DEST/SHA256SUMS" "$TOP/SHA256SUMS" \
   && (cd "$DEST" && sha256sum -c --quiet --strict SHA256SUMS >/dev/null 2>&1); then
  say "release $VERSION already installed and intact"
  CHANGED=0
else
  if [ -e "$DEST" ]; then mv "$DEST" "$INCOMING/old"; fi
  mv "$TOP" "$DEST"
  say "installed release $VERSION ($ARCH) in $PREFIX/releases/$VERSION"
fi
rm -rf "$INCOMING"; INCOMING='' CREATED=''
old=$(readlink "$P/current" 2>/dev/null || true)
if [ "$old" != "releases/$VERSION" ]; then
  ln -sfn "releases/$VERSION" "$P/.current.new"
  mv -Tf "$P/.current.new" "$P/current"
  [ -z "$old" ] || ln -sfn "$old" "$P/previous"
  CHANGED=1
fi
previous=$(readlink "$P/previous" 2>/dev/null || true)
for entry in bin board config docs lib node systemd VERSION; do
  if [ -h "$P/$entry" ] || [ ! -e "$P/$entry" ]; then ln -sfn "current/$entry" "$P/$entry"
  else die "$PREFIX/$entry exists and is not a symlink: move it away"
  fi
done
# Keep `previous` (the release last replaced, for a rollback); drop older ones and leftovers.
for d in "$P"/releases/* "$P"/releases/.incoming.*; do
  [ -e "$d" ] || continue
  case ${d##*/} in "$VERSION"|"${previous#releases/}") ;; *) rm -rf "$d" ;; esac
done

# --- user, data dir, config ---
if [ -z "$(passwd_field "$SVC_USER" 1)" ]; then
  command -v useradd >/dev/null 2>&1 || die "needs useradd to create the user $SVC_USER"
  shell=/usr/sbin/nologin; [ -x "$R$shell" ] || shell=/bin/false
  useradm useradd --system --user-group --home-dir "$DATA" --no-create-home --shell "$shell" --comment 'Harbor Satellite' "$SVC_USER"
  say "created system user $SVC_USER"
fi
SVC_UID=$(passwd_field "$SVC_USER" 3) SVC_GID=$(passwd_field "$SVC_USER" 4)
mkdir -p "$R$DATA" "$R$ETC_DIR"
chown "$SVC_UID:$SVC_GID" "$R$DATA"; chmod "$DATA_MODE" "$R$DATA"
chown "0:$SVC_GID" "$R$ETC_DIR"; chmod 0750 "$R$ETC_DIR"

write_file() { # path mode owner: stdin -> temp file -> rename
  cat > "$1.tmp.$$"; chmod "$2" "$1.tmp.$$"; chown "$3" "$1.tmp.$$"; mv -f "$1.tmp.$$" "$1"
}
token_file=''
if [ -n "$TOKEN" ]; then
  token_file=$ETC_DIR/registration-token
  printf '%s\n' "$TOKEN" | write_file "$R$token_file" 0600 "$SVC_UID:$SVC_GID"
  say "stored the registration token in $token_file"
elif [ -n "$GC_URL" ]; then
  token_file=$BOOT_TOKEN_FILE
  say "no token given: the satellite reads it from $BOOT_TOKEN_FILE on first boot"
fi
if [ -e "$R$CONF" ]; then
  say "keeping the existing $CONF"
  [ -z "$GC_URL" ] || say "  (check that its control.groundControlUrl / registrationTokenFile say $GC_URL / $token_file)"
elif [ "$GROUNDCONTROL" = 1 ]; then
  write_file "$R$CONF" 0640 "0:$SVC_GID" < "$DEST/config/groundcontrol.json"
  say "wrote $CONF"
else
  template=$DEST/config/satellite.json
  [ "$(head -n 1 "$template")" = '{' ] && [ "$(wc -l < "$template")" -gt 2 ] || die "$template must start with a line '{' and hold keys"
  {
    echo '{'
    printf '  "board": "%s",\n' "$BOARD"
    if [ -n "$GC_URL" ]; then
      printf '  "control": {\n    "groundControlUrl": "%s",\n    "registrationTokenFile": "%s"\n  },\n' "$GC_URL" "$token_file"
    fi
    tail -n +2 "$template"
  } | write_file "$R$CONF" 0640 "0:$SVC_GID"
  say "wrote $CONF (board $BOARD)"
fi

# --- unit, commands on PATH, enable ---
UNIT_FILE=$R/etc/systemd/system/$UNIT
mkdir -p "$R/etc/systemd/system"
sed "s#/opt/harbor-satellite/#$PREFIX/#g" "$DEST/systemd/$UNIT" > "$UNIT_FILE.tmp.$$"
if cmp -s "$UNIT_FILE.tmp.$$" "$UNIT_FILE"; then rm -f "$UNIT_FILE.tmp.$$"
else chmod 0644 "$UNIT_FILE.tmp.$$"; mv -f "$UNIT_FILE.tmp.$$" "$UNIT_FILE"; CHANGED=1; say "installed /etc/systemd/system/$UNIT"
fi
mkdir -p "$R/usr/local/bin"
for cmd in satellite groundcontrol; do
  l=$R/usr/local/bin/$cmd
  if [ ! -e "$l" ] && [ ! -h "$l" ] || [ "$(readlink "$l" 2>/dev/null)" = "$PREFIX/bin/$cmd" ]; then ln -sfn "$PREFIX/bin/$cmd" "$l"
  else say "leaving /usr/local/bin/$cmd alone (not ours)"
  fi
done
if [ "$ENABLE" = 0 ]; then
  say "--no-enable: $UNIT is installed but not enabled"
elif live_systemd; then
  systemctl daemon-reload
  systemctl enable --quiet "$UNIT"
  # --no-block: a first start waits for Ground Control (Type=notify), the installer need not.
  if [ "$CHANGED" = 1 ]; then systemctl restart --no-block "$UNIT"; else systemctl start --no-block "$UNIT"; fi
  say "enabled and started $UNIT (systemctl status $UNIT; journalctl -u $UNIT)"
elif [ -n "$R" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl --root="$R" --quiet enable "$UNIT"
  say "enabled $UNIT in $R: it starts on that system's next boot"
else
  say "systemd is not running here: not starting $UNIT (systemctl enable --now $UNIT once it is)"
fi
say "done: $PREFIX/current -> releases/$VERSION"
