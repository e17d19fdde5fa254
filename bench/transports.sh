#!/usr/bin/env bash
# `fleet bench ping` over the ZeroMQ hub and over a 3-server NATS cluster, side by side, at each
# node count given (default 1000 5000 10000): p50/p99 per round, the hub's or the registry's CPU,
# the console's CPU per reply, the nats-servers' RSS per node. Every figure is printed with the
# commit and the load average. Needs nats-server (apt-get install nats-server).
# Usage: bench/transports.sh [N...]   (ROUNDS=20, BIN=target/release)
set -uo pipefail
ROUNDS=${ROUNDS:-20}; BIN=${BIN:-target/release}
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1000 5000 10000)
ulimit -n "$(ulimit -Hn)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, open files $(ulimit -n), load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${counts[@]}"; do
  for t in zeromq nats; do
    echo "== $n nodes, $t"
    "$BIN/fleet" bench ping --nodes "$n" --rounds "$ROUNDS" --transport "$t" 2>&1 \
      | grep -v -e 'WARN' -e '^registry on' || echo "   (failed: exit ${PIPESTATUS[0]})"
  done
done
