// host-gw mode: pod traffic between nodes is routed via the peer's underlay address with no
// encapsulation; and podCIDR exhaustion on a node with a tiny range shows on the pod, not as a crash.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPod,
  downAndCheck,
  type LocalCluster,
  leftovers,
  netexecPod,
  ok,
  upLocalCluster,
} from "./kit.ts";

describe("local cluster, host-gw overlay, /29 node ranges", () => {
  let c: LocalCluster;
  let other: LocalCluster | undefined;

  beforeAll(async () => {
    // Two clusters started at the same moment must not collide (names, underlays, host ports).
    // A /29 per node: the bridge takes .1, host-local hands out .2 to .6, five pods per node.
    const ups = await Promise.allSettled([
      upLocalCluster("th", ["--nodes", "2", "--overlay", "host-gw", "--node-cidr-mask-size", "29"]),
      upLocalCluster("to", ["--nodes", "1"]),
    ]);
    if (ups[0].status === "fulfilled") c = ups[0].value;
    if (ups[1].status === "fulfilled") other = ups[1].value;
    const failed = ups.find((u) => u.status === "rejected");
    if (failed) {
      await Promise.all([c?.down(), other?.down()]);
      throw (failed as PromiseRejectedResult).reason;
    }
  }, 120_000);

  afterAll(async () => {
    if (other) await other.down();
    await downAndCheck(c);
  }, 60_000);

  it("runs beside another cluster, and one's kemu down leaves the other untouched", async () => {
    const o = other!;
    expect(o.plan().api.hostPort).not.toBe(c.plan().api.hostPort);
    expect(o.plan().underlay.netns).not.toBe(c.plan().underlay.netns);
    expect((await o.k(["get", "nodes", "-o", "name"])).trim()).toBe("node/node-1");
    expect((await c.k(["get", "nodes", "-o", "name"])).trim().split("\n")).toEqual([
      "node/node-1",
      "node/node-2",
    ]);
    const { name, dataDir } = o;
    const otherLink = o.plan().loadBalancer.hostInterface;
    const r = await o.down();
    other = undefined;
    expect(r.code, r.stderr).toBe(0);
    expect(await leftovers(name, dataDir, [otherLink])).toEqual([]);
    expect((await c.k(["get", "nodes"])).match(/ Ready /g)).toHaveLength(2);
  });

  it("routes pod traffic between nodes unencapsulated via the peer's underlay address", async () => {
    await c.k(
      ["apply", "-f", "-"],
      [netexecPod("web", "node-2"), clientPod("client", "node-1")].join("---\n"),
    );
    const web = await c.waitPod("web");
    const client = await c.waitPod("client");
    const node2 = JSON.parse(await c.k(["get", "node", "node-2", "-o", "json"]));
    const node2IP = node2.status.addresses.find((a: any) => a.type === "InternalIP").address;
    const ns1 = `kemu-${c.name}-node-1`;
    const route = JSON.parse(await ok(["ip", "-n", ns1, "-j", "route", "show", node2.spec.podCIDR]));
    expect(route[0]).toMatchObject({ dst: node2.spec.podCIDR, gateway: node2IP, dev: "eth0" });
    const links = JSON.parse(await ok(["ip", "-n", ns1, "-j", "link", "show"])).map((l: any) => l.ifname);
    expect(links).not.toContain("kemu.1");

    const cap = c.background(["ip", "netns", "exec", ns1, "tcpdump", "-lni", "eth0", "-c", "2", "icmp"]);
    await new Promise((r) => setTimeout(r, 800));
    const ping = await c.k(["exec", "client", "--", "ping", "-c", "2", "-W", "2", web.status.podIP]);
    expect(ping).toContain("2 packets received");
    const out = await cap.stop();
    expect(out).toContain(`${client.status.podIP} > ${web.status.podIP}: ICMP echo request`);
    const clientip = await c.fetch("client", `http://${web.status.podIP}:8080/clientip`);
    expect(clientip.split(":")[0]).toBe(client.status.podIP);
  });

  it("shows podCIDR exhaustion as an event and a waiting reason", async () => {
    // A /29 holds five pods. Count what node-2 already runs (web, maybe cluster DNS), fill the rest,
    // and one more finds the range empty.
    await expect
      .poll(
        async () =>
          JSON.parse(await c.k(["get", "pods", "-A", "-o", "json"])).items.every((p: any) => p.status?.podIP),
        {
          timeout: 30_000,
        },
      )
      .toBe(true);
    const used = JSON.parse(await c.k(["get", "pods", "-A", "-o", "json"])).items.filter(
      (p: any) => p.spec.nodeName === "node-2",
    ).length;
    const n = 5 - used + 1;
    const names = Array.from({ length: n }, (_, i) => `fill-${i + 1}`);
    await c.k(["apply", "-f", "-"], names.map((name) => clientPod(name, "node-2")).join("---\n"));
    const all = () => Promise.all(names.map((name) => c.pod(name)));
    const waitingMessage = (p: any) => p.status?.containerStatuses?.[0]?.state?.waiting?.message ?? "";
    await expect
      .poll(async () => (await all()).filter((p) => p.status?.podIP || waitingMessage(p)).length, {
        timeout: 30_000,
      })
      .toBe(n);
    const states = await all();
    const starved = states.filter((p) => !p.status?.podIP);
    expect(starved).toHaveLength(1);
    const waiting = starved[0].status.containerStatuses?.[0]?.state?.waiting;
    expect(waiting.reason).toBe("ContainerCreating");
    expect(waiting.message).toContain(
      "failed to allocate for range 0: no IP addresses available in range set",
    );
    const name = starved[0].metadata.name;
    await expect
      .poll(
        async () =>
          (await c.kubectl(["get", "events", "--field-selector", `involvedObject.name=${name}`])).stdout,
        {
          timeout: 10_000,
        },
      )
      .toMatch(/FailedCreatePodSandBox.*no IP addresses available in range set/);
    // Freeing an address lets the starved pod start: the agent retries the sandbox.
    const running = states.find((p) => p.status?.podIP)!;
    await c.k(["delete", "pod", running.metadata.name]);
    await c.waitPod(name, undefined, 30_000);
  });
});
