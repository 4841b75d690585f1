#!/usr/bin/env bash
# Multi-host test (issue 11; not run in CI, needs root and iproute2): the coordinator and two
# worker daemons each in a network namespace of its own, joined by veth pairs to a bridge, so
# the workers really are separate hosts with their own addresses (10.77.0.1 coordinator,
# 10.77.0.2 and 10.77.0.3 daemons). All namespaces share the filesystem: the "storage every
# host reaches" that file sinks need (docs/MULTINODE.md). Runs every example on the two daemons
# and compares each output (as a sorted multiset of lines) with a single-node run.
# Usage: sudo scripts/multihost_netns.sh   (builds nothing: uses target/release/flow)
# KEEP=1 leaves the namespaces, the daemons and the work directory for inspection (remove by hand).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLOW="${FLOW_BIN:-$ROOT/target/release/flow}"
[[ $(id -u) -eq 0 ]] || { echo "multihost_netns.sh: run as root (ip netns)" >&2; exit 2; }
[[ -x "$FLOW" ]] || { echo "multihost_netns.sh: no $FLOW (cargo build --release)" >&2; exit 2; }
P="flowmh$$"            # a name prefix of this run's namespaces and links
BR="${P}br"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in 1 2 3; do ip netns del "${P}n$i" 2>/dev/null || true; done
  ip link del "$BR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[[ -n "${KEEP:-}" ]] && trap - EXIT
ip link add "$BR" type bridge
ip link set "$BR" up
for i in 1 2 3; do
  ns="${P}n$i"
  ip netns add "$ns"
  ip link add "${P}v$i" type veth peer name "${P}p$i"
  ip link set "${P}p$i" netns "$ns"
  ip link set "${P}v$i" master "$BR" up
  ip -n "$ns" addr add "10.77.0.$i/24" dev "${P}p$i"
  ip -n "$ns" link set "${P}p$i" up
  ip -n "$ns" link set lo up
done
echo "a-cluster-token-$$-$RANDOM" > "$WORK/token"
chmod 600 "$WORK/token"
: > "$WORK/hosts"
for i in 2 3; do
  ip netns exec "${P}n$i" "$FLOW" worker --listen "10.77.0.$i:7000" --token-file "$WORK/token" \
    2> "$WORK/daemon$i.log" &
  PIDS+=($!)
  echo "10.77.0.$i:7000" >> "$WORK/hosts"
done
sleep 0.5
status=0
for script in "$ROOT"/examples/*.flow; do
  name="$(basename "$script")"
  for mode in single multi; do
    d="$WORK/$mode/${name%.flow}"
    mkdir -p "$d"
    cp -r "$ROOT/examples/data" "$d/"
    # The job's own mode line is replaced: one worker thread, or the two daemons.
    { if [[ $mode == multi ]]; then echo "mode multi(nodes: 2)"; fi; grep -v '^mode ' "$script"; } > "$d/$name"
    args=(-q --threads 1)
    [[ $mode == multi ]] && args+=(--hosts "$WORK/hosts" --token-file "$WORK/token")
    (cd "$d" && ip netns exec "${P}n1" "$FLOW" run "${args[@]}" "$name" > stdout.txt 2> stderr.txt) || {
      echo "FAIL $name ($mode): $(tail -3 "$d/stderr.txt")"; status=1; }
  done
  a="$WORK/single/${name%.flow}"; b="$WORK/multi/${name%.flow}"
  same=1
  # Dead-letter records name an input by the absolute path the daemons' workers opened (the
  # one known difference from single-node, which keeps the path as written): strip it.
  find "$b" -name '*.jsonl' -exec sed -i "s#$b/##g" {} +
  for f in $(cd "$a" && find . -type f ! -name stderr.txt ! -name '*.flow' ! -path './data/*' | sort); do
    if ! cmp -s <(sort "$a/$f") <(sort "$b/$f" 2>/dev/null); then
      # Float sums may differ in the last digits with the order rows were added in.
      if ! cmp -s <(sort "$a/$f" | sed -E 's/([0-9]+\.[0-9]{6})[0-9]*/\1/g') \
                  <(sort "$b/$f" | sed -E 's/([0-9]+\.[0-9]{6})[0-9]*/\1/g'); then
        echo "DIFF $name: $f"; same=0; status=1
      fi
    fi
  done
  [[ $same -eq 1 ]] && echo "ok   $name: the same rows on 2 hosts as single-node"
done
echo "daemon logs:"; cat "$WORK"/daemon*.log
exit $status
