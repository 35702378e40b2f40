// kemu's image catalog. Pods are network namespaces and containers are host processes, so there
// are no container images: an image reference only selects which program installed on the node
// runs, with the image's ENTRYPOINT/CMD and PATH. The catalog knows busybox, nginx, agnhost and
// pause (see CATALOG); anything else fails like an image pull would.
//
// Everything here is pure: resolveImage() parses and looks up a reference, containerCommand()
// computes the argv, environment and generated files (nginx's config) of one container, and the
// pod worker (agent/runtime/pods.ts) writes the files and starts the process.
//
// Kubernetes semantics: `command` replaces the image ENTRYPOINT, `args` replaces CMD (a command
// without args drops CMD); $(VAR) in command, args and env values is expanded like the kubelet
// does (expand.ts).

import { posix } from "node:path";
import { expand, expandEnv, lookupIn } from "./expand.ts";

/** The programs behind the catalog, as laid out by agent/images/build.sh. */
export interface ImagePaths {
  /** The agnhost binary built from agnhost.c (agnhost and pause images). */
  agnhost: string;
  /** Directory with one symlink to /bin/busybox per applet (busybox image). */
  busyboxBin: string;
  /** The nginx binary (nginx image). */
  nginx: string;
  /** This checkout's `kemu` launcher (kemu/dns image). */
  kemu: string;
  /** A writable per-container directory for generated files (nginx config, page, pid, temp dirs). */
  runDir: string;
}

/** What the pod spec says about one container. */
export interface ContainerSpec {
  image: string;
  command?: string[];
  args?: string[];
  /** The container env from the pod spec, in declaration order; values may hold $(VAR) references. */
  env?: Record<string, string>;
}

export interface ContainerFile {
  path: string;
  content: string;
}

export interface ContainerCommand {
  /** Catalog entry that was selected. */
  image: ImageName;
  /** The process to exec; argv[0] is an absolute path or a name looked up in env.PATH. */
  argv: string[];
  /** The container environment: expanded pod env plus the image's PATH (unless the pod sets one). */
  env: Record<string, string>;
  /** Files to write (full path) before starting the process. */
  files?: ContainerFile[];
}

export type ImageName = "busybox" | "nginx" | "agnhost" | "pause" | "dns";

/** A parsed image reference (registry/path:tag@digest), Docker Hub names normalized. */
export interface ImageReference {
  /** Registry host, "docker.io" for Docker Hub. */
  domain: string;
  /** Repository path within the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

export type ResolvedImage =
  | {
      ok: true;
      image: ImageName;
      /** The catalog's name for it, e.g. "registry.k8s.io/e2e-test-images/agnhost". */
      catalogName: string;
      reference: ImageReference;
      /** The tag as given, "latest" when the reference has neither tag nor digest. */
      tag?: string;
      digest?: string;
    }
  | { ok: false; message: string };

export interface CatalogEntry {
  name: ImageName;
  /** How the image is listed (and referred to in messages). */
  displayName: string;
  /** Normalized repositories ("domain/path") that select this entry. */
  repositories: readonly string[];
  /** The image's ENTRYPOINT and CMD, as in its Dockerfile. */
  entrypoint: readonly string[];
  cmd: readonly string[];
  /** PATH of the image's processes. */
  path(paths: ImagePaths): string;
  /** For the README. */
  description: string;
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: "busybox",
    displayName: "busybox",
    repositories: [
      "docker.io/library/busybox",
      "mirror.gcr.io/library/busybox",
      "public.ecr.aws/docker/library/busybox",
      "registry.k8s.io/e2e-test-images/busybox",
      "k8s.gcr.io/e2e-test-images/busybox",
      "registry.k8s.io/busybox",
      "k8s.gcr.io/busybox",
      "gcr.io/google-containers/busybox",
      "gcr.io/google_containers/busybox",
    ],
    entrypoint: [],
    cmd: ["sh"],
    path: (p) => `${p.busyboxBin}:/usr/sbin:/usr/bin:/sbin:/bin`,
    description:
      "the node's busybox applets first in PATH; /bin/X, /usr/bin/X, /sbin/X, /usr/sbin/X run applet X",
  },
  {
    name: "nginx",
    displayName: "nginx",
    repositories: [
      "docker.io/library/nginx",
      "mirror.gcr.io/library/nginx",
      "public.ecr.aws/docker/library/nginx",
      "public.ecr.aws/nginx/nginx",
      "registry.k8s.io/e2e-test-images/nginx",
      "k8s.gcr.io/e2e-test-images/nginx",
    ],
    entrypoint: ["/docker-entrypoint.sh"],
    cmd: ["nginx", "-g", "daemon off;"],
    path: () => SYSTEM_PATH,
    description: 'the node\'s nginx in the foreground on port 80 serving "Welcome to nginx!"',
  },
  {
    name: "agnhost",
    displayName: "registry.k8s.io/e2e-test-images/agnhost",
    repositories: [
      "registry.k8s.io/e2e-test-images/agnhost",
      "k8s.gcr.io/e2e-test-images/agnhost",
      "gcr.io/kubernetes-e2e-test-images/agnhost",
      "gcr.io/k8s-staging-e2e-test-images/agnhost",
    ],
    entrypoint: ["/agnhost"],
    cmd: ["pause"],
    path: (p) => `${SYSTEM_PATH}:${p.busyboxBin}`,
    description: "kemu's C agnhost: netexec, serve-hostname, liveness, connect, pause",
  },
  {
    name: "pause",
    displayName: "registry.k8s.io/pause",
    repositories: [
      "registry.k8s.io/pause",
      "k8s.gcr.io/pause",
      "gcr.io/google-containers/pause",
      "gcr.io/google_containers/pause",
    ],
    entrypoint: ["/pause"],
    cmd: [],
    path: () => SYSTEM_PATH,
    description: "sleeps until SIGTERM/SIGINT (agnhost pause)",
  },
  {
    name: "dns",
    displayName: "kemu/dns",
    repositories: ["docker.io/kemu/dns"],
    entrypoint: ["/kemu-dns"],
    cmd: [],
    path: () => SYSTEM_PATH,
    description: "kemu's cluster DNS server (`kemu dns`), what the control plane deploys as kube-dns",
  },
];

/** Applets of Debian 12's busybox (1.35); absolute /bin/X etc. of these run the applet. */
export const BUSYBOX_APPLETS: ReadonlySet<string> = new Set(
  (
    "[ [[ acpid adjtimex ar arch arp arping ascii ash awk base64 basename bc blkdiscard blkid blockdev brctl " +
    "bunzip2 bzcat bzip2 cal cat chgrp chmod chown chroot chvt clear cmp cp cpio crc32 cttyhack cut date dc dd " +
    "deallocvt depmod devmem df diff dirname dmesg dnsdomainname dos2unix du dumpkmap dumpleases echo egrep " +
    "env expand expr factor fallocate false fatattr fdisk fgrep find findfs fold free freeramdisk fsfreeze " +
    "fstrim ftpget ftpput getopt getty grep groups gunzip gzip halt head hexdump hostid hostname httpd hwclock " +
    "i2cdetect i2cdump i2cget i2cset i2ctransfer id ifconfig ifdown ifup init insmod ionice ip ipcalc ipneigh " +
    "kill killall klogd last less link linux32 linux64 linuxrc ln loadfont loadkmap logger login logname " +
    "logread losetup ls lsmod lsscsi lzcat lzma lzop md5sum mdev microcom mim mkdir mkdosfs mke2fs mkfifo " +
    "mknod mkpasswd mkswap mktemp modinfo modprobe more mount mt mv nameif nc netstat nl nologin nproc " +
    "nsenter nslookup nuke od openvt partprobe paste patch pidof ping ping6 pivot_root poweroff printf ps pwd " +
    "rdate readlink realpath reboot renice reset resume rev rm rmdir rmmod route rpm rpm2cpio run-init " +
    "run-parts sed seq setkeycodes setpriv setsid sh sha1sum sha256sum sha3sum sha512sum shred shuf sleep " +
    "sort ssl_client start-stop-daemon stat strings stty svc svok swapoff swapon switch_root sync sysctl " +
    "syslogd tac tail tar taskset tee telnet test tftp time timeout top touch tr traceroute traceroute6 true " +
    "truncate ts tty ubirename udhcpc udhcpd uevent umount uname uncompress unexpand uniq unix2dos unlink " +
    "unlzma unshare unxz unzip uptime usleep uudecode uuencode vconfig vi w watch watchdog wc wget which who " +
    "whoami xargs xxd xz xzcat yes zcat"
  ).split(" "),
);

// ---- image references ----

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/** Parses registry/path:tag@digest like Docker's reference package; a string is the error. */
export function parseImageReference(ref: string): ImageReference | string {
  if (ref === "") return "empty image name";
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (!DIGEST.test(digest)) return `invalid digest "${digest}"`;
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) return `invalid tag "${tag}"`;
  }
  if (name.length > 255) return "repository name must not be more than 255 characters";
  let domain = "docker.io";
  let path = name;
  const slash = name.indexOf("/");
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (
      first.includes(".") ||
      first.includes(":") ||
      first === "localhost" ||
      first !== first.toLowerCase()
    ) {
      domain = first;
      path = name.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) return `invalid registry "${domain}"`;
  domain = domain.toLowerCase();
  if (domain === "index.docker.io" || domain === "registry-1.docker.io") domain = "docker.io";
  for (const c of path.split("/")) {
    if (!COMPONENT.test(c)) {
      return c.toLowerCase() !== c ? "repository name must be lowercase" : "invalid reference format";
    }
  }
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  return { domain, path, tag, digest };
}

function catalogList(): string {
  return CATALOG.map((e) => e.displayName).join(", ");
}

/** Looks an image reference up in the catalog. */
export function resolveImage(image: string): ResolvedImage {
  if (image.trim() === "") {
    return { ok: false, message: `no image given; kemu's catalog of node programs has: ${catalogList()}` };
  }
  const reference = parseImageReference(image);
  if (typeof reference === "string") {
    return { ok: false, message: `image "${image}" is not a valid image reference: ${reference}` };
  }
  const repository = `${reference.domain}/${reference.path}`;
  const entry = CATALOG.find((e) => e.repositories.includes(repository));
  if (!entry) {
    return {
      ok: false,
      message: `image "${image}" is not in kemu's catalog of node programs; available: ${catalogList()}`,
    };
  }
  return {
    ok: true,
    image: entry.name,
    catalogName: entry.displayName,
    reference,
    tag: reference.tag ?? (reference.digest ? undefined : "latest"),
    digest: reference.digest,
  };
}

// ---- container commands ----

const SYSTEM_DIRS = ["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"];

/** /bin/sh -> <busyboxBin>/sh when sh is a busybox applet; anything else unchanged. */
function busyboxProgram(program: string, busyboxBin: string): string {
  for (const dir of SYSTEM_DIRS) {
    if (!program.startsWith(dir)) continue;
    const name = program.slice(dir.length);
    if (BUSYBOX_APPLETS.has(name)) return posix.join(busyboxBin, name);
  }
  return program;
}

const AGNHOST_PROGRAMS = new Set(["/agnhost", "/agnhost-2", "agnhost", "agnhost-2"]);
const PAUSE_PROGRAMS = new Set(["/pause", "pause"]);
const NGINX_PROGRAMS = new Set(["nginx", "nginx-debug", "/usr/sbin/nginx", "/usr/sbin/nginx-debug"]);
const ENTRYPOINT_SCRIPTS = new Set(["/docker-entrypoint.sh", "docker-entrypoint.sh"]);

/**
 * The process of one container: argv (ENTRYPOINT/CMD overridden by command/args, $(VAR) expanded,
 * image paths mapped to node programs), its environment and any files it needs.
 * Throws for an image resolveImage() rejects.
 */
export function containerCommand(spec: ContainerSpec, paths: ImagePaths): ContainerCommand {
  const resolved = resolveImage(spec.image);
  if (!resolved.ok) throw new Error(resolved.message);
  const entry = CATALOG.find((e) => e.name === resolved.image)!;

  const env = expandEnv(spec.env ?? {});
  const lookup = lookupIn(env);
  const command = (spec.command ?? []).map((s) => expand(s, lookup));
  const args = (spec.args ?? []).map((s) => expand(s, lookup));
  let argv: string[];
  if (command.length) argv = [...command, ...args];
  else argv = [...entry.entrypoint, ...(args.length ? args : entry.cmd)];
  if (!Object.hasOwn(env, "PATH")) env.PATH = entry.path(paths);

  let files: ContainerFile[] | undefined;
  const [program, ...rest] = argv;
  switch (entry.name) {
    case "busybox":
      argv = [busyboxProgram(program, paths.busyboxBin), ...rest];
      break;
    case "agnhost":
      if (AGNHOST_PROGRAMS.has(program)) argv = [paths.agnhost, ...rest];
      else if (PAUSE_PROGRAMS.has(program)) argv = [paths.agnhost, "pause"];
      break;
    case "pause":
      if (PAUSE_PROGRAMS.has(program)) argv = [paths.agnhost, "pause"];
      break;
    case "dns":
      if (program === "/kemu-dns" || program === "kemu-dns") argv = [paths.kemu, "dns", ...rest];
      break;
    case "nginx": {
      // The image's entrypoint script only runs its /docker-entrypoint.d hooks, then exec "$@".
      const run = ENTRYPOINT_SCRIPTS.has(program) ? rest : argv;
      if (run.length === 0) argv = ["true"];
      else if (NGINX_PROGRAMS.has(run[0])) ({ argv, files } = nginxCommand(run.slice(1), paths));
      else argv = run;
      break;
    }
  }
  return files ? { image: entry.name, argv, env, files } : { image: entry.name, argv, env };
}

// ---- nginx ----

/** nginx's command-line options: the letters that take a value (attached or as the next arg). */
function nginxOptions(args: string[]): Map<string, string[]> {
  const opts = new Map<string, string[]>();
  const add = (k: string, v: string) => opts.set(k, [...(opts.get(k) ?? []), v]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-")) continue;
    for (let j = 1; j < a.length; j++) {
      const letter = a[j];
      if ("spceg".includes(letter)) {
        add(letter, j + 1 < a.length ? a.slice(j + 1) : (args[++i] ?? ""));
        break;
      }
      add(letter, "");
    }
  }
  return opts;
}

/** Directive names set in nginx -g values ("daemon off; worker_processes 2;" -> daemon, worker_processes). */
function globalDirectives(values: string[]): Set<string> {
  const names = new Set<string>();
  for (const v of values) {
    for (const part of v.split(";")) {
      const name = part.trim().split(/\s+/)[0];
      if (name) names.add(name);
    }
  }
  return names;
}

function nginxCommand(args: string[], paths: ImagePaths): { argv: string[]; files?: ContainerFile[] } {
  const opts = nginxOptions(args);
  const argv = [paths.nginx];
  // Startup errors (before the config is read) to stderr instead of /var/log/nginx/error.log.
  if (!opts.has("e")) argv.push("-e", "stderr");
  argv.push(...args);
  if (opts.has("c")) return { argv }; // the container brings its own configuration
  const conf = posix.join(paths.runDir, "nginx.conf");
  argv.push("-c", conf);
  return {
    argv,
    files: [
      { path: conf, content: nginxConfig(paths.runDir, globalDirectives(opts.get("g") ?? [])) },
      { path: posix.join(paths.runDir, "index.html"), content: WELCOME_PAGE },
      { path: posix.join(paths.runDir, "50x.html"), content: ERROR_PAGE },
    ],
  };
}

function quote(path: string): string {
  return `"${path.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The nginx image's configuration, with every writable path under runDir: runs in the foreground
 * as one process (no workers switching to "nobody", which could not read runDir), logs to
 * stderr (nginx's own fd 2) and /dev/stdout (the container log file), listens on port 80 (IPv4 and IPv6) and serves the stock welcome page.
 * Main-context directives given with -g are left out (nginx rejects duplicates).
 */
export function nginxConfig(runDir: string, setByFlag: ReadonlySet<string> = new Set()): string {
  const at = (name: string) => quote(posix.join(runDir, name));
  const main: [string, string][] = [
    ["daemon", "off"],
    ["master_process", "off"],
    ["worker_processes", "1"],
    ["pid", at("nginx.pid")],
    ["error_log", "stderr notice"],
  ];
  return [
    "# Written by kemu for the nginx image (agent/images/catalog.ts).",
    ...main.filter(([name]) => !setByFlag.has(name)).map(([name, value]) => `${name} ${value};`),
    "",
    "events {",
    "  worker_connections 1024;",
    "}",
    "",
    "http {",
    "  types {",
    "    text/html html htm shtml;",
    "    text/css css;",
    "    text/plain txt;",
    "    application/javascript js;",
    "    application/json json;",
    "    image/png png;",
    "    image/svg+xml svg;",
    "    image/x-icon ico;",
    "  }",
    "  default_type application/octet-stream;",
    "  access_log /dev/stdout;",
    "  sendfile on;",
    "  keepalive_timeout 65;",
    `  client_body_temp_path ${at("client_body_temp")};`,
    `  proxy_temp_path ${at("proxy_temp")};`,
    `  fastcgi_temp_path ${at("fastcgi_temp")};`,
    `  uwsgi_temp_path ${at("uwsgi_temp")};`,
    `  scgi_temp_path ${at("scgi_temp")};`,
    "",
    "  server {",
    "    listen 80;",
    "    listen [::]:80;",
    "    server_name localhost;",
    `    root ${quote(runDir)};`,
    "    error_page 500 502 503 504 /50x.html;",
    "    # Only the two pages: runDir also holds this file, pid and exit files.",
    "    location = / {",
    "      index index.html;",
    "    }",
    "    location = /index.html {",
    "    }",
    "    location = /50x.html {",
    "    }",
    "    location / {",
    "      return 404;",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
}

export const WELCOME_PAGE = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

const ERROR_PAGE = `<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
</body>
</html>
`;
