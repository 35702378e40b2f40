// discovery.k8s.io/v1 EndpointSlice: defaults (SetDefaults_EndpointPort), validation
// (pkg/apis/discovery/validation) and the `kubectl get endpointslices` columns
// (printEndpointSlice). The endpointslice controller writes one or more per Service with a
// selector, the mirroring controller one per selector-less Service with manual Endpoints; both
// label them kubernetes.io/service-name, which is how kube-proxy finds a Service's slices.

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import type { FieldError, KubeObject, ObjectReference } from "../types.ts";
import {
  duplicate,
  fieldImmutableErrorMsg,
  invalid,
  isDNS1123Label,
  isDNS1123Subdomain,
  nameIsDNSSubdomain,
  notSupported,
  parseIP,
  required,
  validateDNS1123Label,
  validateLabels,
  validateObjectMeta,
  validatePortNumber,
  validateQualifiedName,
} from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";
import { validateNonSpecialIP } from "./service.ts";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror";
export const ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io";
export const MIRRORING_CONTROLLER = "endpointslicemirroring-controller.k8s.io";
export const MAX_SLICE_ENDPOINTS = 1000;

export interface EndpointConditions {
  ready?: boolean | null;
  serving?: boolean | null;
  terminating?: boolean | null;
}

export interface SliceEndpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  hostname?: string;
  targetRef?: ObjectReference;
  nodeName?: string;
  zone?: string;
  hints?: { forZones?: { name: string }[] };
  deprecatedTopology?: Record<string, string>;
}

export interface SlicePort {
  name?: string;
  protocol?: string;
  port?: number;
  appProtocol?: string;
}

export interface EndpointSlice extends KubeObject {
  addressType: string;
  /** `null` when absent, as upstream serializes a nil slice (the field has no omitempty). */
  endpoints: SliceEndpoint[] | null;
  ports?: SlicePort[] | null;
}

const ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"];
const PROTOCOLS = ["SCTP", "TCP", "UDP"];
const MAX_ADDRESSES = 100;
const MAX_PORTS = 100;
const MAX_TOPOLOGY_LABELS = 16;
const MAX_HINTS = 8;

function tooMany(field: string, actual: number, max: number): FieldError {
  return {
    reason: "FieldValueTooMany",
    field,
    message: `Too many: ${actual}: must have at most ${max} items`,
  };
}

export function defaultEndpointSlice(slice: EndpointSlice): void {
  if (!Array.isArray(slice.endpoints)) slice.endpoints = null; // absent reads back as null, as upstream
  for (const p of slice.ports ?? []) {
    if (!p || typeof p !== "object") continue;
    p.name ??= "";
    p.protocol ??= "TCP";
  }
}

/** validation.IsFullyQualifiedDomainName. */
function validateFQDN(value: string, field: string): FieldError[] {
  if (!value) return [required(field)];
  const name = value.replace(/\.$/, "");
  const sub = isDNS1123Subdomain(name);
  if (sub.length) return [invalid(field, name, sub.join(","))];
  const labels = name.split(".");
  if (labels.length < 2)
    return [invalid(field, name, "should be a domain with at least two segments separated by dots")];
  for (const label of labels) {
    const e = isDNS1123Label(label);
    if (e.length) return [invalid(field, label, e.join(","))];
  }
  return [];
}

function validateSliceEndpoints(slice: EndpointSlice): FieldError[] {
  const errs: FieldError[] = [];
  const endpoints = slice.endpoints ?? [];
  if (endpoints.length > MAX_SLICE_ENDPOINTS)
    return [tooMany("endpoints", endpoints.length, MAX_SLICE_ENDPOINTS)];
  endpoints.forEach((ep, i) => {
    const path = `endpoints[${i}]`;
    const addresses = ep?.addresses ?? [];
    if (addresses.length === 0) errs.push(required(`${path}.addresses`, "must contain at least 1 address"));
    else if (addresses.length > MAX_ADDRESSES)
      errs.push(tooMany(`${path}.addresses`, addresses.length, MAX_ADDRESSES));
    addresses.forEach((a, j) => {
      const p = `${path}.addresses[${j}]`;
      switch (slice.addressType) {
        case "IPv4":
        case "IPv6": {
          const family = slice.addressType === "IPv4" ? 4 : 6;
          const ip = parseIP(String(a));
          if (!ip || ip.family !== family || (family === 6 && ip.mapped4)) {
            errs.push(invalid(p, a, `must be a valid ${slice.addressType} address`));
          }
          errs.push(...validateNonSpecialIP(String(a), p));
          break;
        }
        case "FQDN":
          errs.push(...validateFQDN(String(a), p));
          break;
      }
    });
    if (ep?.nodeName !== undefined && ep?.nodeName !== null) {
      for (const m of nameIsDNSSubdomain(ep.nodeName, false))
        errs.push(invalid(`${path}.nodeName`, ep.nodeName, m));
    }
    const topology = ep?.deprecatedTopology ?? {};
    if (Object.keys(topology).length > MAX_TOPOLOGY_LABELS) {
      errs.push(tooMany(`${path}.deprecatedTopology`, Object.keys(topology).length, MAX_TOPOLOGY_LABELS));
    }
    errs.push(...validateLabels(topology, `${path}.deprecatedTopology`));
    if (ep?.hostname !== undefined && ep?.hostname !== null) {
      errs.push(...validateDNS1123Label(ep.hostname, `${path}.hostname`));
    }
    const zones = ep?.hints?.forZones ?? [];
    if (zones.length > MAX_HINTS) errs.push(tooMany(`${path}.hints.forZones`, zones.length, MAX_HINTS));
    const seen = new Set<string>();
    zones.forEach((z, j) => {
      if (seen.has(z?.name)) errs.push(duplicate(`${path}.hints.forZones[${j}].name`, z?.name));
      seen.add(z?.name);
    });
  });
  return errs;
}

function validateSlicePorts(ports: SlicePort[]): FieldError[] {
  if (ports.length > MAX_PORTS) return [tooMany("ports", ports.length, MAX_PORTS)];
  const errs: FieldError[] = [];
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const path = `ports[${i}]`;
    const name = p?.name ?? "";
    if (name) errs.push(...validateDNS1123Label(name, `${path}.name`));
    if (names.has(name)) errs.push(duplicate(`${path}.name`, name));
    else names.add(name);
    if (!p?.protocol) errs.push(required(`${path}.protocol`));
    else if (!PROTOCOLS.includes(p.protocol))
      errs.push(notSupported(`${path}.protocol`, p.protocol, PROTOCOLS));
    if (p?.port !== undefined && p?.port !== null) errs.push(...validatePortNumber(p.port, `${path}.port`));
    if (p?.appProtocol !== undefined && p?.appProtocol !== null) {
      errs.push(...validateQualifiedName(p.appProtocol, `${path}.appProtocol`));
    }
  });
  return errs;
}

export function validateEndpointSlice(slice: EndpointSlice): FieldError[] {
  const errs = validateObjectMeta(slice.metadata, {
    namespaced: true,
    nameValidator: nameIsDNSSubdomain,
    kubeFinalizers: true,
  });
  if (!slice.addressType) errs.push(required("addressType"));
  else if (!ADDRESS_TYPES.includes(slice.addressType)) {
    errs.push(notSupported("addressType", slice.addressType, ADDRESS_TYPES));
  }
  errs.push(...validateSliceEndpoints(slice));
  errs.push(...validateSlicePorts(slice.ports ?? []));
  return errs;
}

export function validateEndpointSliceUpdate(slice: EndpointSlice, old: EndpointSlice): FieldError[] {
  if (slice.addressType !== old.addressType) {
    return [invalid("addressType", slice.addressType, fieldImmutableErrorMsg)];
  }
  return [];
}

function listWithMore(list: string[], more: boolean, count: number, max: number): string {
  const text = list.join(",");
  if (more) return `${text} + ${count - max} more...`;
  return text || "<unset>";
}

export function formatSlicePorts(ports: SlicePort[] | null | undefined): string {
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const p of ports ?? []) {
    if (list.length < 3) list.push(p.port !== undefined && p.port !== null ? String(p.port) : p.name || "*");
    else more = true;
    count++;
  }
  return listWithMore(list, more, count, 3);
}

export function formatSliceEndpoints(endpoints: SliceEndpoint[] | null | undefined): string {
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const ep of endpoints ?? []) {
    for (const a of ep.addresses ?? []) {
      if (list.length < 3) list.push(a);
      else more = true;
      count++;
    }
  }
  return listWithMore(list, more, count, 3);
}

export const endpointSliceColumns: TableColumn[] = [
  nameColumn,
  {
    name: "AddressType",
    type: "string",
    format: "",
    description:
      "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
  },
  {
    name: "Ports",
    type: "string",
    format: "",
    description:
      'ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates "all ports". Each slice may include a maximum of 100 ports.',
  },
  {
    name: "Endpoints",
    type: "string",
    format: "",
    description:
      "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
  },
  ageColumn,
];

export const endpointSliceKind: KindSpec<EndpointSlice> = {
  group: "discovery.k8s.io",
  version: "v1",
  kind: "EndpointSlice",
  resource: "endpointslices",
  singular: "endpointslice",
  namespaced: true,
  defaults: defaultEndpointSlice,
  validate: validateEndpointSlice,
  validateUpdate: validateEndpointSliceUpdate,
  table: {
    columns: endpointSliceColumns,
    cells: (s, now) => [
      s.metadata.name,
      s.addressType ?? "",
      formatSlicePorts(s.ports),
      formatSliceEndpoints(s.endpoints),
      ageSince(s.metadata.creationTimestamp, now),
    ],
  },
  mergeKeys: { ...metadataMergeKeys },
};
