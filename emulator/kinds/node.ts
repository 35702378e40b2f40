// core/v1 Node: validation (ValidateNode / ValidateNodeUpdate), defaults (SetDefaults_NodeStatus),
// the spec.unschedulable field selector and the `kubectl get nodes` columns (printNode).

import { ageSince } from "../duration.ts";
import type { KindSpec, TableColumn } from "../kind.ts";
import { validateLabelValue } from "../label-selector.ts";
import type { FieldError, NodeObject, Taint } from "../types.ts";
import {
  duplicate,
  forbidden,
  GoValue,
  goQuote,
  invalid,
  nameIsDNSSubdomain,
  notSupported,
  parseCIDR,
  required,
  validateCIDR,
  validateObjectMeta,
  validateQualifiedName,
} from "../validation.ts";
import { ageColumn, metadataMergeKeys, nameColumn } from "./pod.ts";

const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/** The pod CIDRs a v1 node carries: podCIDRs, or the singular podCIDR of older clients. */
export function nodePodCIDRs(node: NodeObject): string[] {
  const spec = node.spec ?? {};
  if (spec.podCIDRs?.length) return spec.podCIDRs;
  return spec.podCIDR ? [spec.podCIDR] : [];
}

function taintGoValue(t: Taint): GoValue {
  const added = t.timeAdded ? `&v1.Time{Time:${goQuote(t.timeAdded)}}` : "(*v1.Time)(nil)";
  return new GoValue(
    `core.Taint{Key:${goQuote(t.key ?? "")}, Value:${goQuote(t.value ?? "")}, Effect:${goQuote(t.effect ?? "")}, TimeAdded:${added}}`,
  );
}

/** validateNodeTaints: qualified keys, label-value values, known effects, unique (key, effect). */
export function validateNodeTaints(taints: Taint[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  (taints ?? []).forEach((t, i) => {
    const p = `${path}[${i}]`;
    errs.push(...validateQualifiedName(t.key ?? "", `${p}.key`));
    const valueErrs = validateLabelValue(t.value ?? "");
    if (valueErrs.length) errs.push(invalid(`${p}.value`, t.value ?? "", valueErrs.join(";")));
    if (!t.effect) errs.push(required(`${p}.effect`));
    else if (!TAINT_EFFECTS.includes(t.effect))
      errs.push(notSupported(`${p}.effect`, t.effect, TAINT_EFFECTS));
    const key = `${t.effect ?? ""}\u0000${t.key ?? ""}`;
    if (seen.has(key)) {
      errs.push(duplicate(p, taintGoValue(t), "taints must be unique by key and effect pair"));
      return;
    }
    seen.add(key);
  });
  return errs;
}

/** ValidateNode. */
export function validateNode(node: NodeObject): FieldError[] {
  const errs = validateObjectMeta(node.metadata, {
    namespaced: false,
    nameValidator: nameIsDNSSubdomain,
    kubeFinalizers: true,
  });
  // Upstream reports spec.taints under "metadata.taints" (its field path is built from metadata).
  if (node.spec?.taints?.length) errs.push(...validateNodeTaints(node.spec.taints, "metadata.taints"));
  const cidrs = nodePodCIDRs(node);
  const path = "spec.podCIDRs";
  cidrs.forEach((c, i) => {
    errs.push(...validateCIDR(c, `${path}[${i}]`));
  });
  if (cidrs.length > 1) {
    const families = cidrs.map((c) => parseCIDR(c)?.family);
    const dualStack = cidrs.length === 2 && families.includes(4) && families.includes(6);
    if (!dualStack) errs.push(invalid(path, cidrs, "may specify no more than one CIDR for each IP family"));
    const seen = new Set<string>();
    cidrs.forEach((c, i) => {
      if (seen.has(c)) errs.push(duplicate(`${path}[${i}]`, c));
      seen.add(c);
    });
  }
  return errs;
}

/** ValidateNodeUpdate beyond metadata: pod CIDRs and providerID are set once; addresses unique. */
export function validateNodeUpdate(node: NodeObject, old: NodeObject): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  (node.status?.addresses ?? []).forEach((a, i) => {
    const key = `${a.type}\u0000${a.address}`;
    if (seen.has(key)) {
      errs.push(
        duplicate(
          `status.addresses[${i}]`,
          new GoValue(`core.NodeAddress{Type:${goQuote(a.type ?? "")}, Address:${goQuote(a.address ?? "")}}`),
        ),
      );
    }
    seen.add(key);
  });
  const oldCIDRs = nodePodCIDRs(old);
  const newCIDRs = nodePodCIDRs(node);
  const cidrMessage = 'node updates may not change podCIDR except from "" to valid';
  if (oldCIDRs.length > 0) {
    if (oldCIDRs.length !== newCIDRs.length) errs.push(forbidden("spec.podCIDRs", cidrMessage));
    else {
      for (let i = 0; i < oldCIDRs.length; i++) {
        if (oldCIDRs[i] !== newCIDRs[i]) errs.push(forbidden("spec.podCIDRs", cidrMessage));
      }
    }
  }
  const oldProvider = old.spec?.providerID as string | undefined;
  if (oldProvider && oldProvider !== node.spec?.providerID) {
    errs.push(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'));
  }
  return errs;
}

/** Create-time defaults: allocatable follows capacity, podCIDR and podCIDRs agree. */
export function defaultNode(node: NodeObject): void {
  const spec = node.spec;
  if (spec) {
    if (spec.podCIDRs?.length && !spec.podCIDR) spec.podCIDR = spec.podCIDRs[0];
    else if (spec.podCIDR && !spec.podCIDRs?.length) spec.podCIDRs = [spec.podCIDR];
  }
  const status = node.status;
  if (status?.capacity && !status.allocatable) status.allocatable = { ...status.capacity };
}

/** findNodeRoles: node-role.kubernetes.io/<role> labels and the legacy kubernetes.io/role. */
export function nodeRoles(node: NodeObject): string[] {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/")) {
      const role = k.slice("node-role.kubernetes.io/".length);
      if (role) roles.add(role);
    } else if (k === "kubernetes.io/role" && v) {
      roles.add(v);
    }
  }
  return [...roles].sort();
}

/** The STATUS cell: Ready/NotReady/Unknown from the Ready condition, plus SchedulingDisabled. */
export function nodeStatusText(node: NodeObject): string {
  const status: string[] = [];
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  if (ready) status.push(ready.status === "True" ? "Ready" : "NotReady");
  else status.push("Unknown");
  if (node.spec?.unschedulable) status.push("SchedulingDisabled");
  return status.join(",");
}

function addressOf(node: NodeObject, type: string): string {
  return node.status?.addresses?.find((a) => a.type === type)?.address ?? "<none>";
}

export function nodeTableCells(node: NodeObject, now: Date): unknown[] {
  const info = node.status?.nodeInfo ?? {};
  const roles = nodeRoles(node).join(",");
  return [
    node.metadata.name,
    nodeStatusText(node),
    roles || "<none>",
    ageSince(node.metadata.creationTimestamp, now),
    info.kubeletVersion ?? "",
    addressOf(node, "InternalIP"),
    addressOf(node, "ExternalIP"),
    info.osImage || "<unknown>",
    info.kernelVersion || "<unknown>",
    info.containerRuntimeVersion || "<unknown>",
  ];
}

const ADDRESSES_DESCRIPTION =
  "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

export const nodeColumns: TableColumn[] = [
  nameColumn,
  { name: "Status", type: "string", format: "", description: "The status of the node" },
  { name: "Roles", type: "string", format: "", description: "The roles of the node" },
  ageColumn,
  { name: "Version", type: "string", format: "", description: "Kubelet Version reported by the node." },
  { name: "Internal-IP", type: "string", format: "", priority: 1, description: ADDRESSES_DESCRIPTION },
  { name: "External-IP", type: "string", format: "", priority: 1, description: ADDRESSES_DESCRIPTION },
  {
    name: "OS-Image",
    type: "string",
    format: "",
    priority: 1,
    description: "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
  },
  {
    name: "Kernel-Version",
    type: "string",
    format: "",
    priority: 1,
    description: "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
  },
  {
    name: "Container-Runtime",
    type: "string",
    format: "",
    priority: 1,
    description:
      "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
  },
];

export const nodeKind: KindSpec<NodeObject> = {
  group: "",
  version: "v1",
  kind: "Node",
  resource: "nodes",
  singular: "node",
  namespaced: false,
  shortNames: ["no"],
  subresources: ["status"],
  defaults: defaultNode,
  validate: validateNode,
  validateUpdate: validateNodeUpdate,
  selectableFields: {
    "spec.unschedulable": (n) => String(!!n.spec?.unschedulable),
  },
  table: { columns: nodeColumns, cells: nodeTableCells },
  mergeKeys: {
    ...metadataMergeKeys,
    "spec.podCIDRs": "",
    "status.conditions": "type",
    "status.addresses": "type",
  },
  statusSubresource: true,
};
