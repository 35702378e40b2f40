import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness.ts";

describe("control plane smoke", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster();
  });
  afterAll(async () => {
    await c?.close();
  });

  it("serves namespaces over HTTPS with the token and refuses without it", async () => {
    const ok = await c.request("GET", "/api/v1/namespaces");
    expect(ok.status).toBe(200);
    expect(ok.json.items.map((n: any) => n.metadata.name)).toContain("kube-system");
    const denied = await c.request("GET", "/api/v1/namespaces", { token: null });
    expect(denied.status).toBe(401);
    expect(denied.json.reason).toBe("Unauthorized");
  });
});
