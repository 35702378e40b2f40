// The `kemu` command: dispatches to subcommands, each with its own --help.

import { agentCommand } from "./agent-command.ts";
import { apiCommand } from "./api-command.ts";
import { UsageError } from "./args.ts";
import { dnsCommand } from "./dns-command.ts";
import { downCommand } from "./down-command.ts";
import { forwardCommand } from "./forward-command.ts";
import { nodeCommand } from "./node-command.ts";
import { restartCommand } from "./restart-command.ts";
import { statusCommand } from "./status-command.ts";
import { upCommand } from "./up-command.ts";

const help = `kemu - a Kubernetes networking emulator on real Linux namespaces

Usage: kemu <command> [flags]

Commands:
  up        start a local multi-node cluster made of network namespaces (returns once all nodes are Ready)
  down      stop a local cluster and remove every namespace, link and process it made
  status    list local clusters, their processes and nodes
  node      run a command inside a node (kemu node exec NODE -- CMD...)
  restart   restart a local cluster's control plane or a node's agent
  api       run the control plane (Kubernetes API server + controllers) in the foreground
  agent     run a node agent in the foreground (inside the node's network namespace)
  forward   pipe a loopback TCP port to the API's Unix socket (kemu up runs it)
  dns       run the cluster DNS server (what the kube-dns pods run)

Run 'kemu <command> --help' for a command's flags.
`;

/** A command resolves to its exit code, or to nothing for 0. */
// biome-ignore lint/suspicious/noConfusingVoidType: subcommands without an exit code return Promise<void>
const commands: Record<string, (argv: string[]) => Promise<number | void>> = {
  up: upCommand,
  down: downCommand,
  status: statusCommand,
  node: nodeCommand,
  restart: restartCommand,
  api: apiCommand,
  agent: agentCommand,
  dns: dnsCommand,
  forward: forwardCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`kemu: unknown command "${name}"\n\n${help}`);
    return 2;
  }
  try {
    return (await command(rest)) ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    process.stderr.write(`kemu ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
