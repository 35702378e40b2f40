// The `kemu` command: dispatches to subcommands, each with its own --help.

import { UsageError } from "./args.ts";

const help = `kemu - a Kubernetes networking emulator on real Linux namespaces

Usage: kemu <command> [flags]

Commands:
  up        start a local multi-node cluster made of network namespaces (returns once all nodes are Ready)
  down      stop a local cluster and remove every namespace, link and process it made
  status    list local clusters, their processes and nodes
  node      run a command inside a node (kemu node exec NODE -- CMD...), or add, remove, stop
            and start nodes of a local cluster
  restart   restart a local cluster's control plane or a node's agent
  api       run the control plane (Kubernetes API server + controllers) in the foreground
  agent     run a node agent in the foreground (inside the node's network namespace)
  forward   pipe a loopback TCP port to the API's Unix socket (kemu up runs it)
  dns       run the cluster DNS server (what the kube-dns pods run)

Run 'kemu <command> --help' for a command's flags.
`;

/** A command resolves to its exit code, or to nothing for 0. */
// biome-ignore lint/suspicious/noConfusingVoidType: subcommands without an exit code return Promise<void>
type Command = (argv: string[]) => Promise<number | void>;

// Each command's module is loaded only when it runs: a DNS pod or an agent then carries none of
// the API server's modules (sqlite, x509, Hono), about 20 MB of heap and code per process.
const commands: Record<string, () => Promise<Command>> = {
  up: async () => (await import("./up-command.ts")).upCommand,
  down: async () => (await import("./down-command.ts")).downCommand,
  status: async () => (await import("./status-command.ts")).statusCommand,
  node: async () => (await import("./node-command.ts")).nodeCommand,
  restart: async () => (await import("./restart-command.ts")).restartCommand,
  api: async () => (await import("./api-command.ts")).apiCommand,
  agent: async () => (await import("./agent-command.ts")).agentCommand,
  dns: async () => (await import("./dns-command.ts")).dnsCommand,
  forward: async () => (await import("./forward-command.ts")).forwardCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help);
    return name ? 0 : 2;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    process.stderr.write(`kemu: unknown command "${name}"\n\n${help}`);
    return 2;
  }
  try {
    return (await (await load())(rest)) ?? 0;
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
