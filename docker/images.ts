// `npm run images [-- --offline] [--force] [--mirror URL]`: builds the kemu image that
// docker-compose.yml runs. With --offline it first builds the base the Dockerfile expects
// (node:24-bookworm-slim) without any image registry: debootstrap's minimal Debian bookworm, plus
// the Node 24 binary and npm this checkout runs on, imported with `docker import`. Prints sizes
// and build times.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

export const BASE_IMAGE = "node:24-bookworm-slim";
export const KEMU_IMAGE = process.env.KEMU_IMAGE ?? "kemu:dev";
/** Marks a base built here, so a re-run reuses it and never mistakes it for the official one. */
const OFFLINE_LABEL = "io.kemu.offline-base";

const root = resolve(import.meta.dirname, "..");

function run(argv: string[], opts: { quiet?: boolean } = {}): string {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: root,
    stdio: ["ignore", opts.quiet ? "pipe" : "inherit", "inherit"],
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited with ${r.status ?? r.signal}`);
  return r.stdout?.toString() ?? "";
}

function imageLabel(image: string, label: string): string | undefined {
  const r = spawnSync("docker", ["image", "inspect", "-f", `{{index .Config.Labels "${label}"}}`, image]);
  return r.status === 0 ? r.stdout.toString().trim() : undefined;
}

export function imageSize(image: string): number {
  return Number(run(["docker", "image", "inspect", "-f", "{{.Size}}", image], { quiet: true }).trim());
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

/** npm's own folder next to the running node, or the system's (Debian puts it in /usr/lib). */
function npmDir(): string {
  for (const dir of [
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm"),
    "/usr/lib/node_modules/npm",
    "/usr/local/lib/node_modules/npm",
  ]) {
    if (existsSync(join(dir, "bin", "npm-cli.js"))) return dir;
  }
  throw new Error("npm not found next to node or in /usr/lib/node_modules; install npm");
}

function hostCaBundle(): string | undefined {
  const candidates = [
    process.env.NODE_EXTRA_CA_CERTS,
    process.env.SSL_CERT_FILE,
    "/etc/ssl/certs/ca-certificates.crt",
  ];
  return candidates.find((f): f is string => !!f && existsSync(f));
}

function buildOfflineBase(mirror: string): void {
  if (Number(process.versions.node.split(".")[0]) !== 24) {
    throw new Error(
      `the offline base needs Node 24 to copy in; this is ${process.version} (run via npm run)`,
    );
  }
  for (const tool of ["debootstrap", "docker", "tar"]) {
    if (spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool]).status !== 0) {
      throw new Error(
        `${tool} is required for --offline (apt-get install ${tool === "docker" ? "docker.io" : tool})`,
      );
    }
  }
  const dir = join(root, "build", "base-rootfs");
  const tarball = `${dir}.tar`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  try {
    run(["debootstrap", "--variant=minbase", "bookworm", dir, mirror], { quiet: true });
    // The official image's layout: node and npm under /usr/local.
    cpSync(process.execPath, join(dir, "usr/local/bin/node"));
    cpSync(npmDir(), join(dir, "usr/local/lib/node_modules/npm"), { recursive: true, dereference: true });
    symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", join(dir, "usr/local/bin/npm"));
    symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", join(dir, "usr/local/bin/npx"));
    // The CAs this machine trusts (an egress proxy's, say), so npm in the build reaches the registry
    // the way the host does. The base never leaves this machine.
    const env: string[] = [];
    const ca = hostCaBundle();
    if (ca) {
      mkdirSync(join(dir, "etc/ssl/certs"), { recursive: true });
      cpSync(ca, join(dir, "etc/ssl/certs/kemu-host-ca.crt"), { dereference: true });
      env.push("--change", "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/kemu-host-ca.crt");
    }
    for (const sub of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      for (const f of readdirSync(join(dir, sub))) {
        if (f.endsWith(".deb") || f.endsWith("_Packages") || f.endsWith("Release") || f.endsWith(".gpg")) {
          rmSync(join(dir, sub, f), { force: true });
        }
      }
    }
    // Through a file rather than memory: the root file system is a few hundred MB.
    run(["tar", "--numeric-owner", "-C", dir, "-cf", tarball, "."]);
    run(
      [
        "docker",
        "import",
        "--change",
        `LABEL ${OFFLINE_LABEL}=debootstrap`,
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        'CMD ["node"]',
        ...env,
        tarball,
        BASE_IMAGE,
      ],
      { quiet: true },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(tarball, { force: true });
  }
  console.log(`base ${BASE_IMAGE} (debootstrap bookworm + Node ${process.version}) built in ${seconds(t0)}`);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      offline: { type: "boolean" },
      force: { type: "boolean" },
      mirror: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`Usage: npm run images -- [--offline] [--force] [--mirror URL]

Builds ${KEMU_IMAGE} (docker/Dockerfile) for docker-compose.yml.
  --offline      first build the base ${BASE_IMAGE} locally (debootstrap + this Node 24), for
                 machines that reach no image registry; reused on later runs
  --force        rebuild that base even if a locally built one exists
  --mirror URL   Debian mirror for debootstrap (default http://deb.debian.org/debian)`);
    return;
  }
  if (values.offline) {
    if (values.force || imageLabel(BASE_IMAGE, OFFLINE_LABEL) !== "debootstrap") {
      buildOfflineBase(values.mirror ?? "http://deb.debian.org/debian");
    } else {
      console.log(`base ${BASE_IMAGE}: reusing the one built offline earlier (--force rebuilds it)`);
    }
  }
  const t0 = performance.now();
  run(["docker", "build", "-q", "-t", KEMU_IMAGE, "-f", "docker/Dockerfile", "."], { quiet: true });
  console.log(`image ${KEMU_IMAGE} built in ${seconds(t0)}`);
  for (const image of [BASE_IMAGE, KEMU_IMAGE]) {
    console.log(`  ${image}: ${(imageSize(image) / 1e6).toFixed(0)} MB`);
  }
}

if (import.meta.main) {
  try {
    main();
  } catch (e) {
    console.error(`images: ${(e as Error).message}`);
    process.exit(1);
  }
}
