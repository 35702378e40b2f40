// Sysctls of the namespace the agent runs in. A value already in place is left alone, so a
// container whose /proc/sys is read-only (Docker mounts it so) works when the container was started
// with the value set (docker-compose.yml's `sysctls:`).

import { readFileSync, writeFileSync } from "node:fs";

export function ensureSysctl(key: string, value: string): void {
  const file = `/proc/sys/${key.replaceAll(".", "/")}`;
  try {
    if (readFileSync(file, "utf8").trim() === value) return;
    writeFileSync(file, value);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? " (is the br_netfilter module loaded?)"
        : code === "EROFS"
          ? ` (/proc/sys is read-only here: start the container with the sysctl ${key}=${value})`
          : "";
    throw new Error(`cannot set ${key}=${value}: ${(e as Error).message}${why}`);
  }
}
