// `kemu forward`: the local cluster's bridge from the host's loopback to the API's Unix socket.

import { parseFlags, UsageError } from "./args.ts";
import { parseHostPort, startForwarder } from "./local/forward.ts";

export const forwardHelp = `Usage: kemu forward --listen HOST:PORT --to-unix PATH

Accepts TCP connections on HOST:PORT and pipes each, byte for byte, to the Unix socket PATH, until
SIGINT/SIGTERM. 'kemu up' runs one so the host reaches an API listening in another namespace.

Flags:
  --listen HOST:PORT   address to listen on, e.g. 127.0.0.1:6443; required
  --to-unix PATH       Unix socket to connect each connection to; required
  -h, --help           show this help
`;

const flags = {
  listen: { type: "string" },
  "to-unix": { type: "string" },
} as const;

export async function forwardCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags("forward", argv, flags);
  if (values.help) {
    process.stdout.write(forwardHelp);
    return;
  }
  if (positionals.length) throw new UsageError(`kemu forward: unexpected argument "${positionals[0]}"`);
  const listen = values.listen as string | undefined;
  const target = values["to-unix"] as string | undefined;
  if (!listen) throw new UsageError("kemu forward: --listen is required");
  if (!target) throw new UsageError("kemu forward: --to-unix is required");
  let hostPort: { host: string; port: number };
  try {
    hostPort = parseHostPort(listen);
  } catch (e) {
    throw new UsageError(`kemu forward: --listen: ${(e as Error).message}`);
  }
  const fwd = await startForwarder(hostPort.host, hostPort.port, target);
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  process.stdout.write(`kemu forward: ${hostPort.host}:${fwd.port} -> ${target}\n`);
  await stopped;
  await fwd.close();
}
