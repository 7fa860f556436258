#!/usr/bin/env bash
# Joins this machine to a swarm as a worker: installs swarmd and swarmctl and starts swarmd
# with the manager's address and the worker join token (under systemd, or in the background
# with a pid file and a log file when there is no systemd).
#
#   install/worker-node.sh [--name NAME] [--manager IP:PORT] [--token SWMTKN-1-...]
#                          [--prefix DIR] [--state-dir DIR] [--executor process|docker|sim]
#   install/worker-node.sh --uninstall [--purge] [--prefix DIR] [--state-dir DIR]
#
# Asks for what is missing when run from a terminal; unattended, pass the options or
# SWARM_NODE_NAME / SWARM_MANAGER / SWARM_JOIN_TOKEN. Running it again changes nothing.
set -euo pipefail
. "$(dirname "$0")/common.sh"

NAME=${SWARM_NODE_NAME:-}
MANAGER=${SWARM_MANAGER:-}
TOKEN=${SWARM_JOIN_TOKEN:-}
EXECUTOR=${SWARM_EXECUTOR:-auto}
PREFIX=${SWARM_PREFIX:-/usr/local}
STATE_DIR=${SWARM_STATE_DIR:-/var/lib/swarmd}
UNINSTALL=0
PURGE=0
ROLE=worker
UNIT=swarmd

while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME=${2:-}; shift 2 ;;
    --manager) MANAGER=${2:-}; shift 2 ;;
    --token) TOKEN=${2:-}; shift 2 ;;
    --executor) EXECUTOR=${2:-}; shift 2 ;;
    --prefix) PREFIX=${2:-}; shift 2 ;;
    --state-dir) STATE_DIR=${2:-}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ "$UNINSTALL" = 1 ]; then uninstall; exit 0; fi

ask NAME "Worker node name"
ask MANAGER "Manager address (IP:PORT)"
ask TOKEN "Worker join token"
[ -n "$NAME" ] || die "name: required (--name NAME or SWARM_NODE_NAME)"
valid_name "$NAME" || die "name: '$NAME' must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
[ -n "$MANAGER" ] || die "manager: required (--manager IP:PORT or SWARM_MANAGER)"
valid_addr "$MANAGER" || die "manager: '$MANAGER' is not IP:PORT"
[[ "$TOKEN" =~ ^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$ ]] || die "token: not a join token (SWMTKN-1-<50 chars>-<25 chars>)"
case "$EXECUTOR" in auto|process|docker|sim) ;; *) die "executor: '$EXECUTOR' is not one of auto, process, docker, sim" ;; esac

install_binaries
if running; then
  say "swarmd is already running here"
  exit 0
fi
start_swarmd -d "$STATE_DIR" --hostname "$NAME" --join-addr "$MANAGER" --join-token "$TOKEN" --executor "$EXECUTOR"
# A bad token or an unreachable manager ends swarmd at once: report that instead of success.
for _ in $(seq 1 50); do
  [ -f "$STATE_DIR/certificates/swarm-node.crt" ] && break
  running || die "swarmd stopped: $(tail -n 1 "$STATE_DIR/swarmd.log" 2>/dev/null || echo 'see journalctl -u swarmd')"
  sleep 0.2
done
[ -f "$STATE_DIR/certificates/swarm-node.crt" ] || die "no certificate after 10 s; see $STATE_DIR/swarmd.log"
say "Worker $NAME joined the swarm at $MANAGER."
