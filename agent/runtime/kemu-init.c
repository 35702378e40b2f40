// kemu-init: starts one container of a pod, the part runc and containerd-shim play on a real node.
//
//   kemu-init --netns /run/netns/POD --hosts F --resolv F --hostname NAME --exit-file F
//             [--cwd DIR] [--bind SRC:DST]... -- PROGRAM [ARGS...]
//
// The process that runs this stays as the container's shim: it joins the pod's network namespace,
// makes new UTS, IPC, mount and PID namespaces, forks the container (PID 1 of its PID namespace)
// and waits for it, then writes its exit status (128+N for signal N) to the exit file. Shims are
// started in their own session, so they outlive agent restarts and a restarted agent can still
// tell how a container ended. The container gets the pod's hostname, the pod's /etc/hosts and
// /etc/resolv.conf bind-mounted over the node's, its own /proc (and /sys for the pod's network),
// the environment this program was started with (the container's, PATH included), and dies with
// its shim. Arguments are only ever argv elements: no shell is involved.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "kemu-init: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(127);
}

static void usage(void) {
  fprintf(stderr,
          "usage: kemu-init --netns PATH --hosts FILE --resolv FILE --hostname NAME --exit-file FILE"
          " [--cwd DIR] -- PROGRAM [ARGS...]\n");
  exit(2);
}

static void bind_file(const char *src, const char *dst) {
  if (mount(src, dst, NULL, MS_BIND, NULL) != 0) die("bind-mount", dst);
}

/** mkdir -p: the mount point of a --bind (e.g. /var/run/secrets/kubernetes.io/serviceaccount). */
static void make_dirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) die("path too long", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("mkdir", buf);
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("mkdir", buf);
}

#define MAX_BINDS 16

int main(int argc, char **argv) {
  const char *netns = NULL, *hosts = NULL, *resolv = NULL, *hostname = NULL, *exit_file = NULL;
  const char *cwd = "/";
  const char *binds[MAX_BINDS];
  int nbinds = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--netns") == 0) netns = v;
    else if (strcmp(a, "--hosts") == 0) hosts = v;
    else if (strcmp(a, "--resolv") == 0) resolv = v;
    else if (strcmp(a, "--hostname") == 0) hostname = v;
    else if (strcmp(a, "--exit-file") == 0) exit_file = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
    else if (strcmp(a, "--bind") == 0 && nbinds < MAX_BINDS && strchr(v, ':')) binds[nbinds++] = v;
    else usage();
  }
  if (!netns || !hosts || !resolv || !hostname || !exit_file || i >= argc) usage();
  char **command = &argv[i];

  int fd = open(netns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open network namespace", netns);
  if (setns(fd, CLONE_NEWNET) != 0) die("join network namespace", netns);
  close(fd);
  if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWPID) != 0) die("unshare", NULL);
  // Nothing mounted from here on may propagate back to the node.
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private", NULL);
  if (sethostname(hostname, strlen(hostname)) != 0) die("sethostname", hostname);
  bind_file(hosts, "/etc/hosts");
  bind_file(resolv, "/etc/resolv.conf");
  for (int b = 0; b < nbinds; b++) {
    char spec[4096];
    if (snprintf(spec, sizeof spec, "%s", binds[b]) >= (int)sizeof spec) die("bind too long", binds[b]);
    char *colon = strchr(spec, ':');
    *colon = '\0';
    make_dirs(colon + 1);
    if (mount(spec, colon + 1, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind-mount", colon + 1);
  }

  pid_t child = fork();
  if (child < 0) die("fork", NULL);
  if (child == 0) {
    // PID 1 of the new PID namespace: the container itself.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl", NULL);
    // Its own mount namespace again, so /proc and /sys below are the container's alone.
    if (unshare(CLONE_NEWNS) != 0) die("unshare", "mount");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount", "/proc");
    // /tmp stays the node's: containers run the node's programs, and a kemu checkout, data dir or
    // test work dir may well live under /tmp.
    // /sys shows the devices of the namespace that mounts it: the pod's. Best effort.
    (void)mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
    if (chdir(cwd) != 0) die("chdir", cwd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(command[0], command);
    die("exec", command[0]);
  }

  // The shim: wait for the container, record how it ended. Signals meant for the container are
  // sent to it directly; the shim ignores the terminal ones so it always gets to write the file.
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid", NULL);
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", exit_file);
  FILE *f = fopen(tmp, "w");
  if (!f) die("write", tmp);
  fprintf(f, "%d\n", code);
  if (fclose(f) != 0 || rename(tmp, exit_file) != 0) die("write", exit_file);
  return 0;
}
