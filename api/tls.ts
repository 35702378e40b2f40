// Serving certificates: a cluster CA made once and kept in the data dir, and a serving certificate
// signed by it on every start (so its SANs follow the listen address). kubectl only sends bearer
// tokens over TLS, so the API is always served over HTTPS; the CA goes into the kubeconfig.

import { webcrypto } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

// The library types its provider with the DOM's Crypto; Node's webcrypto is the same API.
x509.cryptoProvider.set(webcrypto as any);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY = 86_400_000;

export interface ServingCert {
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function keyPem(key: Key): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

async function loadOrCreateCa(dataDir: string): Promise<{ cert: x509.X509Certificate; key: Key }> {
  const certFile = join(dataDir, "ca.crt");
  const keyFile = join(dataDir, "ca.key");
  if (existsSync(certFile) && existsSync(keyFile)) {
    const cert = new x509.X509Certificate(readFileSync(certFile, "utf8"));
    const der = x509.PemConverter.decodeFirst(readFileSync(keyFile, "utf8"));
    const key = await webcrypto.subtle.importKey("pkcs8", der, ALG, true, ["sign"]);
    return { cert, key };
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as KeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16),
    name: "CN=kemu-ca",
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: ALG,
    keys: keys as any,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as any),
    ],
  });
  writeFileSync(keyFile, await keyPem(keys.privateKey), { mode: 0o600 });
  writeFileSync(certFile, cert.toString("pem"));
  return { cert, key: keys.privateKey };
}

/** Names the serving certificate covers: loopback, the listen host, and every local address for wildcards. */
export function servingNames(host: string, extra: string[] = []): string[] {
  const names = new Set(["localhost", "127.0.0.1", "::1", ...extra]);
  if (host === "0.0.0.0" || host === "::") {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  } else {
    names.add(host);
  }
  return [...names];
}

export async function servingCert(dataDir: string, names: string[]): Promise<ServingCert> {
  const ca = await loadOrCreateCa(dataDir);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as KeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: now.toString(16),
    subject: "CN=kemu-apiserver",
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey as any,
    signingKey: ca.key as any,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) =>
          isIP(n.split("%")[0]) ? { type: "ip", value: n.split("%")[0] } : { type: "dns", value: n },
        ),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return {
    caPem: ca.cert.toString("pem"),
    certPem: cert.toString("pem"),
    keyPem: await keyPem(keys.privateKey),
  };
}
