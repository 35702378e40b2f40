// core/v1 Endpoints: defaults (SetDefaults_EndpointPort), validation (ValidateEndpoints in
// pkg/apis/core/validation) and the `kubectl get endpoints` columns (printEndpoints). The
// endpoints controller writes these for Services with a selector; for selector-less Services users
// write them, and the mirroring controller turns them into EndpointSlices.
//
// `subsets` is an atomic list for strategic merge, as upstream (no patch strategy); the controller
// writes them in the canonical packed form (emulator/endpoints.ts).

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import type { FieldError, KubeObject, ObjectReference } from "../types.ts";
import {
  invalid,
  nameIsDNSSubdomain,
  notSupported,
  required,
  validateDNS1123Label,
  validateIP,
  validateObjectMeta,
  validatePortNumber,
  validateQualifiedName,
} from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";
import { validateNonSpecialIP } from "./service.ts";

export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: ObjectReference;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints extends KubeObject {
  subsets?: EndpointSubset[];
}

const PROTOCOLS = ["SCTP", "TCP", "UDP"];

export function defaultEndpoints(ep: Endpoints): void {
  for (const ss of ep.subsets ?? []) {
    for (const p of ss?.ports ?? []) if (p && !p.protocol) p.protocol = "TCP";
  }
}

function validateAddress(a: EndpointAddress, path: string): FieldError[] {
  const errs = validateIP(a?.ip ?? "", `${path}.ip`);
  if (a?.hostname) errs.push(...validateDNS1123Label(a.hostname, `${path}.hostname`));
  if (a?.nodeName !== undefined && a?.nodeName !== null) {
    for (const m of nameIsDNSSubdomain(a.nodeName, false))
      errs.push(invalid(`${path}.nodeName`, a.nodeName, m));
  }
  errs.push(...validateNonSpecialIP(a?.ip ?? "", `${path}.ip`));
  return errs;
}

/** validateEndpointPort, shared with the Service's view of endpoint ports. */
export function validateEndpointPort(p: EndpointPort, requireName: boolean, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (requireName && !p?.name) errs.push(required(`${path}.name`));
  else if (p?.name) errs.push(...validateDNS1123Label(p.name, `${path}.name`));
  errs.push(...validatePortNumber(p?.port ?? 0, `${path}.port`));
  if (!p?.protocol) errs.push(required(`${path}.protocol`));
  else if (!PROTOCOLS.includes(p.protocol))
    errs.push(notSupported(`${path}.protocol`, p.protocol, PROTOCOLS));
  if (p?.appProtocol !== undefined && p?.appProtocol !== null) {
    errs.push(...validateQualifiedName(p.appProtocol, `${path}.appProtocol`));
  }
  return errs;
}

export function validateEndpoints(ep: Endpoints): FieldError[] {
  const errs = validateObjectMeta(ep.metadata, {
    namespaced: true,
    nameValidator: nameIsDNSSubdomain,
    kubeFinalizers: true,
  });
  (ep.subsets ?? []).forEach((ss, i) => {
    const path = `subsets[${i}]`;
    const ready = ss?.addresses ?? [];
    const notReady = ss?.notReadyAddresses ?? [];
    if (ready.length === 0 && notReady.length === 0) {
      errs.push(required(path, "must specify `addresses` or `notReadyAddresses`"));
    }
    ready.forEach((a, j) => {
      errs.push(...validateAddress(a, `${path}.addresses[${j}]`));
    });
    notReady.forEach((a, j) => {
      errs.push(...validateAddress(a, `${path}.notReadyAddresses[${j}]`));
    });
    const ports = ss?.ports ?? [];
    ports.forEach((p, j) => {
      errs.push(...validateEndpointPort(p, ports.length > 1, `${path}.ports[${j}]`));
    });
  });
  return errs;
}

function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** formatEndpoints: the first three ready ip:port pairs, then "+ N more...". */
export function formatEndpoints(ep: Endpoints): string {
  const subsets = ep.subsets ?? [];
  if (subsets.length === 0) return "<none>";
  const list: string[] = [];
  const max = 3;
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addresses = ss.addresses ?? [];
    const ports = ss.ports ?? [];
    if (ports.length === 0) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(a.ip);
      }
      continue;
    }
    for (const p of ports) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(a.ip, p.port));
      }
    }
  }
  const text = list.join(",");
  if (more) return `${text} + ${count - max} more...`;
  return text || "<none>";
}

export const endpointsColumns: TableColumn[] = [
  nameColumn,
  {
    name: "Endpoints",
    type: "string",
    format: "",
    description:
      "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
  },
  ageColumn,
];

export const endpointsKind: KindSpec<Endpoints> = {
  group: "",
  version: "v1",
  kind: "Endpoints",
  resource: "endpoints",
  singular: "endpoints",
  namespaced: true,
  shortNames: ["ep"],
  defaults: defaultEndpoints,
  validate: validateEndpoints,
  table: {
    columns: endpointsColumns,
    cells: (ep, now) => [ep.metadata.name, formatEndpoints(ep), ageSince(ep.metadata.creationTimestamp, now)],
  },
  mergeKeys: { ...metadataMergeKeys },
};
