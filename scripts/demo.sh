#!/usr/bin/env bash
# Builds swarmd and swarmctl and brings up a local three-node swarm (one manager, two
# workers, on loopback) running a 3-replica service.
#   scripts/demo.sh        build, start, create the service, show the cluster
#   scripts/demo.sh down   stop the swarm and remove its state
# State and logs live in $SWARM_DEMO_DIR (default /tmp/swarm-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SWARM_DEMO_DIR:-/tmp/swarm-demo}
PORT=${SWARM_DEMO_PORT:-4242}
SOCK="$DIR/manager1/swarm.sock"
BIN="$PWD/target/debug"

down() {
  if [ -d "$DIR" ]; then
    for f in "$DIR"/*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 2
    rm -rf "$DIR"
  fi
  echo "swarm stopped"
}

if [ "${1:-}" = "down" ]; then down; exit 0; fi
if [ -e "$DIR" ]; then
  echo "$DIR exists: a demo swarm may be running; run '$0 down' first" >&2
  exit 1
fi

cargo build --workspace --bins
mkdir -p "$DIR"
start() { # name, args...
  local name=$1; shift
  # The demo runs `sleep` processes, with or without a Docker engine on the machine.
  "$BIN/swarmd" -d "$DIR/$name" --hostname "$name" --executor process "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

start node-1 --listen-control-api "$SOCK" --listen-remote-api "127.0.0.1:$PORT"
ctl() { "$BIN/swarmctl" -s "$SOCK" "$@"; }
for _ in $(seq 1 100); do ctl node ls >/dev/null 2>&1 && break; sleep 0.2; done
TOKEN=$(ctl cluster inspect default | awk '/Worker:/ {print $2}')
start node-2 --join-addr "127.0.0.1:$PORT" --join-token "$TOKEN"
start node-3 --join-addr "127.0.0.1:$PORT" --join-token "$TOKEN"
for _ in $(seq 1 100); do
  [ "$(ctl node ls | grep -c ' READY ')" = 3 ] && break
  sleep 0.2
done
ctl service create --name redis --image redis:3.0.5 --replicas 3 >/dev/null
for _ in $(seq 1 100); do ctl service ls | grep -q ' 3/3' && break; sleep 0.2; done
ctl node ls
echo
ctl service ls
echo
ctl service inspect redis
cat <<MSG

A three-node swarm is running (logs in $DIR). Try:
  export SWARM_SOCKET=$SOCK PATH=$BIN:\$PATH
  swarmctl service update redis --replicas 6
  swarmctl node drain node-1
Stop it with: $0 down
MSG
