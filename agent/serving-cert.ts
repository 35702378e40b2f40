// The agent's serving certificate for its kubelet-style API: self-signed, as a kubelet's is by
// default (the control plane authenticates to it with the cluster token and does not verify it).
// Made once per node data dir by the openssl command, which keeps an X.509 library out of every
// agent process.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { run } from "./exec.ts";

export interface ServingCert {
  certPem: string;
  keyPem: string;
}

/** subjectAltName for the names: IP:... for addresses, DNS:... for the rest. */
export function subjectAltName(names: readonly string[]): string {
  return names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
}

/** Reuses DIR/kubelet.{crt,key} when they exist for the same names, else makes a new pair. */
export async function agentServingCert(dir: string, names: readonly string[]): Promise<ServingCert> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = join(dir, "kubelet.crt");
  const key = join(dir, "kubelet.key");
  const namesFile = join(dir, "kubelet.names");
  const san = subjectAltName(names);
  const current = existsSync(namesFile) ? readFileSync(namesFile, "utf8") : "";
  if (!existsSync(cert) || !existsSync(key) || current !== san) {
    await run([
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "365",
      "-subj",
      `/CN=${names.find((n) => !isIP(n)) ?? "kemu-node"}`,
      "-addext",
      `subjectAltName=${san}`,
      "-keyout",
      key,
      "-out",
      cert,
    ]);
    writeFileSync(namesFile, san);
  }
  return { certPem: readFileSync(cert, "utf8"), keyPem: readFileSync(key, "utf8") };
}
