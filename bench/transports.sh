#!/usr/bin/env bash
# `fleet bench ping` over the ZeroMQ hub and over a 3-server NATS cluster, side by side, at each
# node count given (default 1000 5000 10000): p50/p99 per round, the hub's or the registry's CPU,
# the console's CPU per reply, the nats-servers' RSS per node. Every figure is printed with the
# commit and the load average. Needs nats-server (apt-get install nats-server).
# The nodes run in `noded sim` processes of PER_PROCESS nodes each, so the benchmark process holds
# only the console and the hub (or the registry). After the largest count, the same count once more
# over three one-server NATS cells joined by gateways (docs/scale.md).
# Usage: bench/transports.sh [N...]   (ROUNDS=20, PER_PROCESS=2500, BIN=target/release)
set -uo pipefail
ROUNDS=${ROUNDS:-20}; PER_PROCESS=${PER_PROCESS:-2500}; BIN=${BIN:-target/release}
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1000 5000 10000)
ulimit -n "$(ulimit -Hn)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, open files $(ulimit -n), load $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
  echo "== $*"
  "$BIN/fleet" bench ping --rounds "$ROUNDS" --per-process "$PER_PROCESS" "$@" 2>&1 \
    | grep -v -e 'WARN' -e 'ERROR' -e '^registry on' -e '^open-files'
  [ "${PIPESTATUS[0]}" -eq 0 ] || echo "   (failed: exit ${PIPESTATUS[0]})"
}
for n in "${counts[@]}"; do
  for t in zeromq nats; do run --nodes "$n" --transport "$t"; done
done
run --nodes "${counts[-1]}" --transport nats --cells
