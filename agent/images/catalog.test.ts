import { describe, expect, it } from "vitest";
import {
  BUSYBOX_APPLETS,
  CATALOG,
  type ContainerSpec,
  containerCommand,
  type ImagePaths,
  nginxConfig,
  parseImageReference,
  resolveImage,
  WELCOME_PAGE,
} from "./catalog.ts";

const paths: ImagePaths = {
  agnhost: "/opt/kemu/images/agnhost",
  busyboxBin: "/opt/kemu/images/busybox/bin",
  nginx: "/usr/sbin/nginx",
  kemu: "/opt/kemu/bin/kemu",
  runDir: "/var/lib/kemu/pods/uid/run/c",
};
const cmd = (spec: Partial<ContainerSpec> & { image: string }) =>
  containerCommand({ env: {}, ...spec }, paths);
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

describe("parseImageReference", () => {
  it("normalizes Docker Hub names", () => {
    expect(parseImageReference("busybox")).toEqual({ domain: "docker.io", path: "library/busybox" });
    expect(parseImageReference("busybox:1.36")).toMatchObject({ path: "library/busybox", tag: "1.36" });
    expect(parseImageReference("docker.io/library/busybox:latest")).toMatchObject({
      domain: "docker.io",
      path: "library/busybox",
      tag: "latest",
    });
    expect(parseImageReference("index.docker.io/library/nginx")).toMatchObject({ domain: "docker.io" });
    expect(parseImageReference("someuser/app")).toEqual({ domain: "docker.io", path: "someuser/app" });
  });

  it("splits registry, path, tag and digest", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(parseImageReference(`registry.k8s.io/e2e-test-images/agnhost:2.52@${digest}`)).toEqual({
      domain: "registry.k8s.io",
      path: "e2e-test-images/agnhost",
      tag: "2.52",
      digest,
    });
    expect(parseImageReference(`nginx@${digest}`)).toEqual({
      domain: "docker.io",
      path: "library/nginx",
      digest,
    });
    expect(parseImageReference("localhost:5000/app:v1")).toEqual({
      domain: "localhost:5000",
      path: "app",
      tag: "v1",
    });
    expect(parseImageReference("localhost/app")).toEqual({ domain: "localhost", path: "app" });
    expect(parseImageReference("Registry.K8s.IO/pause:3.10")).toMatchObject({ domain: "registry.k8s.io" });
  });

  it("rejects malformed references", () => {
    expect(parseImageReference("")).toBeTypeOf("string");
    expect(parseImageReference("BusyBox")).toMatch(/lowercase/);
    expect(parseImageReference("busybox:")).toMatch(/tag/);
    expect(parseImageReference("busybox:a b")).toMatch(/tag/);
    expect(parseImageReference("busybox@sha256:xyz")).toMatch(/digest/);
    expect(parseImageReference("a//b")).toBeTypeOf("string");
    expect(parseImageReference(" busybox")).toBeTypeOf("string");
  });
});

describe("resolveImage", () => {
  it.each([
    ["busybox", "busybox", "latest"],
    ["busybox:1.36.1", "busybox", "1.36.1"],
    ["docker.io/library/busybox:stable", "busybox", "stable"],
    ["registry.k8s.io/e2e-test-images/busybox:1.36.1-1", "busybox", "1.36.1-1"],
    ["nginx", "nginx", "latest"],
    ["nginx:1.27", "nginx", "1.27"],
    ["docker.io/library/nginx:alpine", "nginx", "alpine"],
    ["registry.k8s.io/e2e-test-images/nginx:1.14-4", "nginx", "1.14-4"],
    ["registry.k8s.io/e2e-test-images/agnhost:2.52", "agnhost", "2.52"],
    ["k8s.gcr.io/e2e-test-images/agnhost:2.39", "agnhost", "2.39"],
    ["gcr.io/kubernetes-e2e-test-images/agnhost:2.8", "agnhost", "2.8"],
    ["registry.k8s.io/pause:3.10", "pause", "3.10"],
    ["k8s.gcr.io/pause", "pause", "latest"],
  ])("%s -> %s", (image, name, tag) => {
    const r = resolveImage(image);
    expect(r).toMatchObject({ ok: true, image: name, tag });
  });

  it("records a digest (and no default tag with one)", () => {
    const digest = `sha256:${"0".repeat(64)}`;
    expect(resolveImage(`busybox@${digest}`)).toMatchObject({ ok: true, tag: undefined, digest });
    expect(resolveImage(`busybox:1.36@${digest}`)).toMatchObject({ ok: true, tag: "1.36", digest });
  });

  it("runs kemu's DNS server for the kemu/dns image", () => {
    expect(cmd({ image: "kemu/dns:0.1.0", args: ["--zone", "cluster.local"] }).argv).toEqual([
      "/opt/kemu/bin/kemu",
      "dns",
      "--zone",
      "cluster.local",
    ]);
  });

  it("reports images outside the catalog with the list of available ones", () => {
    expect(resolveImage("foo/bar:1")).toEqual({
      ok: false,
      message:
        'image "foo/bar:1" is not in kemu\'s catalog of node programs; available: busybox, nginx, ' +
        "registry.k8s.io/e2e-test-images/agnhost, registry.k8s.io/pause, kemu/dns",
    });
    expect(resolveImage("quay.io/busybox").ok).toBe(false);
    expect(resolveImage("registry.k8s.io/e2e-test-images/agnhostx:1").ok).toBe(false);
  });

  it("rejects empty and invalid names", () => {
    const empty = resolveImage("");
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.message).toContain("busybox, nginx");
    const bad = resolveImage("Busybox");
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.message).toMatch(/not a valid image reference/);
  });

  it("every catalog repository resolves to its entry", () => {
    for (const e of CATALOG)
      for (const r of e.repositories) expect(resolveImage(r)).toMatchObject({ image: e.name });
  });
});

describe("containerCommand: Kubernetes command/args semantics", () => {
  it("uses ENTRYPOINT + CMD without command and args", () => {
    expect(cmd({ image: "registry.k8s.io/e2e-test-images/agnhost:2.52" }).argv).toEqual([
      paths.agnhost,
      "pause",
    ]);
  });

  it("args replace CMD", () => {
    expect(
      cmd({ image: "registry.k8s.io/e2e-test-images/agnhost:2.52", args: ["netexec", "--http-port=8080"] })
        .argv,
    ).toEqual([paths.agnhost, "netexec", "--http-port=8080"]);
  });

  it("command replaces ENTRYPOINT and drops CMD", () => {
    expect(
      cmd({ image: "registry.k8s.io/e2e-test-images/agnhost:2.52", command: ["/agnhost", "serve-hostname"] })
        .argv,
    ).toEqual([paths.agnhost, "serve-hostname"]);
    expect(cmd({ image: "busybox", command: ["sleep"], args: ["3600"] }).argv).toEqual(["sleep", "3600"]);
  });

  it("empty command/args count as unset", () => {
    expect(cmd({ image: "busybox", command: [], args: [] }).argv).toEqual(["sh"]);
  });

  it("expands $(VAR) in command and args from the container env", () => {
    const c = cmd({
      image: "busybox",
      command: ["/bin/sh", "-c", "echo $(MSG) $$(MSG) $(NOPE) $HOME"],
      args: ["$(POD_NAME)"],
      env: { MSG: "hi", POD_NAME: "web-0" },
    });
    expect(c.argv).toEqual([`${paths.busyboxBin}/sh`, "-c", "echo hi $(MSG) $(NOPE) $HOME", "web-0"]);
  });

  it("expands env values against earlier ones", () => {
    const c = cmd({ image: "busybox", env: { A: "a", B: "$(A)/b" }, args: ["echo", "$(B)"] });
    expect(c.env).toMatchObject({ A: "a", B: "a/b" });
    expect(c.argv).toEqual(["echo", "a/b"]);
  });

  it("adds the image PATH unless the pod env sets one", () => {
    expect(cmd({ image: "busybox" }).env).toEqual({
      PATH: `${paths.busyboxBin}:/usr/sbin:/usr/bin:/sbin:/bin`,
    });
    expect(cmd({ image: "busybox", env: { PATH: "/mine", X: "1" } }).env).toEqual({ PATH: "/mine", X: "1" });
    expect(cmd({ image: "registry.k8s.io/pause:3.10" }).env.PATH).toBe(SYSTEM_PATH);
    expect(cmd({ image: "registry.k8s.io/e2e-test-images/agnhost:2.52" }).env.PATH).toBe(
      `${SYSTEM_PATH}:${paths.busyboxBin}`,
    );
  });

  it("does not modify the spec", () => {
    const spec = { image: "busybox", command: ["/bin/sh"], args: ["$(A)"], env: { A: "1" } };
    const copy = structuredClone(spec);
    containerCommand(spec, paths);
    expect(spec).toEqual(copy);
  });

  it("throws for images outside the catalog", () => {
    expect(() => cmd({ image: "foo/bar" })).toThrow(/catalog/);
  });
});

describe("containerCommand: busybox", () => {
  it("runs sh by default", () => {
    expect(cmd({ image: "busybox" })).toEqual({
      image: "busybox",
      argv: ["sh"],
      env: { PATH: `${paths.busyboxBin}:/usr/sbin:/usr/bin:/sbin:/bin` },
    });
  });

  it("maps absolute applet paths to the busybox links", () => {
    expect(cmd({ image: "busybox", command: ["/bin/sh", "-c", "true"] }).argv[0]).toBe(
      `${paths.busyboxBin}/sh`,
    );
    expect(cmd({ image: "busybox", command: ["/bin/sleep", "1"] }).argv[0]).toBe(`${paths.busyboxBin}/sleep`);
    expect(cmd({ image: "busybox", command: ["/usr/bin/wget"] }).argv[0]).toBe(`${paths.busyboxBin}/wget`);
    expect(cmd({ image: "busybox", command: ["/sbin/ip"] }).argv[0]).toBe(`${paths.busyboxBin}/ip`);
    expect(cmd({ image: "busybox", command: ["/usr/sbin/nslookup"] }).argv[0]).toBe(
      `${paths.busyboxBin}/nslookup`,
    );
  });

  it("leaves other programs alone", () => {
    expect(cmd({ image: "busybox", command: ["/bin/bash"] }).argv[0]).toBe("/bin/bash");
    expect(cmd({ image: "busybox", command: ["/bin/busybox", "sh"] }).argv[0]).toBe("/bin/busybox");
    expect(cmd({ image: "busybox", command: ["/opt/bin/sh"] }).argv[0]).toBe("/opt/bin/sh");
    expect(cmd({ image: "busybox", command: ["/bin/sub/sh"] }).argv[0]).toBe("/bin/sub/sh");
    expect(cmd({ image: "busybox", command: ["wget"] }).argv[0]).toBe("wget");
  });

  it("knows the usual applets", () => {
    for (const a of ["sh", "sleep", "wget", "nc", "nslookup", "ping", "ip", "cat", "env", "hostname"]) {
      expect(BUSYBOX_APPLETS.has(a)).toBe(true);
    }
  });
});

describe("containerCommand: agnhost and pause", () => {
  const agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.52";

  it("maps /agnhost (and agnhost-2) to the built binary", () => {
    expect(cmd({ image: agnhost, command: ["/agnhost", "netexec", "--http-port", "8080"] }).argv).toEqual([
      paths.agnhost,
      "netexec",
      "--http-port",
      "8080",
    ]);
    expect(cmd({ image: agnhost, command: ["/agnhost-2"], args: ["pause"] }).argv).toEqual([
      paths.agnhost,
      "pause",
    ]);
  });

  it("runs other commands of the agnhost image as node programs", () => {
    expect(cmd({ image: agnhost, command: ["/bin/sh", "-c", "sleep 1"] }).argv).toEqual([
      "/bin/sh",
      "-c",
      "sleep 1",
    ]);
  });

  it("pause runs agnhost pause", () => {
    expect(cmd({ image: "registry.k8s.io/pause:3.10" }).argv).toEqual([paths.agnhost, "pause"]);
    expect(cmd({ image: "registry.k8s.io/pause:3.10", command: ["/pause"] }).argv).toEqual([
      paths.agnhost,
      "pause",
    ]);
  });
});

describe("containerCommand: nginx", () => {
  const conf = `${paths.runDir}/nginx.conf`;

  it("runs nginx in the foreground with a generated config", () => {
    const c = cmd({ image: "nginx:1.27" });
    expect(c.argv).toEqual([paths.nginx, "-e", "stderr", "-g", "daemon off;", "-c", conf]);
    expect(c.env).toEqual({ PATH: SYSTEM_PATH });
    expect(c.files?.map((f) => f.path)).toEqual([
      conf,
      `${paths.runDir}/index.html`,
      `${paths.runDir}/50x.html`,
    ]);
    const text = c.files![0].content;
    expect(text).not.toMatch(/^daemon /m); // given with -g: a duplicate would be an error
    expect(text).toMatch(/^master_process off;$/m);
    expect(text).toContain(`pid "${paths.runDir}/nginx.pid";`);
    expect(text).toContain("error_log stderr notice;");
    expect(text).toContain("access_log /dev/stdout;");
    expect(text).toMatch(/listen 80;/);
    expect(text).toContain(`client_body_temp_path "${paths.runDir}/client_body_temp";`);
    expect(text).toContain(`root "${paths.runDir}";`);
    expect(c.files![1].content).toBe(WELCOME_PAGE);
    expect(WELCOME_PAGE).toContain("<title>Welcome to nginx!</title>");
  });

  it("writes daemon off itself when no -g sets it", () => {
    const c = cmd({ image: "nginx", command: ["nginx"] });
    expect(c.argv).toEqual([paths.nginx, "-e", "stderr", "-c", conf]);
    expect(c.files![0].content).toMatch(/^daemon off;$/m);
  });

  it("honours explicit command and args", () => {
    const c = cmd({ image: "nginx", command: ["nginx", "-g", "daemon off; worker_processes 2;"] });
    expect(c.argv).toEqual([
      paths.nginx,
      "-e",
      "stderr",
      "-g",
      "daemon off; worker_processes 2;",
      "-c",
      conf,
    ]);
    expect(c.files![0].content).not.toMatch(/^worker_processes/m);
    expect(cmd({ image: "nginx", args: ["nginx-debug", "-g", "daemon off;"] }).argv[0]).toBe(paths.nginx);
    expect(cmd({ image: "nginx", command: ["/usr/sbin/nginx", "-T"] }).argv).toEqual([
      paths.nginx,
      "-e",
      "stderr",
      "-T",
      "-c",
      conf,
    ]);
  });

  it("keeps a config given with -c, and an -e given", () => {
    const c = cmd({ image: "nginx", command: ["nginx", "-c", "/etc/nginx/nginx.conf", "-e", "stderr"] });
    expect(c.argv).toEqual([paths.nginx, "-c", "/etc/nginx/nginx.conf", "-e", "stderr"]);
    expect(c.files).toBeUndefined();
    expect(cmd({ image: "nginx", command: ["nginx", "-c/etc/n.conf"] }).files).toBeUndefined();
  });

  it("strips the image's entrypoint script", () => {
    expect(
      cmd({ image: "nginx", command: ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"] }).argv[0],
    ).toBe(paths.nginx);
    expect(cmd({ image: "nginx", command: ["/docker-entrypoint.sh", "sh", "-c", "x"] }).argv).toEqual([
      "sh",
      "-c",
      "x",
    ]);
  });

  it("runs other programs of the nginx image unchanged", () => {
    const c = cmd({ image: "nginx", command: ["sh", "-c", "sleep 1"] });
    expect(c.argv).toEqual(["sh", "-c", "sleep 1"]);
    expect(c.files).toBeUndefined();
  });

  it("quotes paths in the config", () => {
    expect(nginxConfig('/tmp/a b"c')).toContain('root "/tmp/a b\\"c";');
  });
});
