#!/usr/bin/env bash
# Installs whatever kemu needs that is missing on a Debian/Ubuntu machine (run as root):
# the Debian packages below, then the npm packages (including the pinned Node 24) via `npm ci`.
# Safe to run repeatedly; it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
# command -> Debian package that provides it
while read -r cmd pkg; do
  have "$cmd" || need_apt+=("$pkg")
done <<'LIST'
node nodejs
npm npm
kubectl kubernetes-client
ip iproute2
bridge iproute2
iptables iptables
nft nftables
tcpdump tcpdump
conntrack conntrack
busybox busybox
nginx nginx-light
gcc gcc
python3 python3
nsenter util-linux
openssl openssl
ping iputils-ping
dig dnsutils
dnsperf dnsperf
mn mininet
brctl bridge-utils
/usr/lib/cni/bridge containernetworking-plugins
curl curl
dockerd docker.io
debootstrap debootstrap
LIST
# Compose: v2's plugin or Debian's docker-compose 1.29.
docker compose version >/dev/null 2>&1 || have docker-compose || need_apt+=(docker-compose)

if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${need_apt[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -x node_modules/node/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The programs behind kemu's image catalog (agnhost in C, busybox applet links) and the
# container init (kemu-init).
if [ ! -x build/images/agnhost ] || [ ! -x build/images/kemu-init ] ||
  [ agent/images/agnhost.c -nt build/images/agnhost ] || [ agent/runtime/kemu-init.c -nt build/images/kemu-init ]; then
  agent/images/build.sh build/images
fi
