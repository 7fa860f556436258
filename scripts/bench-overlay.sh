#!/usr/bin/env bash
# The overlay's cost: TCP throughput and round trip between two test hosts (network
# namespaces joined by a veth link, a release swarmd on each, process executor), over the
# hosts' own link, over the overlay task to task, and through the service's VIP.
# Needs root, iproute2, nftables and busybox. Figures go to docs/benchmarks.md.
#   bash scripts/bench-overlay.sh [MiB per transfer, default 500]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-500}
cargo build --release -q -p swarmd -p swarmctl
BIN=$PWD/target/release
T=$(mktemp -d /tmp/bench-overlay.XXXXXX)
A=swbench$$a
B=swbench$$b
cleanup() {
  # The swarmds (and the link's sink) first: nothing may re-create what is removed below.
  pkill -f -- "-d $T/" 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  sleep 1
  for f in "$T"/*/worker/network/owned/*; do
    [ -e "$f" ] && ip netns del "$(basename "$f")" 2>/dev/null || true
  done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

ip netns add "$A"
ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add 10.250.0.1/24 dev va
ip -n "$B" addr add 10.250.0.2/24 dev vb
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set va up
ip -n "$B" link set vb up

on() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }
ctl() { "$BIN/swarmctl" -s "$T/a.sock" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

on "$A" "$BIN/swarmd" -d "$T/a" --hostname a --listen-control-api "$T/a.sock" \
  --listen-remote-api 10.250.0.1:4242 --executor process --log-level warn >"$T/a.log" 2>&1 &
for _ in $(seq 100); do ctl node ls >/dev/null 2>&1 && break; sleep 0.2; done
TOKEN=$(ctl cluster inspect default | awk '/Worker/ {print $NF}')
on "$B" "$BIN/swarmd" -d "$T/b" --hostname b --executor process --join-addr 10.250.0.1:4242 \
  --join-token "$TOKEN" --log-level warn >"$T/b.log" 2>&1 &
for _ in $(seq 100); do [ "$(ctl node ls --format json | json 'len(d)')" = 2 ] && break; sleep 0.2; done

ctl network create --name bench >/dev/null
# The sink takes one connection after another and throws the bytes away.
ctl service create --detach --name sink --image busybox --network bench \
  --constraint node.hostname==b --command busybox --args sh --args -c \
  --args 'while true; do busybox nc -l -p 5001 >/dev/null; done' >/dev/null
ctl service create --detach --name src --image busybox --network bench \
  --constraint node.hostname==a >/dev/null

running() { # service -> "task_id address" once running
  ctl task ls --service "$1" --format json | json \
    "' '.join(next(([t['id'], t['networks'][0]['addresses'][0].split('/')[0]] for t in d if t['status']['state'] in (512, 'TASK_STATE_RUNNING')), []))"
}
for _ in $(seq 150); do
  SINK=$(running sink); SRC=$(running src)
  [ -n "$SINK" ] && [ -n "$SRC" ] && break
  sleep 0.2
done
SINK_ADDR=${SINK#* }
SRC_NS=swarm-${SRC%% *}
VIP=$(ctl service inspect sink --format json | json "d['endpoint']['virtual_ips'][0]['addr'].split('/')[0]")
sleep 1

# The same sink on the hosts' own link.
on "$B" sh -c 'while true; do busybox nc -l -p 5002 >/dev/null; done' &
sleep 0.5

# Sends MIB MiB of zeros to ADDR:PORT from inside the given command prefix; prints dd's line.
send() { # label, address, port, prefix...
  local label=$1 addr=$2 port=$3; shift 3
  local rate
  rate=$("$@" bash -c "dd if=/dev/zero bs=1M count=$MIB >/dev/tcp/$addr/$port" 2>&1 \
    | grep -E 'copied' | tail -1 || true)
  echo "$label: $rate"
}
# dd (into bash's /dev/tcp) reports how fast the bytes left for the socket: the network's
# rate once the buffers are full.
for i in 1 2 3; do
  echo "== round $i ($MIB MiB each)"
  send "underlay (host a -> host b)" 10.250.0.2 5002 on "$A"
  send "overlay (task -> task)" "$SINK_ADDR" 5001 ip netns exec "$SRC_NS"
  send "overlay through the VIP" "$VIP" 5001 ip netns exec "$SRC_NS"
done
echo "== round trip (50 pings, 0.1 s apart)"
echo "underlay: $(on "$A" busybox ping -c 50 -i 0.1 10.250.0.2 | tail -1)"
echo "overlay:  $(ip netns exec "$SRC_NS" busybox ping -c 50 -i 0.1 "$SINK_ADDR" | tail -1)"
