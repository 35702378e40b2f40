// The node's pod network as a CNI network configuration list (SPEC.md 1.0.0): a `bridge` plugin
// with `host-local` IPAM for the node's pod CIDR, chained with `portmap` for hostPorts. This is
// the shape flannel's cni-conf delegates to (isGateway, hairpinMode, mtu) with one rule of our
// own: ipMasq is always false, so kemu never masquerades pod traffic towards the host's uplink.

import { isAbsolute } from "node:path";
import { type Cidr, parseCidr } from "../../emulator/cidr.ts";

/** Highest version both the spec we follow and Debian's containernetworking-plugins (1.1.1) speak. */
export const CNI_VERSION = "1.0.0";

/** One plugin of a list: `type` names the binary; every other key is the plugin's own. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkConfList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
}

export interface PodNetworkOptions {
  /** CNI network name (also the conflist file name and host-local's state subdirectory). */
  name: string;
  /** Linux bridge the pods' veths attach to, e.g. `cni0`. */
  bridge: string;
  /** The node's pod range, e.g. `10.244.1.0/24`; its first address becomes the gateway. */
  podCIDR: string;
  /** Pod interface and bridge MTU (the overlay's, e.g. 1450 under VXLAN). */
  mtu: number;
  /** host-local's lease directory (absolute). */
  dataDir: string;
  /** Lets a pod reach itself through a Service (hairpin on the bridge port). Default true. */
  hairpin?: boolean;
}

/** CNI network names: SPEC.md "Configuration format", `name` (a restricted file-name charset). */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Linux IFNAMSIZ is 16 including the terminating NUL. */
const MAX_IFNAME = 15;

/** Builds the pod network's conflist. Pure; throws a clear Error on invalid input. */
export function podNetworkConflist(o: PodNetworkOptions): NetworkConfList {
  if (typeof o.name !== "string" || !NETWORK_NAME.test(o.name)) {
    throw new Error(
      `CNI network name ${JSON.stringify(o.name)} is invalid: use letters, digits, '_', '.', '-', starting with a letter or digit`,
    );
  }
  validateBridgeName(o.bridge);
  const cidr = validatePodCidr(o.podCIDR);
  if (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 9000) {
    throw new Error(`pod network MTU ${o.mtu} is invalid: must be an integer from 576 to 9000`);
  }
  if (cidr.family === 6 && o.mtu < 1280) {
    throw new Error(`pod network MTU ${o.mtu} is too small for IPv6 (minimum 1280)`);
  }
  if (typeof o.dataDir !== "string" || !isAbsolute(o.dataDir)) {
    throw new Error(`host-local dataDir ${JSON.stringify(o.dataDir)} must be an absolute path`);
  }
  return {
    cniVersion: CNI_VERSION,
    name: o.name,
    plugins: [
      {
        type: "bridge",
        bridge: o.bridge,
        isGateway: true,
        isDefaultGateway: false,
        // Safety rule: never masquerade; pod traffic leaves the node with its pod IP.
        ipMasq: false,
        hairpinMode: o.hairpin ?? true,
        mtu: o.mtu,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: o.podCIDR }]],
          routes: [{ dst: cidr.family === 4 ? "0.0.0.0/0" : "::/0" }],
          dataDir: o.dataDir,
        },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

function validateBridgeName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_IFNAME) {
    throw new Error(
      `bridge name ${JSON.stringify(name)} is invalid: must be 1 to ${MAX_IFNAME} characters (Linux IFNAMSIZ)`,
    );
  }
  if (name === "." || name === ".." || /[\s/:%]/.test(name)) {
    throw new Error(
      `bridge name ${JSON.stringify(name)} is invalid: no whitespace, '/', ':' or '%', not '.' or '..'`,
    );
  }
}

function validatePodCidr(text: string): Cidr {
  let cidr: Cidr;
  try {
    cidr = parseCidr(text);
  } catch (e) {
    throw new Error(`podCIDR: ${(e as Error).message}`);
  }
  // host-local hands out neither the network nor the broadcast address nor the gateway (the
  // first host), so a range needs at least four addresses to hold one pod.
  const maxPrefix = cidr.bits - 2;
  if (cidr.prefixLength > maxPrefix) {
    throw new Error(
      `podCIDR ${text} is too small: a pod range needs a prefix of /${maxPrefix} or shorter (gateway plus at least one pod)`,
    );
  }
  return cidr;
}
