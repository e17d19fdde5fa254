# Sourced by the bench scripts. `bench_fleet NAME NODES [NODE_TOML] [HUB_TOML]` starts, in a private
# temp dir, a real `noded hub` and `noded sim --nodes NODES` against it (release binaries in $BIN),
# with a console key NAME enrolled on the hub as a console, trusted by the nodes and allowed rpcutil,
# and waits until every node is registered. Extra lines go into the node part and the [hub] table of
# the shared noded.toml. It sets `work`, `hub_pid`, `sim_pid` and `ep`, exports what a `fleet`
# command needs to reach the hub, and kills what it started on exit (KEEP=1 keeps the dir).
bench_fleet() {
  local name=$1 nodes=$2 node_toml=${3:-} hub_toml=${4:-}
  work=$(mktemp -d "/tmp/fleet-bench-XXXXXX"); chmod 700 "$work"
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

  "$BIN/noded" keygen --out "$work/hub.key" > /dev/null
  mkdir -p "$work/keys" "$work/callers" "$work/policies" "$work/enroll"; chmod 700 "$work/enroll"
  XDG_CONFIG_HOME="$work/xdg" "$BIN/fleet" keygen "$name" --dir "$work/keys" > /dev/null
  cp "$work/keys/$name.pub" "$work/callers/$name.pub"
  printf 'policy default deny\nallow\t%s\t*\t*\t*\n' "$name" > "$work/policies/rpcutil.policy"
  "$BIN/noded" hub --enroll-dir "$work/enroll" enroll --add "$name" "$work/keys/$name.pub" --role console > /dev/null
  cat > "$work/noded.toml" <<TOML
hub_key = "$work/hub.pub"
callers_dir = "$work/callers"
policy_dir = "$work/policies"
audit_log = "$work/audit.log"
state_dir = "$work/state"
$node_toml
[hub]
key_file = "$work/hub.key"
enroll_dir = "$work/enroll"
callers_dir = "$work/callers"
audit_log = "$work/hub-audit.log"
$hub_toml
TOML
  "$BIN/noded" --config "$work/noded.toml" hub --hub tcp://127.0.0.1:0 > "$work/hub.out" 2> "$work/hub.log" & pids+=($!); hub_pid=$!
  ep=""
  for _ in $(seq 100); do ep=$(grep -o 'hub listening on tcp://[0-9.:]*' "$work/hub.out" | awk '{print $4}' || true); [ -n "$ep" ] && break; sleep 0.1; done
  [ -n "$ep" ] || { echo "the hub did not start:"; cat "$work/hub.log"; exit 1; }
  "$BIN/noded" --config "$work/noded.toml" sim --nodes "$nodes" --hub "$ep" --enroll-into "$work/enroll" 2> "$work/sim.log" & pids+=($!); sim_pid=$!
  export XDG_CONFIG_HOME="$work/xdg" FLEET_KEY="$work/keys/$name.key" FLEET_HUB_KEY="$work/hub.pub" FLEET_HUB="$ep"
  until [ "$("$BIN/fleet" discover --json 2> /dev/null | grep -c '"')" -ge "$nodes" ]; do sleep 1; done
}
