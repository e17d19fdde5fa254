#!/usr/bin/env bash
# The hub's cost of live metrics: one `noded hub`, N simulated nodes (`noded sim`, each pushing a
# metrics sample every 5 s, the default interval) and one console following every node's stream
# (`fleet metrics --follow`), for M minutes (15 fills the hub's default history). Every 30 s it
# prints the hub's CPU use over the last interval (share of one core, from /proc/PID/stat) and its
# RSS, and the hub's own counters (metric nodes, bytes, samples); a CSV goes next to this script.
# Usage: bench/metrics-hub.sh [NODES=1000] [MINUTES=15] [BIN=target/release]
set -euo pipefail
NODES=${1:-1000}; MINUTES=${2:-15}; BIN=${3:-target/release}
BIN=$(cd "$BIN" && pwd)
. "$(dirname "$0")/lib.sh"
bench_fleet bench "$NODES"
"$BIN/fleet" metrics --follow --jsonl > "$work/follow.jsonl" 2> "$work/follow.log" & pids+=($!)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
echo "# $NODES sim nodes, metrics every 5 s, one console following all; $MINUTES min; load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2> /dev/null || echo ?)"
csv="bench/metrics-hub-$(date +%Y%m%d-%H%M).csv"; echo "t_s,hub_cpu_pct,hub_rss_mib,metric_nodes,metric_bytes,metric_samples" > "$csv"
printf '%6s %9s %9s %8s %12s %10s\n' t_s cpu_pct rss_MiB nodes bytes samples
start=$(date +%s); last=$(ticks "$hub_pid"); last_t=$start
while [ $(( $(date +%s) - start )) -lt $(( MINUTES * 60 )) ]; do
  sleep 30
  now=$(date +%s); t=$(ticks "$hub_pid")
  cpu=$(awk -v d=$((t - last)) -v s=$((now - last_t)) -v hz="$hz" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
  last=$t; last_t=$now
  stats=$("$BIN/fleet" hub-stats --json 2> /dev/null || echo '{}')
  field() { echo "$stats" | grep -o "\"$1\": *[0-9]*" | grep -o '[0-9]*$' || echo 0; }
  printf '%6d %9s %9s %8s %12s %10s\n' $((now - start)) "$cpu" "$(rss "$hub_pid")" "$(field metric_nodes)" "$(field metric_bytes)" "$(field metric_samples)"
  echo "$((now - start)),$cpu,$(rss "$hub_pid"),$(field metric_nodes),$(field metric_bytes),$(field metric_samples)" >> "$csv"
done
echo "# done; load $(cut -d' ' -f1-3 /proc/loadavg); $(wc -l < "$work/follow.jsonl") updates followed; samples in $csv"
