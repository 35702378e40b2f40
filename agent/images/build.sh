#!/usr/bin/env bash
# Builds the programs behind kemu's image catalog (agent/images/catalog.ts) into OUTDIR:
#   OUTDIR/agnhost        agnhost.c compiled with gcc (no libraries beyond libc)
#   OUTDIR/busybox/bin/   one symlink per applet of /bin/busybox (the "busybox" image's PATH)
#   OUTDIR/kemu-init      agent/runtime/kemu-init.c: the container shim and init the agent starts
#   OUTDIR/kemu-exec      agent/kemu-exec.c: the helper that runs the agent's commands
# Idempotent: re-running rebuilds agnhost and refreshes the applet links.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
busybox="${BUSYBOX:-/bin/busybox}"

command -v gcc >/dev/null || { echo "$0: gcc is required (apt-get install gcc)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "$0: $busybox is missing (apt-get install busybox)" >&2; exit 1; }

mkdir -p -- "$out/busybox/bin"

# Compile to a temporary name first so a running program is never overwritten in place.
tmp="$out/.build.$$"
trap 'rm -f -- "$tmp"' EXIT
gcc -O2 -Wall -Wextra -o "$tmp" "$here/agnhost.c"
mv -f -- "$tmp" "$out/agnhost"
gcc -O2 -Wall -Wextra -o "$tmp" "$here/../runtime/kemu-init.c"
mv -f -- "$tmp" "$out/kemu-init"
gcc -O2 -Wall -Wextra -o "$tmp" "$here/../kemu-exec.c"
mv -f -- "$tmp" "$out/kemu-exec"

# Applet links: /bin/busybox --list prints one applet name per line.
bin="$out/busybox/bin"
mapfile -t applets < <("$busybox" --list)
[ "${#applets[@]}" -gt 0 ] || { echo "$0: $busybox --list printed no applets" >&2; exit 1; }
for applet in "${applets[@]}"; do
  case "$applet" in
    "" | */* | . | ..) continue ;;
  esac
  ln -sfn -- "$busybox" "$bin/$applet"
done
# Drop links for applets this busybox no longer has.
declare -A known=()
for applet in "${applets[@]}"; do known["$applet"]=1; done
for link in "$bin"/*; do
  [ -L "$link" ] || continue
  name="${link##*/}"
  [ -n "${known[$name]:-}" ] || rm -f -- "$link"
done

echo "built $out/agnhost, $out/kemu-init, $out/kemu-exec and ${#applets[@]} busybox applet links in $bin"
