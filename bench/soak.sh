#!/usr/bin/env bash
# Soak: one `noded hub`, N simulated nodes (`noded sim`), and a console sending R requests per
# second (`fleet ping` through the hub, each a full signed round) for M minutes. Samples the
# hub's and the sim's RSS every 10 s and prints a table (and a CSV next to it), so memory can be
# seen to stay flat. Usage: bench/soak.sh [NODES=1000] [RATE=10] [MINUTES=10] [BIN=target/release]
set -euo pipefail
NODES=${1:-1000}; RATE=${2:-10}; MINUTES=${3:-10}; BIN=${4:-target/release}
BIN=$(cd "$BIN" && pwd)
. "$(dirname "$0")/lib.sh"
bench_fleet soak "$NODES" "heartbeat_interval = 10.0" "max_requests_per_second = 1000.0"
echo "# $NODES nodes registered on $ep; $RATE requests/s for $MINUTES min; load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
csv="bench/soak-$(date +%Y%m%d-%H%M).csv"; echo "t_s,hub_rss_mib,sim_rss_mib,rounds,incomplete" > "$csv"
printf '%6s %12s %12s %8s %11s\n' t_s hub_MiB sim_MiB rounds incomplete
: > "$work/incomplete"
rounds=0; incomplete=0; start=$(date +%s); next_sample=0
end=$(( start + MINUTES * 60 ))
# Rounds start on a fixed schedule (start + k/RATE), so the time a spawn takes does not lower the rate.
start_ns=$(date +%s%N); step_ns=$(( 1000000000 / RATE ))
while [ "$(date +%s)" -lt "$end" ]; do
  for _ in $(seq "$RATE"); do
    ( n=$("$BIN/fleet" ping --json -t 5 2>/dev/null | grep -c '"sender"' || true); [ "$n" -ge "$NODES" ] || echo x >> "$work/incomplete" ) &
    rounds=$((rounds + 1))
    wait_ns=$(( start_ns + rounds * step_ns - $(date +%s%N) ))
    [ "$wait_ns" -gt 0 ] && sleep "$(awk "BEGIN {print $wait_ns / 1e9}")"
  done
  now=$(( $(date +%s) - start ))
  if [ "$now" -ge "$next_sample" ]; then
    incomplete=$(wc -l < "$work/incomplete" 2>/dev/null || echo 0)
    printf '%6d %12s %12s %8d %11d\n' "$now" "$(rss $hub_pid)" "$(rss $sim_pid)" "$rounds" "$incomplete"
    echo "$now,$(rss $hub_pid),$(rss $sim_pid),$rounds,$incomplete" >> "$csv"
    next_sample=$(( next_sample + 10 ))
  fi
done
wait_jobs=$(jobs -p | grep -v -e "^$hub_pid$" -e "^$sim_pid$" || true); [ -n "$wait_jobs" ] && wait $wait_jobs 2>/dev/null || true
echo "# done: $rounds rounds, $(wc -l < "$work/incomplete" 2>/dev/null || echo 0) incomplete; load $(cut -d' ' -f1-3 /proc/loadavg); samples in $csv"
