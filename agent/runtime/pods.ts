// The pod worker: level-triggered reconciliation of the pods bound to this node. For each pod it
// compares what the API wants with what exists (sandbox namespace, CNI attachment, container
// processes) and fixes the difference; the same sync adopts containers after an agent restart,
// restarts crashed ones with back-off, honours grace periods on deletion, and removes orphans.
// Container probes (probes.ts) run beside it: their results decide each container's started and
// ready, and a failed liveness or startup probe has the sync kill the container for a restart.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { rfc3339 } from "../../emulator/duration.ts";
import type { Container, Pod } from "../../emulator/types.ts";
import { type ApiClient, ApiClientError } from "../api-client.ts";
import type { Cni } from "../cni/cni.ts";
import { run } from "../exec.ts";
import { containerCommand, resolveImage } from "../images/catalog.ts";
import type { EventSink } from "./events.ts";
import { Limiter } from "./limiter.ts";
import { type DnsSettings, hostsFile, resolvConf } from "./pod-files.ts";
import {
  backoffMs,
  type ContainerRecord,
  type PodRecord,
  podStatus,
  shouldRestart,
  type Terminated,
} from "./pod-record.ts";
import { killGracePeriodSeconds, killMessage, Prober } from "./probes.ts";
import { isAlive, readExitCode, signal, startContainer, targetPid } from "./process.ts";

export interface PodWorkerOptions {
  client: ApiClient;
  node: string;
  hostIP: string;
  dataDir: string;
  /** Pod network namespaces are named `${netnsPrefix}${uid-prefix}`. */
  netnsPrefix: string;
  cni: Cni;
  events: EventSink;
  images: { agnhost: string; busyboxBin: string; nginx: string; kemu: string };
  /** The kemu-init binary that starts containers. */
  init: string;
  /**
   * In-cluster API access for pods, as a kubelet mounts a service account token: the credentials
   * land in /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT name
   * the `kubernetes` Service.
   */
  serviceAccount?: { token: string; ca: string; apiHost: string; apiPort: number };
  dns: DnsSettings;
  /** Sandboxes wired at once (netns + CNI ADD); the rest wait their turn, oldest first. */
  sandboxLimit?: number;
}

const TICK_MS = 500;
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export class PodWorker {
  private readonly o: PodWorkerOptions;
  private readonly desired = new Map<string, Pod>();
  private readonly records = new Map<string, PodRecord>();
  private readonly lastStatus = new Map<string, string>();
  private readonly busy = new Set<string>();
  private readonly again = new Set<string>();
  /** Sandboxes adopted after a restart whose network has not been CNI-CHECKed yet. */
  private readonly unchecked = new Set<string>();
  private timer?: NodeJS.Timeout;
  private readonly prober: Prober;
  private readonly sandboxes: Limiter;

  constructor(opts: PodWorkerOptions) {
    this.o = opts;
    this.sandboxes = new Limiter(opts.sandboxLimit ?? availableParallelism());
    mkdirSync(this.podsDir, { recursive: true });
    // A changed probe result syncs its pod at once: status (endpoints follow readiness) or a kill.
    this.prober = new Prober({ events: opts.events, onChange: (uid) => this.schedule(uid) });
  }

  private get podsDir(): string {
    return join(this.o.dataDir, "pods");
  }

  /** Loads records of pods this node ran before a restart, so their containers are adopted. */
  loadRecords(): void {
    for (const uid of readdirSync(this.podsDir)) {
      try {
        const rec = JSON.parse(readFileSync(join(this.podsDir, uid, "record.json"), "utf8")) as PodRecord;
        this.records.set(rec.uid, rec);
        if (rec.sandboxReady) this.unchecked.add(rec.uid);
      } catch {}
    }
  }

  start(): void {
    this.timer = setInterval(() => this.syncAll(), TICK_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.prober.stop();
  }

  /** Informer callback: the desired state of one pod changed (undefined = gone from the API). */
  update(key: string, pod: Pod | undefined): void {
    if (pod) this.desired.set(key, pod);
    else this.desired.delete(key);
    const uid =
      pod?.metadata.uid ?? [...this.records.values()].find((r) => `${r.namespace}/${r.name}` === key)?.uid;
    if (uid) this.schedule(uid);
  }

  /** Every pod known either way, plus namespaces nobody claims, on a timer. */
  syncAll(): void {
    const uids = new Set<string>([...this.records.keys()]);
    for (const pod of this.desired.values()) uids.add(pod.metadata.uid!);
    for (const uid of uids) this.schedule(uid);
  }

  private schedule(uid: string): void {
    if (this.busy.has(uid)) {
      this.again.add(uid);
      return;
    }
    this.busy.add(uid);
    void this.sync(uid)
      .catch((e) => console.error(`kemu agent: pod ${uid}: ${(e as Error).message}`))
      .finally(() => {
        this.busy.delete(uid);
        if (this.again.delete(uid)) this.schedule(uid);
      });
  }

  private podFor(uid: string): Pod | undefined {
    for (const p of this.desired.values()) if (p.metadata.uid === uid) return p;
    return undefined;
  }

  private dir(uid: string): string {
    return join(this.podsDir, uid);
  }

  private readonly saved = new Map<string, string>();

  /** Persists the record when it changed (the tick runs every 500 ms for every pod). */
  private save(rec: PodRecord): void {
    const text = JSON.stringify(rec);
    if (this.saved.get(rec.uid) === text) return;
    writeFileSync(join(this.dir(rec.uid), "record.json"), text);
    this.saved.set(rec.uid, text);
  }

  private async sync(uid: string): Promise<void> {
    const pod = this.podFor(uid);
    let rec = this.records.get(uid);
    if (!pod || pod.metadata.deletionTimestamp) {
      if (rec) await this.terminate(rec, pod);
      else if (pod) await this.confirmDeletion(pod);
      return;
    }
    if (!rec) {
      rec = this.newRecord(pod);
      this.records.set(uid, rec);
      mkdirSync(join(this.dir(uid), "logs"), { recursive: true });
      this.save(rec);
    }
    if (rec.sandboxReady && this.unchecked.delete(uid)) await this.checkSandbox(pod, rec);
    if (!rec.sandboxReady) {
      if ((rec.sandboxRetryAt ?? 0) > Date.now()) return this.report(pod, rec);
      // Waiting for a turn may outlast the pod: its deletion then finds nothing to undo.
      await this.sandboxes.run(async () => {
        const now = this.podFor(uid);
        if (now && !now.metadata.deletionTimestamp) await this.createSandbox(now, rec);
      });
      if (!rec.sandboxReady) return this.report(pod, rec);
    }
    this.observe(rec);
    // Probe workers exist before the containers start (kubelet's AddPod precedes their creation).
    this.prober.sync(pod, rec);
    this.killUnhealthy(pod, rec);
    await this.startDue(pod, rec);
    this.save(rec);
    await this.report(pod, rec);
  }

  private newRecord(pod: Pod): PodRecord {
    const uid = pod.metadata.uid!;
    const record = (c: Container, init: boolean): ContainerRecord => ({
      name: c.name,
      image: c.image ?? "",
      init,
      restartCount: 0,
      id: `${uid.slice(0, 8)}-${c.name}-0`,
      state: "waiting",
      waiting: { reason: init ? "PodInitializing" : "ContainerCreating" },
    });
    return {
      uid,
      namespace: pod.metadata.namespace!,
      name: pod.metadata.name!,
      netns: `${this.o.netnsPrefix}${uid.slice(0, 8)}`,
      sandboxReady: false,
      startTime: rfc3339(new Date()),
      containers: [
        ...(pod.spec.initContainers ?? []).map((c) => record(c, true)),
        ...pod.spec.containers.map((c) => record(c, false)),
      ],
    };
  }

  // ---- sandbox ----

  private cniPod(rec: PodRecord, pod?: Pod) {
    const portMappings = (pod?.spec.containers ?? []).flatMap((c) =>
      (c.ports ?? [])
        .filter((p) => p.hostPort)
        .map((p) => ({
          hostPort: p.hostPort!,
          containerPort: p.containerPort,
          protocol: (p.protocol ?? "TCP").toLowerCase(),
          hostIP: p.hostIP ?? "",
        })),
    );
    return {
      containerId: rec.uid,
      netnsPath: `/run/netns/${rec.netns}`,
      ifName: "eth0",
      k8s: { namespace: rec.namespace, name: rec.name, uid: rec.uid },
      portMappings,
    };
  }

  private async createSandbox(pod: Pod, rec: PodRecord): Promise<void> {
    await run(["ip", "netns", "add", rec.netns], { allowFail: true });
    try {
      const result = await this.o.cni.add(this.cniPod(rec, pod));
      rec.podIP = result.podIP;
      rec.sandboxReady = true;
      rec.sandboxError = undefined;
      const dir = this.dir(rec.uid);
      writeFileSync(join(dir, "hosts"), hostsFile(pod, rec.podIP, this.o.dns.clusterDomain));
      writeFileSync(join(dir, "resolv.conf"), resolvConf(pod, this.o.dns));
      if (this.o.serviceAccount) this.serviceAccountDir(rec.namespace);
    } catch (e) {
      const msg = (e as Error).message;
      rec.sandboxError = msg;
      rec.sandboxRetryAt = Date.now() + 5000;
      for (const c of rec.containers) c.waiting = { reason: "ContainerCreating", message: msg };
      this.o.events.emit(
        pod,
        "Warning",
        "FailedCreatePodSandBox",
        `Failed to create pod sandbox: plugin type="bridge" failed (add): ${msg}`,
      );
      await this.o.cni.del(this.cniPod(rec, pod)).catch(() => {});
    }
    this.save(rec);
  }

  private readonly serviceAccountDirs = new Set<string>();

  /**
   * The credentials every pod of a namespace mounts (the token is the node's, the same for all):
   * one directory per namespace, written once, rather than four more files for every pod.
   */
  private serviceAccountDir(namespace: string): string {
    const sa = join(this.o.dataDir, "serviceaccount", namespace);
    if (this.serviceAccountDirs.has(sa) || !this.o.serviceAccount) return sa;
    mkdirSync(sa, { recursive: true, mode: 0o700 });
    writeFileSync(join(sa, "token"), this.o.serviceAccount.token, { mode: 0o600 });
    writeFileSync(join(sa, "ca.crt"), this.o.serviceAccount.ca);
    writeFileSync(join(sa, "namespace"), namespace);
    this.serviceAccountDirs.add(sa);
    return sa;
  }

  /**
   * CNI CHECK of an adopted sandbox. When its network is broken (or gone), kubelet's answer
   * applies: the sandbox is killed and re-created, and its containers start again.
   */
  private async checkSandbox(pod: Pod, rec: PodRecord): Promise<void> {
    try {
      await this.o.cni.check(this.cniPod(rec, pod));
      return;
    } catch (e) {
      this.o.events.emit(
        pod,
        "Normal",
        "SandboxChanged",
        `Pod sandbox changed, it will be killed and re-created. (CNI CHECK: ${(e as Error).message})`,
      );
    }
    for (const c of rec.containers) {
      if (c.state === "running") signal(targetPid(c.shimPid!) ?? c.shimPid, "SIGKILL");
    }
    await this.removeSandbox(rec, pod);
    rec.sandboxReady = false;
    rec.podIP = undefined;
    // The containers start again in the new sandbox at once, as kubelet does, each one restart on.
    for (const c of rec.containers) {
      if (c.state !== "running") continue;
      c.lastTerminated = {
        exitCode: 137,
        reason: "Error",
        startedAt: c.startedAt,
        finishedAt: rfc3339(new Date()),
      };
      c.restartCount++;
      c.id = `${rec.uid.slice(0, 8)}-${c.name}-${c.restartCount}`;
      c.state = "waiting";
      c.waiting = { reason: "ContainerCreating" };
      c.nextStartAt = undefined;
      c.shimPid = undefined;
    }
    this.save(rec);
  }

  // ---- containers ----

  /** Notices containers that exited since the last look. */
  private observe(rec: PodRecord): void {
    for (const c of rec.containers) {
      if (c.state !== "running") continue;
      const code = c.exitFile ? readExitCode(c.exitFile) : undefined;
      if (code === undefined && isAlive(c.shimPid)) continue;
      const exitCode = code ?? 137;
      c.state = "terminated";
      c.terminated = {
        exitCode,
        reason: exitCode === 0 ? "Completed" : "Error",
        startedAt: c.startedAt,
        finishedAt: rfc3339(new Date()),
      };
      c.shimPid = undefined;
    }
  }

  /**
   * Containers whose liveness or startup probe failed: SIGTERM with the Killing event kubelet
   * records, then SIGKILL once the grace period (the probe's terminationGracePeriodSeconds, else
   * the pod's) is over. The restart follows when the exit is observed.
   */
  private killUnhealthy(pod: Pod, rec: PodRecord): void {
    const policy = pod.spec.restartPolicy ?? "Always";
    for (const c of rec.containers) {
      if (c.init || c.state !== "running") continue;
      if (c.killAt !== undefined) {
        if (Date.now() >= c.killAt) signal(targetPid(c.shimPid!) ?? c.shimPid, "SIGKILL");
        continue;
      }
      const reason = this.prober.killReason(rec.uid, c);
      if (!reason) continue;
      const spec = pod.spec.containers.find((x) => x.name === c.name);
      c.killReason = reason;
      c.killAt = Date.now() + killGracePeriodSeconds(pod, spec, reason) * 1000;
      this.o.events.emit(pod, "Normal", "Killing", killMessage(c.name, reason, policy));
      signal(targetPid(c.shimPid!), "SIGTERM");
    }
  }

  private async startDue(pod: Pod, rec: PodRecord): Promise<void> {
    const policy = pod.spec.restartPolicy ?? "Always";
    const specs = new Map(
      [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => [c.name, c]),
    );
    // Init containers run one at a time, in order; app containers only after all succeeded.
    for (const c of rec.containers) {
      if (c.init) {
        if (c.state === "terminated" && c.terminated!.exitCode === 0) continue;
        await this.advance(pod, rec, c, specs.get(c.name)!, policy);
        return;
      }
    }
    for (const c of rec.containers) if (!c.init) await this.advance(pod, rec, c, specs.get(c.name)!, policy);
  }

  private async advance(
    pod: Pod,
    rec: PodRecord,
    c: ContainerRecord,
    spec: Container,
    policy: string,
  ): Promise<void> {
    if (c.state === "running") return;
    if (c.state === "terminated") {
      // A container killed for a failed liveness/startup probe restarts whatever its exit code.
      const restart = c.killReason
        ? policy !== "Never"
        : shouldRestart(policy, c.terminated!.exitCode, c.init);
      if (!restart) return;
      c.killReason = undefined;
      c.killAt = undefined;
      // Crash loop: remember the ending, wait out the back-off, then start the next attempt.
      c.lastTerminated = c.terminated as Terminated;
      c.restartCount++;
      c.id = `${rec.uid.slice(0, 8)}-${c.name}-${c.restartCount}`;
      c.state = "waiting";
      const delay = backoffMs(c.restartCount);
      c.nextStartAt = Date.now() + delay;
      c.waiting = {
        reason: "CrashLoopBackOff",
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${rec.name}_${rec.namespace}(${rec.uid})`,
      };
      this.o.events.emit(
        pod,
        "Warning",
        "BackOff",
        `Back-off restarting failed container ${c.name} in pod ${rec.name}_${rec.namespace}(${rec.uid})`,
      );
      return;
    }
    if ((c.nextStartAt ?? 0) > Date.now()) return;
    const image = resolveImage(spec.image ?? "");
    if (!image.ok) {
      if (c.waiting?.reason !== "ErrImagePull" && c.waiting?.reason !== "ImagePullBackOff") {
        this.o.events.emit(
          pod,
          "Warning",
          "Failed",
          `Failed to pull image "${spec.image}": ${image.message}`,
        );
      }
      c.waiting = {
        reason: c.waiting?.reason === "ErrImagePull" ? "ImagePullBackOff" : "ErrImagePull",
        message: image.message,
      };
      c.nextStartAt = Date.now() + 5000;
      return;
    }
    const dir = this.dir(rec.uid);
    const runDir = join(dir, "run", c.name);
    mkdirSync(runDir, { recursive: true });
    mkdirSync(join(dir, "logs", c.name), { recursive: true });
    const sa =
      this.o.serviceAccount && pod.spec.automountServiceAccountToken !== false
        ? this.o.serviceAccount
        : undefined;
    const env = {
      ...(sa ? { KUBERNETES_SERVICE_HOST: sa.apiHost, KUBERNETES_SERVICE_PORT: String(sa.apiPort) } : {}),
      ...containerEnv(pod, spec, rec, this.o.node, this.o.hostIP),
    };
    const cmd = containerCommand(
      { image: spec.image!, command: spec.command, args: spec.args, env },
      {
        ...this.o.images,
        runDir,
      },
    );
    for (const f of cmd.files ?? []) writeFileSync(f.path, f.content);
    const exitFile = join(runDir, `exit-${c.restartCount}`);
    rmSync(exitFile, { force: true });
    c.shimPid = await startContainer({
      init: this.o.init,
      netns: rec.netns,
      hostname: pod.spec.hostname ?? rec.name,
      hostsFile: join(dir, "hosts"),
      resolvFile: join(dir, "resolv.conf"),
      argv: cmd.argv,
      env: { ...cmd.env, HOSTNAME: pod.spec.hostname ?? rec.name },
      cwd: (spec.workingDir as string | undefined) ?? "/",
      logFile: join(dir, "logs", c.name, `${c.restartCount}.log`),
      exitFile,
      binds: sa ? [{ src: this.serviceAccountDir(rec.namespace), dst: SERVICE_ACCOUNT_DIR }] : [],
    });
    c.exitFile = exitFile;
    c.state = "running";
    c.startedAtMs = Date.now();
    c.startedAt = rfc3339(c.startedAtMs);
    c.killReason = undefined;
    c.killAt = undefined;
    c.waiting = undefined;
    c.terminated = undefined;
    if (c.restartCount === 0) {
      this.o.events.emit(
        pod,
        "Normal",
        "Pulled",
        `Container image "${spec.image}" already present on machine`,
      );
      this.o.events.emit(pod, "Normal", "Created", `Created container ${c.name}`);
    }
    this.o.events.emit(pod, "Normal", "Started", `Started container ${c.name}`);
  }

  // ---- status ----

  private async report(pod: Pod, rec: PodRecord): Promise<void> {
    const status = podStatus(pod, rec, this.o.hostIP, new Date(), (c) => this.prober.status(rec.uid, c));
    const text = JSON.stringify({
      ...status,
      conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: "" })),
    });
    if (this.lastStatus.get(rec.uid) === text) return;
    try {
      await this.o.client.request(
        "PATCH",
        `/api/v1/namespaces/${rec.namespace}/pods/${rec.name}/status`,
        { metadata: { uid: rec.uid }, status },
        "application/merge-patch+json",
      );
      this.lastStatus.set(rec.uid, text);
    } catch (e) {
      if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e;
    }
  }

  // ---- termination ----

  private async terminate(rec: PodRecord, pod: Pod | undefined): Promise<void> {
    this.prober.forget(rec.uid);
    const running = rec.containers.filter((c) => c.state === "running" && isAlive(c.shimPid));
    if (running.length && rec.killAt === undefined) {
      const grace = pod?.metadata.deletionGracePeriodSeconds ?? pod?.spec.terminationGracePeriodSeconds ?? 0;
      rec.killAt = Date.now() + grace * 1000;
      for (const c of running) {
        if (pod) this.o.events.emit(pod, "Normal", "Killing", `Stopping container ${c.name}`);
        signal(targetPid(c.shimPid!), "SIGTERM");
      }
      this.save(rec);
    }
    if (running.length && (rec.killAt ?? 0) > Date.now()) return; // still within the grace period
    for (const c of running) signal(targetPid(c.shimPid!) ?? c.shimPid, "SIGKILL");
    await this.removeSandbox(rec, pod);
    this.records.delete(rec.uid);
    this.lastStatus.delete(rec.uid);
    this.saved.delete(rec.uid);
    rmSync(this.dir(rec.uid), { recursive: true, force: true });
    if (pod) await this.confirmDeletion(pod);
  }

  /** Tells the API the pod is gone from this node (the kubelet's final delete). */
  private async confirmDeletion(pod: Pod): Promise<void> {
    try {
      await this.o.client.request(
        "DELETE",
        `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`,
        {
          apiVersion: "v1",
          kind: "DeleteOptions",
          gracePeriodSeconds: 0,
          preconditions: { uid: pod.metadata.uid },
        },
      );
    } catch (e) {
      if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e;
    }
  }

  private async removeSandbox(rec: PodRecord, pod?: Pod): Promise<void> {
    await killNetnsProcesses(rec.netns);
    await this.o.cni
      .del(this.cniPod(rec, pod))
      .catch((e) => console.error(`kemu agent: CNI DEL ${rec.uid}: ${e.message}`));
    await run(["ip", "netns", "del", rec.netns], { allowFail: true });
  }

  /** Namespaces with our prefix that no record owns (e.g. left by a crash mid-creation). */
  async removeOrphanNamespaces(): Promise<void> {
    const { stdout } = await run(["ip", "netns", "list"], { allowFail: true });
    const owned = new Set([...this.records.values()].map((r) => r.netns));
    for (const line of stdout.split("\n")) {
      const name = line.split(" ")[0];
      if (!name?.startsWith(this.o.netnsPrefix) || owned.has(name)) continue;
      await killNetnsProcesses(name);
      await this.o.cni
        .del({
          containerId: "",
          netnsPath: `/run/netns/${name}`,
          ifName: "eth0",
          k8s: { namespace: "", name: "", uid: "" },
        })
        .catch(() => {});
      await run(["ip", "netns", "del", name], { allowFail: true });
    }
  }

  /** Pods this node no longer has in the API once the informer synced: terminate them. */
  reconcileOrphans(): void {
    for (const rec of this.records.values()) if (!this.podFor(rec.uid)) this.schedule(rec.uid);
  }

  /** Where a container's log files are, for the logs endpoint. */
  logPath(namespace: string, name: string, container: string, previous: boolean): string | undefined {
    const rec = [...this.records.values()].find((r) => r.namespace === namespace && r.name === name);
    const c = rec?.containers.find((x) => x.name === container);
    if (!rec || !c) return undefined;
    const n = previous ? c.restartCount - 1 : c.restartCount;
    return n < 0 ? undefined : join(this.dir(rec.uid), "logs", container, `${n}.log`);
  }

  /** The container's main process, for exec. */
  containerPid(namespace: string, name: string, container: string): number | undefined {
    const rec = [...this.records.values()].find((r) => r.namespace === namespace && r.name === name);
    const c = rec?.containers.find((x) => x.name === container);
    return c?.state === "running" && c.shimPid ? targetPid(c.shimPid) : undefined;
  }

  podRecord(namespace: string, name: string): PodRecord | undefined {
    return [...this.records.values()].find((r) => r.namespace === namespace && r.name === name);
  }
}

async function killNetnsProcesses(netns: string): Promise<void> {
  const { stdout } = await run(["ip", "netns", "pids", netns], { allowFail: true });
  for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) signal(pid, "SIGKILL");
}

/** Container environment: spec env with $(VAR) left to the image layer, fieldRefs resolved. */
function containerEnv(
  pod: Pod,
  c: Container,
  rec: PodRecord,
  node: string,
  hostIP: string,
): Record<string, string> {
  const fields: Record<string, string | undefined> = {
    "metadata.name": rec.name,
    "metadata.namespace": rec.namespace,
    "metadata.uid": rec.uid,
    "spec.nodeName": node,
    "spec.serviceAccountName": (pod.spec.serviceAccountName as string | undefined) ?? "default",
    "status.podIP": rec.podIP,
    "status.podIPs": rec.podIP,
    "status.hostIP": hostIP,
    "status.hostIPs": hostIP,
  };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else {
      const path = (e.valueFrom as { fieldRef?: { fieldPath?: string } } | undefined)?.fieldRef?.fieldPath;
      const v = path ? fields[path] : undefined;
      if (v !== undefined) env[e.name] = v;
    }
  }
  return env;
}
