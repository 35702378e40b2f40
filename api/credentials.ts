// The admin bearer token (made once, kept in the data dir) and the kubeconfig that points kubectl
// at this control plane.

import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";

export function loadOrCreateToken(dataDir: string): string {
  const file = join(dataDir, "token");
  if (existsSync(file)) {
    const token = readFileSync(file, "utf8").trim();
    if (token) return token;
  }
  const token = randomBytes(32).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

export function kubeconfig(server: string, token: string, caPem: string, name = "kemu"): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name, cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") } },
    ],
    users: [{ name: `${name}-admin`, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: "default" } }],
    "current-context": name,
    preferences: {},
  });
}

export function writeKubeconfig(
  dataDir: string,
  server: string,
  token: string,
  caPem: string,
  name = "kemu",
): string {
  const file = join(dataDir, "kubeconfig");
  writeFileSync(file, kubeconfig(server, token, caPem, name), { mode: 0o600 });
  return file;
}

/**
 * Writes what nodes and the host need to reach this control plane into `dir` (a directory shared
 * with them in Docker mode): token, ca.crt and kubeconfig, owned by the directory's owner and
 * readable by it alone. Each file is replaced by rename, so a reader never sees half of one.
 */
export function publishCredentials(
  dir: string,
  server: string,
  token: string,
  caPem: string,
  name = "kemu",
): void {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ["token", `${token}\n`],
    ["ca.crt", caPem],
    ["kubeconfig", kubeconfig(server, token, caPem, name)],
  ];
  // The files belong to whoever owns the directory (a user's checkout holds .kemu/), so kubectl
  // run by that user on the host can read them.
  const owner = statSync(dir);
  for (const [file, text] of files) {
    const tmp = join(dir, `.${file}.tmp`);
    writeFileSync(tmp, text, { mode: 0o600 });
    if (owner.uid !== process.getuid?.()) chownSync(tmp, owner.uid, owner.gid);
    renameSync(tmp, join(dir, file));
  }
}
