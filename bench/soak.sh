#!/usr/bin/env bash
# Soak: one `noded hub`, N simulated nodes (`noded sim`), and a console sending R requests per
# second (`fleet ping` through the hub, each a full signed round) for M minutes. Samples the
# hub's and the sim's RSS every 10 s and prints a table (and a CSV next to it), so memory can be
# seen to stay flat. Usage: bench/soak.sh [NODES=1000] [RATE=10] [MINUTES=10] [BIN=target/release]
set -euo pipefail
NODES=${1:-1000}; RATE=${2:-10}; MINUTES=${3:-10}; BIN=${4:-target/release}
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d /tmp/fleet-soak-XXXXXX); chmod 700 "$work"
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
pids=(); trap cleanup EXIT

# Keys: the hub's, the console's (enrolled as a console, trusted as a caller), a policy for rpcutil.
"$BIN/noded" keygen --out "$work/hub.key" >/dev/null
mkdir -p "$work/keys" "$work/callers" "$work/policies" "$work/enroll"; chmod 700 "$work/enroll"
XDG_CONFIG_HOME="$work/xdg" "$BIN/fleet" keygen soak --dir "$work/keys" >/dev/null
cp "$work/keys/soak.pub" "$work/callers/soak.pub"
printf 'policy default deny\nallow\tsoak\t*\t*\t*\n' > "$work/policies/rpcutil.policy"
"$BIN/noded" hub --enroll-dir "$work/enroll" enroll --add soak "$work/keys/soak.pub" --role console >/dev/null

cat > "$work/noded.toml" <<TOML
hub_key = "$work/hub.pub"
callers_dir = "$work/callers"
policy_dir = "$work/policies"
audit_log = "$work/audit.log"
heartbeat_interval = 10.0
[hub]
key_file = "$work/hub.key"
enroll_dir = "$work/enroll"
callers_dir = "$work/callers"
audit_log = "$work/hub-audit.log"
max_requests_per_second = 1000.0
TOML
"$BIN/noded" --config "$work/noded.toml" hub --hub tcp://127.0.0.1:0 > "$work/hub.out" 2> "$work/hub.log" & pids+=($!); hub_pid=$!
ep=""
for _ in $(seq 100); do ep=$(grep -o 'hub listening on tcp://[0-9.:]*' "$work/hub.out" | awk '{print $4}' || true); [ -n "$ep" ] && break; sleep 0.1; done
[ -n "$ep" ] || { echo "the hub did not start:"; cat "$work/hub.log"; exit 1; }
"$BIN/noded" --config "$work/noded.toml" sim --nodes "$NODES" --hub "$ep" --enroll-into "$work/enroll" 2> "$work/sim.log" & pids+=($!); sim_pid=$!

export XDG_CONFIG_HOME="$work/xdg" FLEET_KEY="$work/keys/soak.key" FLEET_HUB_KEY="$work/hub.pub" FLEET_HUB="$ep"
until [ "$("$BIN/fleet" discover --json 2>/dev/null | grep -c '"')" -ge "$NODES" ]; do sleep 1; done
echo "# $NODES nodes registered on $ep; $RATE requests/s for $MINUTES min; load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
csv="bench/soak-$(date +%Y%m%d-%H%M).csv"; echo "t_s,hub_rss_mib,sim_rss_mib,rounds,incomplete" > "$csv"
printf '%6s %12s %12s %8s %11s\n' t_s hub_MiB sim_MiB rounds incomplete
: > "$work/incomplete"
rounds=0; incomplete=0; start=$(date +%s); next_sample=0
end=$(( start + MINUTES * 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
  for _ in $(seq "$RATE"); do
    ( n=$("$BIN/fleet" ping --json -t 5 2>/dev/null | grep -c '"sender"' || true); [ "$n" -ge "$NODES" ] || echo x >> "$work/incomplete" ) &
    sleep "$(awk "BEGIN {print 1/$RATE}")"
    rounds=$((rounds + 1))
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
