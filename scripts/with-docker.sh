#!/usr/bin/env bash
# Runs a command with a Docker engine and the kemu image at hand, as the Docker-mode tests and
# `npm run bench:compose` need:
#   scripts/with-docker.sh npm test
# Starts dockerd when no engine answers (and stops it again, by pid, when the command ends), then
# builds the images with `npm run images -- --offline` (no image registry needed; docker's build
# cache makes an unchanged rebuild take seconds). KEMU_IMAGES_FLAGS replaces --offline.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

dockerd_pid=""
stop_dockerd() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap stop_dockerd EXIT

if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { echo "$0: dockerd is missing (apt-get install docker.io)" >&2; exit 1; }
  mkdir -p build
  dockerd >build/dockerd.log 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 100); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { echo "$0: dockerd exited; see build/dockerd.log" >&2; tail -20 build/dockerd.log >&2; exit 1; }
    sleep 0.3
  done
  docker info >/dev/null 2>&1 || { echo "$0: dockerd did not answer in 30s" >&2; exit 1; }
fi

# shellcheck disable=SC2086
npm run images -- ${KEMU_IMAGES_FLAGS---offline}
"$@"
