// The `kemu` command: dispatches to subcommands, each with its own --help.

import { agentCommand } from "./agent-command.ts";
import { apiCommand } from "./api-command.ts";
import { UsageError } from "./args.ts";

const help = `kemu - a Kubernetes networking emulator on real Linux namespaces

Usage: kemu <command> [flags]

Commands:
  api       run the control plane (Kubernetes API server + controllers) in the foreground
  agent     run a node agent in the foreground (inside the node's network namespace)

Run 'kemu <command> --help' for a command's flags.
`;

const commands: Record<string, (argv: string[]) => Promise<void>> = {
  api: apiCommand,
  agent: agentCommand,
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
    await command(rest);
    return 0;
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
