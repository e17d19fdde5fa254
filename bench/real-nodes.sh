#!/usr/bin/env bash
# N real `noded` processes on this host (default 25), joined to one `noded hub` with a join token,
# and an admin joined with a console token; then `fleet ping` and `fleet pgrep` are timed REPEAT
# times each (wall time of the whole command, as an admin sees it) and summarised. Anyone can
# re-run it to compare with Salt on the same box (`salt '*' test.ping`, `salt '*' ps.pgrep`).
# The nodes' resident memory is read after they have been idle IDLE seconds (default 30): a node
# settles (hands the heap its work freed back to the system) once requests stop.
# Usage: bench/real-nodes.sh [NODES=25] [REPEAT=20] [BIN=target/release]
set -euo pipefail
NODES=${1:-25}; REPEAT=${2:-20}; BIN=${3:-target/release}
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d /tmp/fleet-real-XXXXXX); chmod 700 "$work"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hub_env=(FLEET_CONFIG_DIR="$work/hub/etc" FLEET_STATE_DIR="$work/hub/var")
env "${hub_env[@]}" "$BIN/noded" hub init --address "127.0.0.1:$port" > /dev/null
env "${hub_env[@]}" "$BIN/noded" hub > "$work/hub.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q "hub listening" "$work/hub.log" && break; sleep 0.1; done
token=$(env "${hub_env[@]}" "$BIN/noded" hub token --role node --uses "$NODES" 2> /dev/null)
for i in $(seq -w 1 "$NODES"); do
  env FLEET_CONFIG_DIR="$work/n$i/etc" FLEET_STATE_DIR="$work/n$i/var" NODED_IDENTITY="node-$i" \
    "$BIN/noded" join "$token" > "$work/n$i.log" 2>&1 & pids+=($!)
done
admin_token=$(env "${hub_env[@]}" "$BIN/noded" hub token --role console --name bench 2> /dev/null)
export HOME="$work/admin" XDG_CONFIG_HOME="$work/admin/.config"
unset FLEET_HUB FLEET_KEY FLEET_HUB_KEY FLEET_NODES_DIR FLEET_CONFIG FLEET_CALLER
"$BIN/fleet" join "$admin_token" > /dev/null
until [ "$("$BIN/fleet" ping --json 2> /dev/null | grep -c '"sender"')" -ge "$NODES" ]; do sleep 0.2; done

# Wall milliseconds of each run of a command, then min / p50 / p90 / max.
timed() {
  local label=$1; shift
  local times=()
  for _ in $(seq "$REPEAT"); do
    local t0 t1
    t0=$(date +%s%N); "$@" > /dev/null 2>&1 || true; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v n="$REPEAT" \
    '{ v[NR] = $1 } END { printf "%-28s n=%d  min %d ms  p50 %d ms  p90 %d ms  max %d ms\n", label, n, v[1], v[int((n + 1) / 2)], v[int(n * 0.9 + 0.5)], v[n] }'
}

echo "# $NODES real noded processes on one hub (127.0.0.1:$port); load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2> /dev/null || echo ?)"
timed "fleet ping" "$BIN/fleet" ping
timed "fleet pgrep noded" "$BIN/fleet" pgrep noded
timed "fleet pgrep python" "$BIN/fleet" pgrep python
sleep "${IDLE:-30}"
rss_kb=$(for p in $(pgrep -f "noded join"); do awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup"; done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
pss_kb=$(for p in $(pgrep -f "noded join"); do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"; done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "# idle noded (median of $NODES, after ${IDLE:-30} s idle): RSS $((rss_kb / 1024)).$(( (rss_kb % 1024) * 10 / 1024 )) MiB, PSS $((pss_kb / 1024)).$(( (pss_kb % 1024) * 10 / 1024 )) MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
