#!/bin/sh
# Entry point of kemu's containers (docker-compose.yml):
#   entrypoint.sh api [kemu api flags]    the control plane
#   entrypoint.sh node [kemu agent flags] a node: waits for the control plane's published
#                                         credentials, then runs the agent named after its hostname
# Both first drop the default route Docker gives even on internal networks, so nothing in the
# cluster routes towards the host's uplink. Node settings come from the environment:
#   KEMU_API          control plane URL (default https://control-plane:6443)
#   KEMU_CLUSTER_DIR  where the control plane publishes token and ca.crt (default /var/lib/kemu/cluster)
#   KEMU_PROXY_MODE   iptables (default) or nftables
#   KEMU_NODE_LEASE   seconds of the node's Lease (default 40; renewed every quarter of it)
set -eu
role="${1:-}"
[ "$#" -gt 0 ] && shift
ip route del default 2>/dev/null || true

case "$role" in
api)
  exec kemu api "$@"
  ;;
node)
  dir="${KEMU_CLUSTER_DIR:-/var/lib/kemu/cluster}"
  i=0
  until [ -s "$dir/token" ] && [ -s "$dir/ca.crt" ]; do
    i=$((i + 1))
    [ "$i" -le 600 ] || { echo "node: no credentials in $dir after 60s; is the control plane up?" >&2; exit 1; }
    sleep 0.1
  done
  # Pods reaching underlay addresses (the control plane) leave as the node: Docker's host rules
  # drop frames on an internal network whose source is outside its subnet.
  underlay=$(ip -o -4 addr show dev eth0 | awk '{print $4; exit}')
  exec kemu agent \
    --api "${KEMU_API:-https://control-plane:6443}" \
    --token-file "$dir/token" --ca-file "$dir/ca.crt" \
    --node "$(hostname)" --data-dir /var/lib/kemu/node \
    --proxy-mode "${KEMU_PROXY_MODE:-iptables}" \
    --node-lease-duration "${KEMU_NODE_LEASE:-40}" \
    --masquerade-to "$underlay" \
    "$@"
  ;;
*)
  echo "usage: entrypoint.sh api|node [flags]" >&2
  exit 2
  ;;
esac
