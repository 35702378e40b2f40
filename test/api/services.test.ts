// Services over HTTP: defaulting and validation at the API boundary, cluster IP and node port
// allocation inside the write (conflicts, ranges, release on delete, nothing leaked by a failed
// or dry-run write, state rebuilt from the store after a restart), the `kubernetes` Service, and
// LoadBalancer addresses from a pool.

import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { AdmissionError } from "../../api/resources.ts";
import { serviceKind } from "../../emulator/kinds/service.ts";
import { eventually, startTestCluster, type TestCluster, tempDir } from "../harness.ts";
import {
  create,
  createNamespace,
  eventsFor,
  expectFailure,
  expectStatus,
  get,
  mergePatch,
} from "./helpers.ts";

const NS = "svc";
const SVCS = `/api/v1/namespaces/${NS}/services`;
const WAIT = 10_000;

function service(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
  };
}

describe("services", () => {
  const clusters: TestCluster[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of clusters.splice(0)) await c.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function cluster(opts: Parameters<typeof startTestCluster>[0] = {}): Promise<TestCluster> {
    const c = await startTestCluster(opts);
    clusters.push(c);
    await createNamespace(c, NS).catch(() => {});
    return c;
  }

  async function refused(c: TestCluster, method: string, path: string, body: unknown): Promise<string> {
    return expectFailure(await c.request(method, path, { body }), 422, "Invalid").message;
  }

  describe("defaults and validation", () => {
    it("stores a defaulted, allocated ClusterIP Service", async () => {
      const c = await cluster({ controllers: false });
      const svc = await create(c, SVCS, service("web"));
      expect(svc.spec).toEqual({
        selector: { app: "web" },
        ports: [{ port: 80, protocol: "TCP", targetPort: 80 }],
        sessionAffinity: "None",
        type: "ClusterIP",
        internalTrafficPolicy: "Cluster",
        ipFamilyPolicy: "SingleStack",
        ipFamilies: ["IPv4"],
        clusterIP: expect.stringMatching(/^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$/),
        clusterIPs: [svc.spec.clusterIP],
      });
      expect(svc.status).toEqual({ loadBalancer: {} });
      expect((await get(c, `${SVCS}/web`)).spec.clusterIP).toBe(svc.spec.clusterIP);
    });

    it("answers invalid Services with 422 and every field at fault", async () => {
      const c = await cluster({ controllers: false });
      expect(
        await refused(
          c,
          "POST",
          SVCS,
          service("multi", { ports: [{ port: 80 }, { port: 0, protocol: "ICMP" }] }),
        ),
      ).toBe(
        'Service "multi" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value, spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP", spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]',
      );
      expect(
        await refused(c, "POST", SVCS, service("ext", { type: "ExternalName", selector: undefined })),
      ).toBe('Service "ext" is invalid: spec.externalName: Required value');
      expect(await refused(c, "POST", SVCS, service("np", { ports: [{ port: 80, nodePort: 30080 }] }))).toBe(
        "Service \"np\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
      );
      // Nothing was stored or held.
      expectStatus(await c.request("GET", `${SVCS}/multi`), 404);
      expect(c.server.serviceAllocation.allocators.nodePorts.allocated()).toEqual([]);
    });
  });

  describe("cluster IP allocation", () => {
    it("honours a requested address and refuses a taken or out-of-range one", async () => {
      const c = await cluster({ controllers: false });
      const a = await create(c, SVCS, service("a", { clusterIP: "10.96.100.100" }));
      expect(a.spec.clusterIPs).toEqual(["10.96.100.100"]);
      expect(await refused(c, "POST", SVCS, service("b", { clusterIP: "10.96.100.100" }))).toBe(
        'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.100.100"}: failed to allocate IP 10.96.100.100: provided IP is already allocated',
      );
      expect(await refused(c, "POST", SVCS, service("c", { clusterIP: "1.2.3.4" }))).toBe(
        'Service "c" is invalid: spec.clusterIPs: Invalid value: []string{"1.2.3.4"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12',
      );
      // Deleting frees the address for the next Service.
      expectStatus(await c.request("DELETE", `${SVCS}/a`), 200);
      expect((await create(c, SVCS, service("b", { clusterIP: "10.96.100.100" }))).spec.clusterIP).toBe(
        "10.96.100.100",
      );
    });

    it("uses the configured range", async () => {
      const c = await cluster({ controllers: false, serviceCidr: "10.200.0.0/24" });
      const svc = await create(c, SVCS, service("a"));
      expect(svc.spec.clusterIP).toMatch(/^10\.200\.0\.\d+$/);
      expect((await get(c, "/api/v1/namespaces/default/services/kubernetes")).spec.clusterIP).toBe(
        "10.200.0.1",
      );
      expect(await refused(c, "POST", SVCS, service("b", { clusterIP: "10.96.0.10" }))).toContain(
        "The range of valid IPs is 10.200.0.0/24",
      );
    });

    it("keeps the address across updates and refuses to change it", async () => {
      const c = await cluster({ controllers: false });
      const svc = await create(c, SVCS, service("web"));
      // kubectl replace of the original manifest: no clusterIP in the body.
      const put = expectStatus(
        await c.request("PUT", `${SVCS}/web`, { body: { ...service("web"), metadata: { name: "web" } } }),
        200,
      ).json;
      expect(put.spec.clusterIP).toBe(svc.spec.clusterIP);
      const other = svc.spec.clusterIP === "10.96.0.50" ? "10.96.0.51" : "10.96.0.50";
      expect(
        await refused(c, "PATCH", `${SVCS}/web`, { spec: { clusterIP: other, clusterIPs: [other] } }),
      ).toBe(
        `Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"${other}"}: may not change once set`,
      );
      expect(c.server.serviceAllocation.allocators.ips.has(other)).toBe(false);
    });

    it("gives headless and ExternalName Services no address, and moves one across ExternalName", async () => {
      const c = await cluster({ controllers: false });
      const headless = await create(c, SVCS, service("db", { clusterIP: "None" }));
      expect(headless.spec.clusterIPs).toEqual(["None"]);
      const ext = await create(
        c,
        SVCS,
        service("ext", { type: "ExternalName", externalName: "example.com", selector: undefined }),
      );
      expect(ext.spec.clusterIP).toBeUndefined();
      const ips = c.server.serviceAllocation.allocators.ips;
      const before = ips.allocated();
      const asClusterIP = await mergePatch(c, `${SVCS}/ext`, {
        spec: { type: "ClusterIP", externalName: null },
      });
      expect(asClusterIP.spec.clusterIP).toMatch(/^10\./);
      expect(ips.has(asClusterIP.spec.clusterIP)).toBe(true);
      const back = await mergePatch(c, `${SVCS}/ext`, {
        spec: { type: "ExternalName", externalName: "example.com" },
      });
      expect(back.spec.clusterIP).toBeUndefined();
      expect(back.spec.ipFamilies).toBeUndefined();
      expect(ips.allocated()).toEqual(before);
    });
  });

  describe("node port allocation", () => {
    it("allocates, honours requests, refuses duplicates and out-of-range ports", async () => {
      const c = await cluster({ controllers: false });
      const auto = await create(c, SVCS, service("auto", { type: "NodePort" }));
      expect(auto.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
      expect(auto.spec.ports[0].nodePort).toBeLessThanOrEqual(32767);
      expect(auto.spec.externalTrafficPolicy).toBe("Cluster");
      const fixed = await create(
        c,
        SVCS,
        service("fixed", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }),
      );
      expect(fixed.spec.ports[0].nodePort).toBe(30080);
      expect(
        await refused(
          c,
          "POST",
          SVCS,
          service("dup", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }),
        ),
      ).toBe(
        'Service "dup" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
      );
      expect(
        await refused(
          c,
          "POST",
          SVCS,
          service("low", { type: "NodePort", ports: [{ port: 80, nodePort: 8080 }] }),
        ),
      ).toBe(
        'Service "low" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767',
      );
      // The refused Service's cluster IP went back too: only two Services' addresses are held.
      expect(c.server.serviceAllocation.allocators.ips.allocated().sort()).toEqual(
        ["10.96.0.1", auto.spec.clusterIP, fixed.spec.clusterIP].sort(),
      );
      expectStatus(await c.request("DELETE", `${SVCS}/fixed`), 200);
      await create(c, SVCS, service("dup", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }));
    });

    it("frees node ports when the type changes back to ClusterIP", async () => {
      const c = await cluster({ controllers: false, nodePortRange: "31000-31009" });
      const np = await create(
        c,
        SVCS,
        service("np", { type: "NodePort", ports: [{ port: 80, nodePort: 31005 }] }),
      );
      expect(np.spec.ports[0].nodePort).toBe(31005);
      const cip = await mergePatch(c, `${SVCS}/np`, { spec: { type: "ClusterIP" } });
      expect(cip.spec.ports[0].nodePort).toBeUndefined();
      expect(cip.spec.externalTrafficPolicy).toBeUndefined();
      await create(c, SVCS, service("again", { type: "NodePort", ports: [{ port: 80, nodePort: 31005 }] }));
    });
  });

  describe("allocation is atomic with the write", () => {
    it("a create that fails in the store keeps nothing", async () => {
      const c = await cluster({ controllers: false });
      await create(c, SVCS, service("web"));
      // Same name: admission reserves the address and port, then the store refuses the create.
      expectFailure(
        await c.request("POST", SVCS, {
          body: service("web", {
            type: "NodePort",
            clusterIP: "10.96.7.7",
            ports: [{ port: 80, nodePort: 30777 }],
          }),
        }),
        409,
        "AlreadyExists",
      );
      const a = c.server.serviceAllocation.allocators;
      expect(a.ips.has("10.96.7.7")).toBe(false);
      expect(a.nodePorts.has(30777)).toBe(false);
      await create(
        c,
        SVCS,
        service("other", {
          type: "NodePort",
          clusterIP: "10.96.7.7",
          ports: [{ port: 80, nodePort: 30777 }],
        }),
      );
    });

    it("a later admission hook's refusal and a dry run give everything back", async () => {
      const c = await cluster({ controllers: false });
      const unregister = c.server.resources.admit(serviceKind as never, () => {
        throw new AdmissionError([
          { reason: "FieldValueForbidden", field: "metadata.name", message: "Forbidden: not today" },
        ]);
      });
      try {
        expect(await refused(c, "POST", SVCS, service("web", { clusterIP: "10.96.8.8" }))).toBe(
          'Service "web" is invalid: metadata.name: Forbidden: not today',
        );
      } finally {
        unregister();
      }
      expect(c.server.serviceAllocation.allocators.ips.has("10.96.8.8")).toBe(false);
      const dry = expectStatus(
        await c.request("POST", `${SVCS}?dryRun=All`, { body: service("web", { clusterIP: "10.96.8.8" }) }),
        201,
      ).json;
      expect(dry.spec.clusterIP).toBe("10.96.8.8");
      expect(c.server.serviceAllocation.allocators.ips.has("10.96.8.8")).toBe(false);
      expectStatus(await c.request("GET", `${SVCS}/web`), 404);
      await create(c, SVCS, service("web", { clusterIP: "10.96.8.8" }));
    });

    it("rebuilds the allocators from the store after a restart", async () => {
      const dataDir = tempDir();
      dirs.push(dataDir);
      const first = await startTestCluster({ dataDir, controllers: false });
      await createNamespace(first, NS);
      const np = await create(first, SVCS, service("np", { type: "NodePort" }));
      await first.close();

      const c = await cluster({ dataDir, controllers: false });
      const a = c.server.serviceAllocation.allocators;
      expect(a.ips.has(np.spec.clusterIP)).toBe(true);
      expect(a.nodePorts.has(np.spec.ports[0].nodePort)).toBe(true);
      expect(await refused(c, "POST", SVCS, service("twin", { clusterIP: np.spec.clusterIP }))).toContain(
        "provided IP is already allocated",
      );
      expect(
        await refused(
          c,
          "POST",
          SVCS,
          service("twin", { type: "NodePort", ports: [{ port: 80, nodePort: np.spec.ports[0].nodePort }] }),
        ),
      ).toContain("provided port is already allocated");
    });

    it("repair puts back lost allocations and frees leaked ones", async () => {
      const c = await cluster({ controllers: false });
      const svc = await create(c, SVCS, service("web", { type: "NodePort" }));
      const alloc = c.server.serviceAllocation;
      alloc.allocators.ips.release(svc.spec.clusterIP);
      alloc.allocators.ips.allocate("10.96.9.9"); // held by no Service
      await alloc.repair();
      expect(alloc.allocators.ips.has(svc.spec.clusterIP)).toBe(true);
      const ev = await eventually(
        async () => (await eventsFor(c, NS, "web", "ClusterIPNotAllocated"))[0],
        WAIT,
      );
      expect(ev.message).toBe(`Cluster IP [IPv4]:${svc.spec.clusterIP} is not allocated; repairing`);
      expect(ev.source.component).toBe("ipallocator-repair-controller");
      await alloc.repair();
      expect(alloc.allocators.ips.has("10.96.9.9")).toBe(true);
      await alloc.repair();
      expect(alloc.allocators.ips.has("10.96.9.9")).toBe(false);
    });
  });

  describe("the kubernetes Service", () => {
    it("points at the API server at the first address of the range", async () => {
      const c = await cluster({ controllers: false, advertiseAddress: "192.0.2.10" });
      const port = Number(new URL(c.server.url).port);
      const svc = await get(c, "/api/v1/namespaces/default/services/kubernetes");
      expect(svc.metadata.labels).toEqual({ component: "apiserver", provider: "kubernetes" });
      expect(svc.spec).toMatchObject({
        type: "ClusterIP",
        clusterIP: "10.96.0.1",
        clusterIPs: ["10.96.0.1"],
        ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: port }],
      });
      expect(svc.spec.selector).toBeUndefined();
      const ep = await get(c, "/api/v1/namespaces/default/endpoints/kubernetes");
      expect(ep.metadata.labels).toEqual({ "endpointslice.kubernetes.io/skip-mirror": "true" });
      expect(ep.subsets).toEqual([
        { addresses: [{ ip: "192.0.2.10" }], ports: [{ name: "https", port, protocol: "TCP" }] },
      ]);
      const slice = await get(c, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes");
      expect(slice).toMatchObject({
        addressType: "IPv4",
        endpoints: [{ addresses: ["192.0.2.10"], conditions: { ready: true } }],
        ports: [{ name: "https", port, protocol: "TCP" }],
        metadata: { labels: { "kubernetes.io/service-name": "kubernetes" } },
      });
      expect(await refused(c, "POST", SVCS, service("steal", { clusterIP: "10.96.0.1" }))).toContain(
        "provided IP is already allocated",
      );
    });

    it("publishes no address for a loopback listener and follows a new port after a restart", async () => {
      const dataDir = tempDir();
      dirs.push(dataDir);
      const first = await startTestCluster({ dataDir, controllers: false });
      expect((await get(first, "/api/v1/namespaces/default/endpoints/kubernetes")).subsets).toBeUndefined();
      await first.close();
      const c = await cluster({ dataDir, controllers: false, advertiseAddress: "192.0.2.20" });
      const port = Number(new URL(c.server.url).port);
      expect((await get(c, "/api/v1/namespaces/default/services/kubernetes")).spec.ports[0].targetPort).toBe(
        port,
      );
      expect((await get(c, "/api/v1/namespaces/default/endpoints/kubernetes")).subsets[0].addresses).toEqual([
        { ip: "192.0.2.20" },
      ]);
    });
  });

  describe("LoadBalancer", () => {
    const lb = (name: string, spec: Record<string, unknown> = {}) =>
      service(name, { type: "LoadBalancer", ...spec });
    const ingress = async (c: TestCluster, name: string) =>
      (await get(c, `${SVCS}/${name}`)).status?.loadBalancer?.ingress;

    it("assigns pool addresses lowest first, honours loadBalancerIP, releases on delete and type change", async () => {
      const c = await cluster({ loadBalancerPool: "192.0.2.240/30" });
      const first = await create(c, SVCS, lb("first"));
      expect(first.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
      expect(first.spec.allocateLoadBalancerNodePorts).toBe(true);
      expect(await eventually(() => ingress(c, "first"), WAIT)).toEqual([
        { ip: "192.0.2.240", ipMode: "VIP" },
      ]);
      await create(c, SVCS, lb("chosen", { loadBalancerIP: "192.0.2.243" }));
      expect(await eventually(() => ingress(c, "chosen"), WAIT)).toEqual([
        { ip: "192.0.2.243", ipMode: "VIP" },
      ]);
      await create(c, SVCS, lb("second"));
      expect(await eventually(() => ingress(c, "second"), WAIT)).toEqual([
        { ip: "192.0.2.241", ipMode: "VIP" },
      ]);
      const assigned = await eventually(
        async () => (await eventsFor(c, NS, "second", "IPAllocated"))[0],
        WAIT,
      );
      expect(assigned).toMatchObject({
        type: "Normal",
        message: 'Assigned IP ["192.0.2.241"]',
        source: { component: "service-lb-controller" },
      });

      // Outside the pool: pending, with a reason.
      await create(c, SVCS, lb("outside", { loadBalancerIP: "198.51.100.1" }));
      const failed = await eventually(
        async () => (await eventsFor(c, NS, "outside", "AllocationFailed"))[0],
        WAIT,
      );
      expect(failed.message).toBe(
        'Failed to allocate IP for "svc/outside": ["198.51.100.1"] is not allowed in config: the pool is 192.0.2.240/30',
      );
      expect(await ingress(c, "outside")).toBeUndefined();

      // The first Service goes: its address is the next one handed out.
      expectStatus(await c.request("DELETE", `${SVCS}/first`), 200);
      await create(c, SVCS, lb("third"));
      expect(await eventually(() => ingress(c, "third"), WAIT)).toEqual([
        { ip: "192.0.2.240", ipMode: "VIP" },
      ]);
      // No longer a LoadBalancer: status cleared, address back in the pool.
      const cip = await mergePatch(c, `${SVCS}/second`, { spec: { type: "ClusterIP" } });
      expect(cip.status).toEqual({ loadBalancer: {} });
      expect(cip.spec.ports[0].nodePort).toBeUndefined();
      await create(c, SVCS, lb("fourth"));
      expect(await eventually(() => ingress(c, "fourth"), WAIT)).toEqual([
        { ip: "192.0.2.241", ipMode: "VIP" },
      ]);
      await create(c, SVCS, lb("fifth"));
      expect(await eventually(() => ingress(c, "fifth"), WAIT)).toEqual([
        { ip: "192.0.2.242", ipMode: "VIP" },
      ]);
      // Full: the next one waits.
      await create(c, SVCS, lb("sixth"));
      const full = await eventually(
        async () => (await eventsFor(c, NS, "sixth", "AllocationFailed"))[0],
        WAIT,
      );
      expect(full.message).toBe('Failed to allocate IP for "svc/sixth": no available IPs');
      expect(await ingress(c, "sixth")).toBeUndefined();
    });

    it("keeps assignments across a restart", async () => {
      const dataDir = tempDir();
      dirs.push(dataDir);
      const first = await startTestCluster({ dataDir, loadBalancerPool: "192.0.2.240/30" });
      await createNamespace(first, NS);
      await create(first, SVCS, lb("a"));
      await eventually(async () => (await get(first, `${SVCS}/a`)).status?.loadBalancer?.ingress, WAIT);
      await first.close();
      const c = await cluster({ dataDir, loadBalancerPool: "192.0.2.240/30" });
      await create(c, SVCS, lb("b"));
      expect(await eventually(() => ingress(c, "b"), WAIT)).toEqual([{ ip: "192.0.2.241", ipMode: "VIP" }]);
      expect(await ingress(c, "a")).toEqual([{ ip: "192.0.2.240", ipMode: "VIP" }]);
    });

    it("stays pending with an event when no pool is configured", async () => {
      const c = await cluster();
      await create(c, SVCS, lb("web"));
      const ev = await eventually(async () => (await eventsFor(c, NS, "web", "AllocationFailed"))[0], WAIT);
      expect(ev).toMatchObject({
        type: "Warning",
        message:
          'Failed to allocate IP for "svc/web": no load-balancer address pool is configured (start the control plane with --load-balancer-pool)',
      });
      expect(await ingress(c, "web")).toBeUndefined();
    });
  });
});
