// `kemu restart`: restarts a local cluster's control plane, forwarder or node agents by their
// recorded plan, the way an operator restarts kubelet or kube-apiserver on a real cluster.

import { parseFlags, UsageError } from "./args.ts";
import { restartComponents } from "./local/cluster.ts";
import { DEFAULT_CLUSTER_NAME, validateClusterName } from "./local/plan.ts";

export const restartHelp = `Usage: kemu restart [flags] COMPONENT...

Restarts background processes of a running local cluster: 'api' (the control plane), 'forward'
(the loopback forwarder) or a node name (that node's agent). A process still running is stopped
by its recorded pid (SIGTERM, then SIGKILL after 5s) and started again with the same flags; pods
keep running while their agent restarts. Returns once the API answers and restarted agents have
reported their node again.

Flags:
  --name NAME   cluster name (default ${DEFAULT_CLUSTER_NAME})
  -h, --help    show this help

Examples:
  kemu restart node-2
  kemu restart api
`;

export async function restartCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("restart", argv, { name: { type: "string" } });
  if (values.help) {
    process.stdout.write(restartHelp);
    return;
  }
  if (positionals.length === 0) {
    throw new UsageError("kemu restart: name at least one component (api, forward or a node)");
  }
  const name = (values.name as string | undefined) ?? DEFAULT_CLUSTER_NAME;
  try {
    validateClusterName(name);
  } catch (e) {
    throw new UsageError(`kemu restart: ${(e as Error).message}`);
  }
  const done = await restartComponents(name, positionals);
  process.stdout.write(`Restarted ${done.join(", ")} of cluster "${name}".\n`);
}
