// Pods and Services for the endpoint controllers' unit tests (emulator/endpoints.test.ts,
// emulator/endpoint-slices.test.ts): a running pod on node n1 and a defaulted ClusterIP Service.

import { defaultService, type Service } from "../emulator/kinds/service.ts";
import type { Pod } from "../emulator/types.ts";

export function testPod(
  name: string,
  ip: string | undefined,
  opts: {
    ready?: boolean;
    node?: string;
    phase?: string;
    terminating?: boolean;
    ports?: { name?: string; containerPort: number; protocol?: string }[];
    labels?: Record<string, string>;
  } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      labels: opts.labels ?? { app: "web" },
      ...(opts.terminating ? { deletionTimestamp: "2026-11-24T12:00:00Z" } : {}),
    },
    spec: {
      nodeName: opts.node ?? "n1",
      containers: [
        { name: "app", image: "nginx", ports: (opts.ports ?? []) as Pod["spec"]["containers"][0]["ports"] },
      ],
    },
    status: {
      phase: (opts.phase ?? "Running") as "Running",
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
}

export function testService(spec: Record<string, unknown>, name = "web"): Service {
  const s = {
    metadata: { name, namespace: "default", uid: `uid-svc-${name}`, labels: { team: "a" } },
    spec: {
      selector: { app: "web" },
      clusterIP: "10.96.0.10",
      clusterIPs: ["10.96.0.10"],
      ipFamilies: ["IPv4"],
      ...spec,
    },
  } as Service;
  defaultService(s);
  return s;
}
