// `kemu down`: stops a local cluster's processes by their recorded pids and removes every
// namespace with its prefix (node, underlay and the agents' pod namespaces). Idempotent.

import { resolve } from "node:path";
import { parseFlags, UsageError } from "./args.ts";
import { downCluster } from "./local/cluster.ts";
import { DEFAULT_CLUSTER_NAME, validateClusterName } from "./local/plan.ts";

export const downHelp = `Usage: kemu down [flags]

Stops cluster NAME's agents, control plane and API forwarder (SIGTERM, then SIGKILL after 5s; only
the processes it started), kills whatever still runs in the cluster's namespaces, deletes every
namespace named kemu-NAME-*, and forgets the cluster. The data dir (store, logs) stays unless
--purge. Safe to run again, and after processes died on their own.

Flags:
  --name NAME      cluster name (default ${DEFAULT_CLUSTER_NAME})
  --data-dir DIR   where to look for cluster.json if the cluster is not registered
                   (default /var/lib/kemu/NAME)
  --purge          also delete the data dir
  -h, --help       show this help
`;

const flags = {
  name: { type: "string" },
  "data-dir": { type: "string" },
  purge: { type: "boolean" },
} as const;

export async function downCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("down", argv, flags);
  if (values.help) {
    process.stdout.write(downHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu down: unexpected argument "${positionals[0]}"`);
  const name = (values.name as string | undefined) ?? DEFAULT_CLUSTER_NAME;
  try {
    validateClusterName(name);
  } catch (e) {
    throw new UsageError(`kemu down: ${(e as Error).message}`);
  }
  const dataDir = values["data-dir"] as string | undefined;
  const r = await downCluster(name, {
    purge: values.purge === true,
    dataDir: dataDir ? resolve(dataDir) : undefined,
  });
  if (!r.found) {
    process.stdout.write(`No cluster "${name}" here; nothing to do.\n`);
    return;
  }
  const parts = [
    r.stopped.length ? `stopped ${r.stopped.join(", ")}` : "no processes were running",
    r.killed.length ? `(${r.killed.join(", ")} needed SIGKILL)` : "",
    `removed ${r.namespaces.length} namespaces`,
  ].filter(Boolean);
  process.stdout.write(
    `Cluster "${name}" is down: ${parts.join(" ")}.\n` +
      (r.purged ? `Deleted ${r.dataDir}.\n` : `State kept in ${r.dataDir} (delete it with --purge).\n`),
  );
}
