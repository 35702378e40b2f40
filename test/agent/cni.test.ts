// The CNI layer against Debian's real plugins (/usr/lib/cni) in real namespaces: one namespace
// plays the node (the plugins run inside it, so its bridge, iptables and sysctls are its own) and
// a few play pods. Nothing is routed out of these namespaces; all of them are deleted at the end.

import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cni, CniError, type CniPod } from "../../agent/cni/cni.ts";
import { podNetworkConflist } from "../../agent/cni/conflist.ts";
import { run, runJson } from "../../agent/exec.ts";

const BIN_DIR = "/usr/lib/cni";
const id = randomBytes(3).toString("hex");
const prefix = `kemu-t-cni-${id}`;
const nodeNs = `${prefix}-node`;
const created: string[] = [];
let tmp = "";

async function addNetns(name: string): Promise<string> {
  await run(["ip", "netns", "add", name]);
  created.push(name);
  return name;
}

async function delNetns(name: string): Promise<void> {
  await run(["ip", "netns", "del", name], { allowFail: true });
  const i = created.indexOf(name);
  if (i >= 0) created.splice(i, 1);
}

function pod(name: string, extra: Partial<CniPod> = {}): CniPod {
  const ns = `${prefix}-${name}`;
  return {
    containerId: `${id}-${name}-0000`,
    netnsPath: `/run/netns/${ns}`,
    ifName: "eth0",
    k8s: { namespace: "default", name, uid: `${id}-${name}-0000` },
    ...extra,
  };
}

async function podNs(name: string): Promise<CniPod> {
  await addNetns(`${prefix}-${name}`);
  return pod(name);
}

interface IpLink {
  ifname: string;
  mtu: number;
  operstate: string;
  flags: string[];
}
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

describe("Cni with the real plugins (needs root)", () => {
  let cni: Cni;
  let ipamDir: string;
  let cacheDir: string;

  beforeAll(async () => {
    if (!existsSync(join(BIN_DIR, "bridge"))) {
      throw new Error(`${BIN_DIR}/bridge is missing: apt-get install -y containernetworking-plugins`);
    }
    tmp = mkdtempSync(join(tmpdir(), "kemu-cni-test-"));
    ipamDir = join(tmp, "ipam");
    cacheDir = join(tmp, "cache");
    await addNetns(nodeNs);
    await run(["ip", "link", "set", "lo", "up"], { netns: nodeNs });
    cni = new Cni({
      confDir: join(tmp, "net.d"),
      cacheDir,
      binDir: BIN_DIR,
      netns: nodeNs,
      conflist: podNetworkConflist({
        name: "kemu",
        bridge: "cni0",
        podCIDR: "10.244.1.0/24",
        mtu: 1450,
        dataDir: ipamDir,
        hairpin: true,
      }),
    });
  });

  afterAll(async () => {
    for (const name of [...created].reverse()) await delNetns(name);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("writes the conflist", async () => {
    const path = await cni.writeConfig();
    expect(path).toBe(join(tmp, "net.d", "10-kemu.conflist"));
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(cni.options.conflist);
  });

  it("attaches two pods that reach each other, checks and detaches them idempotently", async () => {
    const a = await podNs("a");
    const b = await podNs("b");
    const ra = await cni.add(a);
    const rb = await cni.add(b);

    for (const r of [ra, rb]) {
      expect(r.podIP).toMatch(/^10\.244\.1\.\d+$/);
      expect(r.prefixLength).toBe(24);
      expect(r.gateway).toBe("10.244.1.1");
      expect(r.result.cniVersion).toBe("1.0.0");
      expect(r.loopback.cniVersion).toBe("1.0.0");
    }
    expect(ra.podIP).not.toBe(rb.podIP);
    expect(ra.podIPs).toEqual([ra.podIP]);

    // Pod side: eth0 with the overlay MTU and the address; loopback up; default via the gateway.
    for (const [p, r] of [
      [a, ra],
      [b, rb],
    ] as const) {
      const ns = p.netnsPath.split("/").pop() as string;
      const [eth0] = await runJson<IpLink[]>(["ip", "-j", "link", "show", "eth0"], { netns: ns });
      expect(eth0.mtu).toBe(1450);
      const addrs = await runJson<IpAddr[]>(["ip", "-j", "-4", "addr", "show", "eth0"], { netns: ns });
      expect(addrs[0].addr_info.map((x) => `${x.local}/${x.prefixlen}`)).toEqual([`${r.podIP}/24`]);
      const [lo] = await runJson<IpLink[]>(["ip", "-j", "link", "show", "lo"], { netns: ns });
      expect(lo.flags).toContain("UP");
      const { stdout: routes } = await run(["ip", "-4", "route", "show", "default"], { netns: ns });
      expect(routes).toContain("default via 10.244.1.1 dev eth0");
    }

    // Node side: the bridge with the gateway address, MTU, and both veths attached.
    const [br] = await runJson<IpAddr[]>(["ip", "-j", "-4", "addr", "show", "cni0"], { netns: nodeNs });
    expect(br.addr_info.map((x) => `${x.local}/${x.prefixlen}`)).toEqual(["10.244.1.1/24"]);
    const [brLink] = await runJson<IpLink[]>(["ip", "-j", "link", "show", "cni0"], { netns: nodeNs });
    expect(brLink.mtu).toBe(1450);
    const ports = await runJson<IpLink[]>(["ip", "-j", "link", "show", "master", "cni0"], { netns: nodeNs });
    expect(ports).toHaveLength(2);

    // host-local leases and the libcni-style cache.
    expect(readFileSync(join(ipamDir, "kemu", ra.podIP), "utf8")).toContain(a.containerId);
    expect(readdirSync(join(cacheDir, "results")).sort()).toEqual(
      [
        `cni-loopback-${a.containerId}-lo`,
        `cni-loopback-${b.containerId}-lo`,
        `kemu-${a.containerId}-eth0`,
        `kemu-${b.containerId}-eth0`,
      ].sort(),
    );
    expect(cni.cachedResult(a.containerId)).toEqual(ra.result);

    // Pod to pod over the bridge, and a pod to the gateway.
    await ping(`${prefix}-a`, rb.podIP);
    await ping(`${prefix}-b`, ra.podIP);
    await ping(`${prefix}-a`, "10.244.1.1");

    await cni.check(a);
    await cni.check(b);

    await cni.del(a);
    expect(existsSync(join(ipamDir, "kemu", ra.podIP))).toBe(false);
    const eth0 = await run(["ip", "link", "show", "eth0"], { netns: `${prefix}-a`, allowFail: true });
    expect(eth0.code).not.toBe(0);
    expect(
      await runJson<IpLink[]>(["ip", "-j", "link", "show", "master", "cni0"], { netns: nodeNs }),
    ).toHaveLength(1);
    expect(existsSync(join(cacheDir, "results", `kemu-${a.containerId}-eth0`))).toBe(false);
    expect(existsSync(join(cacheDir, "results", `cni-loopback-${a.containerId}-lo`))).toBe(false);
    await cni.del(a); // again: nothing left, still fine
    await expect(cni.check(a)).rejects.toThrow(/no cached result/);

    // DEL after the pod's namespace is gone releases the lease and succeeds, twice.
    await delNetns(`${prefix}-b`);
    await cni.del(b);
    await cni.del(b);
    expect(existsSync(join(ipamDir, "kemu", rb.podIP))).toBe(false);
  });

  it("passes port mappings to portmap as runtimeConfig and removes them on DEL", async () => {
    const c = await podNs("c");
    c.portMappings = [{ hostPort: 18080, containerPort: 80, protocol: "tcp", hostIP: "" }];
    const r = await cni.add(c);
    const nat = async () => (await run(["iptables-save", "-t", "nat"], { netns: nodeNs })).stdout;
    const rules = await nat();
    expect(rules).toMatch(/--dport 18080 .*-j DNAT --to-destination 10\.244\.1\.\d+:80/);
    expect(rules).toContain(`${r.podIP}:80`);
    // DEL without the pod object (no mappings given) still removes them: the cache has them.
    await cni.del({ ...c, portMappings: [] });
    expect(await nat()).not.toContain("--dport 18080");
  });

  it("deletes by network namespace when the container id is unknown", async () => {
    const d = await podNs("d");
    const r = await cni.add(d);
    expect(existsSync(join(ipamDir, "kemu", r.podIP))).toBe(true);
    await cni.del({ ...d, containerId: "" });
    expect(existsSync(join(ipamDir, "kemu", r.podIP))).toBe(false);
    expect(existsSync(join(cacheDir, "results", `kemu-${d.containerId}-eth0`))).toBe(false);
  });

  it("surfaces host-local's exhaustion error from a /30 pod range", async () => {
    const small = new Cni({
      confDir: join(tmp, "net30.d"),
      cacheDir: join(tmp, "cache30"),
      binDir: BIN_DIR,
      netns: nodeNs,
      conflist: podNetworkConflist({
        name: "kemu30",
        bridge: "kt30",
        podCIDR: "10.244.9.0/30",
        mtu: 1450,
        dataDir: join(tmp, "ipam30"),
      }),
    });
    await small.writeConfig();
    const first = await small.add(await podNs("e"));
    expect(first.podIP).toBe("10.244.9.2");
    const f = await podNs("f");
    const err = await small.add(f).catch((e) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err.message).toContain("failed to allocate for range 0: no IP addresses available in range set");
    expect(err.plugin).toBe("bridge");
    expect(err.command).toBe("ADD");
    expect(err.network).toBe("kemu30");
    expect(err.code).toBeGreaterThan(0);
    // The failed ADD was rolled back: no interface, no cache; DEL afterwards is harmless.
    expect(
      (await run(["ip", "link", "show", "eth0"], { netns: `${prefix}-f`, allowFail: true })).code,
    ).not.toBe(0);
    expect(existsSync(join(tmp, "cache30", "results", `kemu30-${f.containerId}-eth0`))).toBe(false);
    await small.del(f);
    await small.del(pod("e"));
    // The freed address is handed out again.
    expect((await small.add(f)).podIP).toBe("10.244.9.2");
    await small.del(f);
  });

  it("reports a plugin that does not exist clearly", async () => {
    const bad = new Cni({
      confDir: join(tmp, "bad.d"),
      cacheDir: join(tmp, "cachebad"),
      binDir: BIN_DIR,
      netns: nodeNs,
      conflist: { cniVersion: "1.0.0", name: "bad", plugins: [{ type: "no-such-plugin" }] },
    });
    const g = await podNs("g");
    const err = await bad.add(g).catch((e) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err.message).toBe(`failed to find plugin "no-such-plugin" in path [${BIN_DIR}]`);
    expect(err.plugin).toBe("no-such-plugin");
    await bad.del(g);
    expect(
      () => new Cni({ ...bad.options, conflist: { ...bad.options.conflist, plugins: [{ type: "../x" }] } }),
    ).toThrow(/invalid plugin type/);
  });

  it("reports an error raised inside a plugin, and a result without an IP", async () => {
    const conf = (ipam: Record<string, unknown>) =>
      new Cni({
        confDir: join(tmp, "broken.d"),
        cacheDir: join(tmp, "cachebroken"),
        binDir: BIN_DIR,
        netns: nodeNs,
        conflist: {
          cniVersion: "1.0.0",
          name: "broken",
          plugins: [{ type: "bridge", bridge: "kt-br", ipam }],
        },
      });
    const h = await podNs("h");
    const err = await conf({ type: "no-such-ipam" })
      .add(h)
      .catch((e) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err.plugin).toBe("bridge");
    expect(err.code).toBeGreaterThan(0);
    expect(err.message).toContain('failed to find plugin "no-such-ipam"');
    expect(err.message).toBe(err.details ? `${err.msg}; ${err.details}` : err.msg);
    // bridge without IPAM attaches at layer 2 only: no pod IP is an error, and is rolled back.
    const l2 = conf({});
    await expect(l2.add(h)).rejects.toThrow(/returned no IP address for eth0/);
    expect(
      (await run(["ip", "link", "show", "eth0"], { netns: `${prefix}-h`, allowFail: true })).code,
    ).not.toBe(0);
    await l2.del(h);
  });
});

async function ping(fromNs: string, ip: string): Promise<void> {
  let last = "";
  for (let i = 0; i < 3; i++) {
    const r = await run(["ping", "-c1", "-W1", ip], { netns: fromNs, allowFail: true });
    if (r.code === 0) return;
    last = r.stdout + r.stderr;
  }
  throw new Error(`ping ${ip} from ${fromNs} failed: ${last}`);
}
