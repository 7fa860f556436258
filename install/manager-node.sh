#!/usr/bin/env bash
# Sets up a swarm manager on this machine: installs swarmd and swarmctl, starts the first
# manager of a new swarm (under systemd, or in the background with a pid file and a log file
# when there is no systemd), and prints the command that joins a worker to it.
#
#   install/manager-node.sh [--name NAME] [--addr IP:PORT] [--advertise IP:PORT]
#                           [--prefix DIR] [--state-dir DIR] [--socket PATH]
#   install/manager-node.sh --uninstall [--purge] [--prefix DIR] [--state-dir DIR]
#
# Unattended: pass the options, or SWARM_NODE_NAME / SWARM_ADDR in the environment. Running
# it again on an installed manager changes nothing and prints the join command again.
set -euo pipefail
. "$(dirname "$0")/common.sh"

NAME=${SWARM_NODE_NAME:-}
ADDR=${SWARM_ADDR:-0.0.0.0:4242}
ADVERTISE=${SWARM_ADVERTISE:-}
PREFIX=${SWARM_PREFIX:-/usr/local}
STATE_DIR=${SWARM_STATE_DIR:-/var/lib/swarmd}
SOCKET=${SWARM_SOCKET_PATH:-/var/run/swarmd.sock}
UNINSTALL=0
PURGE=0
ROLE=manager
UNIT=swarmd

while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME=${2:-}; shift 2 ;;
    --addr) ADDR=${2:-}; shift 2 ;;
    --advertise) ADVERTISE=${2:-}; shift 2 ;;
    --prefix) PREFIX=${2:-}; shift 2 ;;
    --state-dir) STATE_DIR=${2:-}; shift 2 ;;
    --socket) SOCKET=${2:-}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ "$UNINSTALL" = 1 ]; then uninstall; exit 0; fi

ask NAME "Manager node name"
[ -n "$NAME" ] || die "name: required (--name NAME or SWARM_NODE_NAME)"
valid_name "$NAME" || die "name: '$NAME' must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
valid_addr "$ADDR" || die "addr: '$ADDR' is not IP:PORT"
[ -z "$ADVERTISE" ] || valid_addr "$ADVERTISE" || die "advertise: '$ADVERTISE' is not IP:PORT"

install_binaries
ctl() { "$PREFIX/bin/swarmctl" -s "$SOCKET" "$@"; }
if running; then
  say "swarmd is already running here"
else
  args=(-d "$STATE_DIR" --hostname "$NAME" --listen-remote-api "$ADDR" --listen-control-api "$SOCKET")
  [ -z "$ADVERTISE" ] || args+=(--advertise-remote-api "$ADVERTISE")
  start_swarmd "${args[@]}"
fi
for _ in $(seq 1 150); do ctl cluster inspect default >/dev/null 2>&1 && break; sleep 0.2; done
token=$(ctl cluster inspect default 2>/dev/null | awk '/Worker:/ {print $2}') || true
[ -n "$token" ] || die "swarmd did not come up; see $STATE_DIR/swarmd.log (or journalctl -u $UNIT)"
join=${ADVERTISE:-$ADDR}
case "$join" in 0.0.0.0:*) join="<this machine's address>:${join#0.0.0.0:}" ;; esac
say "Manager $NAME is running. Control socket: $SOCKET"
say "Join a worker with:"
say "  install/worker-node.sh --name <worker name> --manager $join --token $token"
