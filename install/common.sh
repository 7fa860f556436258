# Shared by manager-node.sh and worker-node.sh: argument checks, installing the binaries,
# running swarmd under systemd or, without it, in the background with a pid file and a log.
# Sourced, not run.

die() { echo "Error: $*" >&2; exit 1; }
say() { echo "$*"; }

valid_name() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]
}

valid_addr() {
  [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}:[0-9]{1,5}$ ]] || [[ "$1" =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}$ ]]
}

# ask VAR "prompt": fills VAR from the terminal when it is empty and a terminal is there.
ask() {
  local var=$1 prompt=$2
  if [ -z "${!var}" ] && [ -t 0 ]; then
    read -r -p "$prompt: " "$var"
  fi
}

# Where the freshly built binaries are: $SWARM_BIN_DIR, else the repository's target dir.
find_bin_dir() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  for d in "${SWARM_BIN_DIR:-}" "$here/target/release" "$here/target/debug"; do
    if [ -n "$d" ] && [ -x "$d/swarmd" ] && [ -x "$d/swarmctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

install_binaries() {
  local src
  src=$(find_bin_dir) || die "swarmd and swarmctl not found: build them first (cargo build --release --bins) or set SWARM_BIN_DIR"
  mkdir -p "$PREFIX/bin"
  for b in swarmd swarmctl; do
    if ! cmp -s "$src/$b" "$PREFIX/bin/$b" 2>/dev/null; then
      install -m 0755 "$src/$b" "$PREFIX/bin/$b.new" && mv -f "$PREFIX/bin/$b.new" "$PREFIX/bin/$b"
    fi
  done
}

use_systemd() {
  case "${SWARM_INIT:-auto}" in
    systemd) return 0 ;;
    none) return 1 ;;
    *) [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 ;;
  esac
}

running() {
  if use_systemd; then
    systemctl is-active --quiet "$UNIT"
  else
    [ -f "$STATE_DIR/swarmd.pid" ] && kill -0 "$(cat "$STATE_DIR/swarmd.pid")" 2>/dev/null
  fi
}

# start_swarmd ARGS...: runs swarmd with ARGS as a service.
start_swarmd() {
  mkdir -p "$STATE_DIR"
  if use_systemd; then
    cat >"/etc/systemd/system/$UNIT.service" <<UNIT_FILE
[Unit]
Description=swarmd ($ROLE node $NAME)
After=network-online.target

[Service]
ExecStart=$PREFIX/bin/swarmd $*
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT_FILE
    systemctl daemon-reload
    systemctl enable --now "$UNIT"
  else
    nohup "$PREFIX/bin/swarmd" "$@" >>"$STATE_DIR/swarmd.log" 2>&1 &
    echo $! >"$STATE_DIR/swarmd.pid"
  fi
}

stop_swarmd() {
  if use_systemd; then
    systemctl disable --now "$UNIT" 2>/dev/null || true
    rm -f "/etc/systemd/system/$UNIT.service"
    systemctl daemon-reload 2>/dev/null || true
  elif [ -f "$STATE_DIR/swarmd.pid" ]; then
    local pid
    pid=$(cat "$STATE_DIR/swarmd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$STATE_DIR/swarmd.pid"
  fi
}

uninstall() {
  stop_swarmd
  rm -f "$PREFIX/bin/swarmd" "$PREFIX/bin/swarmctl"
  if [ "${PURGE:-0}" = 1 ]; then
    rm -rf "$STATE_DIR"
    say "swarmd uninstalled; state removed ($STATE_DIR)"
  else
    say "swarmd uninstalled; state kept in $STATE_DIR (--purge removes it)"
  fi
}
