import { describe, expect, it } from "vitest";
import type { Pod } from "../../emulator/types.ts";
import { hostsFile, resolvConf } from "./pod-files.ts";

const pod = (spec: Record<string, unknown> = {}): Pod =>
  ({ metadata: { name: "web", namespace: "shop" }, spec: { containers: [], ...spec } }) as Pod;
const dns = {
  clusterDNS: "10.96.0.10",
  clusterDomain: "cluster.local",
  nodeResolvConf: "# the node's\nsearch corp.example\nnameserver 192.0.2.53\noptions timeout:2\n",
};

describe("pod resolv.conf", () => {
  it("ClusterFirst: cluster DNS, the namespace's search path (then the node's), ndots:5", () => {
    expect(resolvConf(pod(), dns)).toBe(
      "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });

  it("Default: the node's resolver", () => {
    expect(resolvConf(pod({ dnsPolicy: "Default" }), dns)).toBe(
      "search corp.example\nnameserver 192.0.2.53\noptions timeout:2\n",
    );
  });

  it("None: only dnsConfig", () => {
    expect(
      resolvConf(
        pod({
          dnsPolicy: "None",
          dnsConfig: {
            nameservers: ["1.2.3.4"],
            searches: ["ns1.svc.cluster-domain.example"],
            options: [{ name: "ndots", value: "2" }, { name: "edns0" }],
          },
        }),
        dns,
      ),
    ).toBe("search ns1.svc.cluster-domain.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n");
    expect(resolvConf(pod({ dnsPolicy: "None" }), dns)).toBe("");
  });

  it("merges dnsConfig into ClusterFirst as kubelet does: appended, deduplicated, options overridden", () => {
    const out = resolvConf(
      pod({
        dnsConfig: {
          nameservers: ["10.96.0.10", "10.0.0.53"],
          searches: ["cluster.local", "extra.example"],
          options: [{ name: "ndots", value: "1" }, { name: "single-request-reopen" }],
        },
      }),
      dns,
    );
    expect(out).toBe(
      "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example extra.example\n" +
        "nameserver 10.96.0.10\nnameserver 10.0.0.53\noptions ndots:1 single-request-reopen\n",
    );
  });
});

describe("pod hosts file", () => {
  it("names the pod IP with the hostname, and the FQDN when the pod has a subdomain", () => {
    expect(hostsFile(pod(), "10.244.1.5")).toContain("10.244.1.5\tweb\n");
    expect(hostsFile(pod({ hostname: "db-0", subdomain: "db" }), "10.244.1.5")).toContain(
      "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n",
    );
    const aliased = hostsFile(
      pod({ hostAliases: [{ ip: "10.1.2.3", hostnames: ["foo.local", "bar.local"] }] }),
      "10.244.1.5",
    );
    expect(aliased).toContain("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n");
  });
});
