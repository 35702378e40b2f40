// `kemu node exec NODE -- CMD...`: runs a command inside a node's network namespace with the
// terminal attached and its exit code passed through (tcpdump, ip, ss, ping, a shell).
// `kemu node add|remove|stop|start`: node machines of a local cluster (cli/local/nodes.ts).

import { spawn } from "node:child_process";
import { constants } from "node:os";
import { inNetns } from "../agent/exec.ts";
import { durationFlag, parseFlags, UsageError } from "./args.ts";
import { dockerNodeContainers, pickNodeContainer } from "./docker-node.ts";
import { NoSuchClusterError, nodeNamespace } from "./local/cluster.ts";
import { addNode, removeNode, startNode, stopNode } from "./local/nodes.ts";
import { DEFAULT_CLUSTER_NAME, validateClusterName } from "./local/plan.ts";

export const nodeHelp = `Usage: kemu node <command>

Commands:
  exec NODE [--name NAME] -- CMD [ARGS...]   run a command inside a node
  add [--name NAME]                          add the next node-N; returns once it is Ready
  remove NODE [--name NAME]                  stop its agent, delete the Node and its namespaces
  stop NODE [--name NAME]                    a node failure: kill its agent, unplug its underlay
                                             link (pods keep running, cut off); it turns NotReady
                                             after the grace period and its pods are evicted
  start NODE [--name NAME]                   plug it back in and start its agent; returns once Ready

add, remove, stop and start act on local clusters (kemu up; --timeout D bounds the wait for
Ready, default 60s). In Docker mode the control plane offers them as POST /kemu/v1/nodes,
DELETE /kemu/v1/nodes/NODE and POST /kemu/v1/nodes/NODE/stop|start; exec works in both modes.

Run 'kemu node exec --help' for its flags.
`;

export const nodeExecHelp = `Usage: kemu node exec NODE [flags] -- CMD [ARGS...]

Runs CMD inside node NODE's network namespace (its eth0 on the underlay, its routes, VXLAN
device, iptables rules and pod bridge), with stdin/stdout/stderr attached; exits with CMD's code.
In Docker mode (no local cluster has NODE) it runs CMD in NODE's container through docker exec;
--name then picks the Compose project.

Flags:
  --name NAME   cluster name (default ${DEFAULT_CLUSTER_NAME})
  -h, --help    show this help

Examples:
  kemu node exec node-1 -- ip addr
  kemu node exec node-2 -- tcpdump -ni eth0 udp port 8472
`;

export async function nodeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h" || sub === "help") {
    process.stdout.write(nodeHelp);
    return sub ? 0 : 2;
  }
  if (sub === "exec") return nodeExec(rest);
  if (sub === "add" || sub === "remove" || sub === "stop" || sub === "start") return nodeAction(sub, rest);
  throw new UsageError(`kemu node: unknown command "${sub}"\n\n${nodeHelp}`);
}

async function nodeAction(action: "add" | "remove" | "stop" | "start", argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(`node ${action}`, argv, {
    name: { type: "string" },
    timeout: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(nodeHelp);
    return 0;
  }
  const name = (values.name as string | undefined) ?? DEFAULT_CLUSTER_NAME;
  try {
    validateClusterName(name);
  } catch (e) {
    throw new UsageError(`kemu node ${action}: ${(e as Error).message}`);
  }
  const timeoutMs = durationFlag(`node ${action}`, "timeout", values.timeout);
  if (action === "add") {
    if (positionals.length)
      throw new UsageError(`kemu node add: unexpected argument "${positionals[0]}" (names are node-N)`);
    const node = await addNode(name, { timeoutMs });
    process.stdout.write(`${node.name} added (InternalIP ${node.address}) and Ready\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError(`kemu node ${action}: give exactly one NODE, e.g. kemu node ${action} node-2`);
  const node = positionals[0];
  if (action === "remove") await removeNode(name, node, { timeoutMs });
  if (action === "stop") await stopNode(name, node, { timeoutMs });
  if (action === "start") await startNode(name, node, { timeoutMs });
  const done = {
    remove: "removed",
    stop: "stopped (agent killed, underlay link down)",
    start: "started and Ready",
  };
  process.stdout.write(`${node} ${done[action]}\n`);
  return 0;
}

/**
 * Where NODE lives: a local cluster's namespace, else a Docker-mode node container (the Compose
 * project is the cluster's name there); the command then runs through `docker exec`.
 */
async function execArgv(named: string | undefined, node: string, command: string[]): Promise<string[]> {
  const name = named ?? DEFAULT_CLUSTER_NAME;
  let badName: Error | undefined;
  try {
    validateClusterName(name);
  } catch (e) {
    badName = e as Error; // may still be a Compose project's name
  }
  let missing: NoSuchClusterError | undefined;
  if (!badName) {
    try {
      return inNetns(await nodeNamespace(name, node), command);
    } catch (e) {
      // A local cluster that lacks NODE answers for itself; only a missing cluster looks further.
      if (!(e instanceof NoSuchClusterError)) throw e;
      missing = e;
    }
  }
  const containers = await dockerNodeContainers();
  if (!containers.length) {
    if (badName) throw new UsageError(`kemu node exec: ${badName.message}`);
    throw missing!;
  }
  const c = pickNodeContainer(containers, node, named);
  const tty = process.stdin.isTTY && process.stdout.isTTY ? ["-t"] : [];
  return ["docker", "exec", "-i", ...tty, c.id, ...command];
}

async function nodeExec(argv: string[]): Promise<number> {
  // Everything after the first "--" is the command, untouched by flag parsing.
  const dash = argv.indexOf("--");
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const { values, positionals } = parseFlags("node exec", own, { name: { type: "string" } });
  if (values.help) {
    process.stdout.write(nodeExecHelp);
    return 0;
  }
  const [node, ...extra] = positionals;
  const command = dash < 0 ? extra : [...extra, ...argv.slice(dash + 1)];
  if (!node) throw new UsageError("kemu node exec: NODE is required\nRun 'kemu node exec --help' for usage.");
  if (command.length === 0) {
    throw new UsageError(`kemu node exec: no command given; e.g. kemu node exec ${node} -- ip addr`);
  }
  const named = values.name as string | undefined;
  const argvFull = await execArgv(named, node, command);
  const child = spawn(argvFull[0], argvFull.slice(1), { stdio: "inherit" });
  // The terminal's Ctrl-C reaches the command itself (same process group); we stay to report its
  // exit code. Signals sent to us alone are passed on.
  const ignore = () => {};
  const relay = (sig: NodeJS.Signals) => child.kill(sig);
  process.on("SIGINT", ignore);
  process.on("SIGTERM", relay);
  process.on("SIGHUP", relay);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
      });
    });
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", relay);
    process.off("SIGHUP", relay);
  }
}
