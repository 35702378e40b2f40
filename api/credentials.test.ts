import { chownSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { publishCredentials } from "./credentials.ts";

describe("publishCredentials", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("writes token, CA and a kubeconfig for the given server, private to the directory's owner", () => {
    const dir = mkdtempSync(join(tmpdir(), "kemu-publish-"));
    dirs.push(dir);
    // A user's checkout: the directory belongs to someone else than the control plane's root.
    chownSync(dir, 65534, 65534);
    publishCredentials(dir, "https://127.0.0.1:7443", "tok", "-----BEGIN CERTIFICATE-----\n", "kemu");
    for (const f of ["token", "ca.crt", "kubeconfig"]) {
      const st = statSync(join(dir, f));
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o600]);
    }
    expect(readFileSync(join(dir, "token"), "utf8")).toBe("tok\n");
    const kc = parse(readFileSync(join(dir, "kubeconfig"), "utf8"));
    expect(kc.clusters[0].cluster.server).toBe("https://127.0.0.1:7443");
    expect(kc.users[0].user.token).toBe("tok");
  });
});
