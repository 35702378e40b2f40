// kemu-exec: runs commands for the agent. The agent is a Node process of about 100 MB, and each
// fork of it copies its page tables and blocks its event loop until the child has exec'd; a pod's
// sandbox takes five such commands (ip netns add, the CNI plugins). This small process does the
// spawning instead (posix_spawn, which vforks), many commands at once, and sends back each one's
// exit status and output.
//
// Protocol, little-endian u32 fields, one frame per command each way:
//   request  (stdin):  len, id, timeout_ms, argc, envc, input_len (0xffffffff: no stdin), flags,
//                      then argc and envc NUL-terminated strings, with DETACH a log file path,
//                      then input_len bytes
//   response (stdout): len, id, status, timed_out, stdout_len, stderr_len, then the two outputs
// status: the exit code (>= 0), -N when killed by signal N, or -1000 - errno when it could not be
// started. With DETACH (a container's shim) the command gets its own session, cwd "/", /dev/null
// for stdin and the log file for its output, and the response comes at once with its pid as the
// status; the helper only reaps it when it ends. A command over its timeout gets SIGTERM (as Node's execFile does). argv and env arrive as
// separate strings and go to posix_spawn as they are: no shell ever sees them. The helper ends
// when its stdin closes or the agent dies (PR_SET_PDEATHSIG); commands it started run on.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NO_INPUT 0xffffffffu
#define MAX_FRAME (256u << 20)
#define MAX_OUTPUT (64u << 20)
#define DETACH 1u

struct buf {
  char *data;
  size_t len, cap;
};

struct job {
  uint32_t id;
  pid_t pid;
  int in_fd, out_fd, err_fd; // -1 once closed
  const char *input;
  size_t input_len, input_off;
  char *frame; // owns input
  struct buf out, err;
  int64_t deadline_ms; // 0 = none
  int timed_out, exited, status, detached;
  struct job *next;
};

static struct job *jobs;
static struct buf request, reply;
static int sigchld_pipe[2];

static void die(const char *what) {
  fprintf(stderr, "kemu-exec: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) die("realloc");
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void append_u32(struct buf *b, uint32_t v) { append(b, &v, 4); }

static uint32_t get_u32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  ssize_t r = write(sigchld_pipe[1], "c", 1);
  (void)r;
  errno = saved;
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// The path posix_spawn gets: argv[0] itself when it names a path, else the first executable match
// on the PATH of the command's own environment (what execvp does after Node sets environ).
static const char *resolve(const char *file, char *const *envp, char *out, size_t size, int *err) {
  if (strchr(file, '/')) return file;
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char *const *e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  *err = ENOENT;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dir = (size_t)(end - p);
    if (dir + 1 + strlen(file) + 1 <= size) {
      if (dir == 0) snprintf(out, size, "%s", file);
      else snprintf(out, size, "%.*s/%s", (int)dir, p, file);
      struct stat st;
      if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(out, X_OK) == 0) return out;
        *err = EACCES;
      }
    }
    if (!*end) return NULL;
    p = end;
  }
}

static void finish(struct job *j);
static void reply_status(uint32_t id, int status);

static void signal_defaults(posix_spawnattr_t *attr, short more) {
  // The command starts with default signal handling and nothing blocked, whatever the helper has.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGCHLD);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setsigdefault(attr, &defaults);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | more);
}

// A container's shim: answered at once with its pid, reaped whenever it ends.
static void start_detached(struct job *j, char **argv, char **envp, const char *log) {
  char path[PATH_MAX];
  int rc = 0;
  const char *file = resolve(argv[0], envp, path, sizeof path, &rc);
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) rc = errno;
  if (file && fd >= 0) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    posix_spawn_file_actions_addchdir_np(&fa, "/");
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    signal_defaults(&attr, POSIX_SPAWN_SETSID);
    rc = posix_spawn(&j->pid, file, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  if (fd >= 0) close(fd);
  reply_status(j->id, rc ? -1000 - rc : j->pid);
  free(j->frame);
  j->frame = NULL;
  if (rc) {
    free(j);
    return;
  }
  j->next = jobs;
  jobs = j;
}

static void start(char *frame, size_t len) {
  if (len < 28) {
    fprintf(stderr, "kemu-exec: short request\n");
    exit(1);
  }
  struct job *j = calloc(1, sizeof *j);
  if (!j) die("calloc");
  j->frame = frame;
  j->id = get_u32(frame + 4);
  uint32_t timeout = get_u32(frame + 8), argc = get_u32(frame + 12), envc = get_u32(frame + 16);
  uint32_t input_len = get_u32(frame + 20), flags = get_u32(frame + 24);
  j->in_fd = j->out_fd = j->err_fd = -1;
  j->detached = (flags & DETACH) != 0;
  if (argc == 0 || argc > len || envc > len) {
    fprintf(stderr, "kemu-exec: bad request\n");
    exit(1);
  }
  char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(envc + 1, sizeof *envp);
  if (!argv || !envp) die("calloc");
  char *p = frame + 28, *end = frame + len, *log = NULL;
  for (uint32_t i = 0; i < argc + envc + (j->detached ? 1 : 0); i++) {
    char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) {
      fprintf(stderr, "kemu-exec: bad request strings\n");
      exit(1);
    }
    if (i < argc) argv[i] = p;
    else if (i < argc + envc) envp[i - argc] = p;
    else log = p;
    p = z + 1;
  }
  if (j->detached) {
    start_detached(j, argv, envp, log);
    free(argv);
    free(envp);
    return;
  }
  if (input_len != NO_INPUT) {
    if (input_len > (size_t)(end - p)) {
      fprintf(stderr, "kemu-exec: bad request input\n");
      exit(1);
    }
    j->input = p;
    j->input_len = input_len;
  }

  int in[2] = {-1, -1}, out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) die("pipe2");
  if (input_len != NO_INPUT && pipe2(in, O_CLOEXEC) < 0) die("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in[0] >= 0) posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  signal_defaults(&attr, 0);

  char path[PATH_MAX];
  int rc = 0;
  const char *file = resolve(argv[0], envp, path, sizeof path, &rc);
  if (file) rc = posix_spawn(&j->pid, file, &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(argv);
  free(envp);
  close(out[1]);
  close(err[1]);
  if (in[0] >= 0) close(in[0]);
  j->next = jobs;
  jobs = j;
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    if (in[1] >= 0) close(in[1]);
    j->exited = 1;
    j->status = -1000 - rc;
    finish(j);
    return;
  }
  j->out_fd = out[0];
  j->err_fd = err[0];
  j->in_fd = in[1];
  set_nonblock(j->out_fd);
  set_nonblock(j->err_fd);
  if (j->in_fd >= 0) {
    set_nonblock(j->in_fd);
    if (j->input_len == 0) close_fd(&j->in_fd);
  }
  if (timeout) j->deadline_ms = now_ms() + timeout;
}

static void reply_status(uint32_t id, int status) {
  append_u32(&reply, 20);
  append_u32(&reply, id);
  append_u32(&reply, (uint32_t)status);
  append_u32(&reply, 0);
  append_u32(&reply, 0);
  append_u32(&reply, 0);
}

static void forget(struct job *j) {
  for (struct job **pp = &jobs; *pp; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  }
  free(j->out.data);
  free(j->err.data);
  free(j->frame);
  free(j);
}

// Sends the reply and forgets the job once it exited and both outputs reached end of file.
static void finish(struct job *j) {
  if (!j->exited || j->out_fd >= 0 || j->err_fd >= 0) return;
  if (j->detached) {
    forget(j); // answered when it started
    return;
  }
  close_fd(&j->in_fd);
  append_u32(&reply, (uint32_t)(20 + j->out.len + j->err.len));
  append_u32(&reply, j->id);
  append_u32(&reply, (uint32_t)j->status);
  append_u32(&reply, (uint32_t)j->timed_out);
  append_u32(&reply, (uint32_t)j->out.len);
  append_u32(&reply, (uint32_t)j->err.len);
  if (j->out.len) append(&reply, j->out.data, j->out.len);
  if (j->err.len) append(&reply, j->err.data, j->err.len);
  forget(j);
}

static void reap(void) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (struct job *j = jobs; j; j = j->next) {
      if (j->pid != pid || j->exited) continue;
      j->exited = 1;
      j->status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
      finish(j);
      break;
    }
  }
}

static void drain(struct job *j, int *fd, struct buf *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      if (b->len + (size_t)n > MAX_OUTPUT) {
        // Past the agent's output limit: stop the command, as execFile's maxBuffer does.
        kill(j->pid, SIGTERM);
        close_fd(fd);
        return;
      }
      append(b, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_fd(fd); // end of file, or an error that ends the stream the same way
    return;
  }
}

static void feed(struct job *j) {
  while (j->input_off < j->input_len) {
    ssize_t n = write(j->in_fd, j->input + j->input_off, j->input_len - j->input_off);
    if (n > 0) {
      j->input_off += (size_t)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    break; // EPIPE: the command does not read its input
  }
  close_fd(&j->in_fd);
}

int main(void) {
  // Ends with the agent even before its end of stdin is seen closed (and if it died already).
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("prctl");
  if (getppid() != parent || parent == 1) return 0;
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe2");
  struct sigaction sa = {0};
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  set_nonblock(0);
  set_nonblock(1);
  int input_open = 1;

  // Until the agent goes away (its end of stdin closes): then nobody is left to answer.
  while (input_open) {
    size_t nj = 0;
    for (struct job *j = jobs; j; j = j->next) nj++;
    struct pollfd *fds = calloc(3 + 3 * nj, sizeof *fds);
    struct job **owner = calloc(3 + 3 * nj, sizeof *owner);
    if (!fds || !owner) die("calloc");
    size_t n = 0;
    fds[n++] = (struct pollfd){.fd = sigchld_pipe[0], .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = reply.len ? 1 : -1, .events = POLLOUT};
    int64_t now = now_ms(), wait = -1;
    for (struct job *j = jobs; j; j = j->next) {
      if (j->deadline_ms && !j->exited) {
        if (j->deadline_ms <= now) {
          if (!j->timed_out) kill(j->pid, SIGTERM);
          j->timed_out = 1;
        } else if (wait < 0 || j->deadline_ms - now < wait) {
          wait = j->deadline_ms - now;
        }
      }
      if (j->out_fd >= 0) owner[n] = j, fds[n++] = (struct pollfd){.fd = j->out_fd, .events = POLLIN};
      if (j->err_fd >= 0) owner[n] = j, fds[n++] = (struct pollfd){.fd = j->err_fd, .events = POLLIN};
      if (j->in_fd >= 0) owner[n] = j, fds[n++] = (struct pollfd){.fd = j->in_fd, .events = POLLOUT};
    }
    if (poll(fds, n, (int)wait) < 0 && errno != EINTR) die("poll");

    for (size_t i = 3; i < n; i++) {
      struct job *j = owner[i];
      if (!fds[i].revents) continue;
      if (fds[i].fd == j->out_fd) drain(j, &j->out_fd, &j->out);
      else if (fds[i].fd == j->err_fd) drain(j, &j->err_fd, &j->err);
      else if (fds[i].fd == j->in_fd) feed(j);
    }
    free(owner);
    free(fds);
    char tmp[64];
    while (read(sigchld_pipe[0], tmp, sizeof tmp) > 0) {
    }
    reap();
    // Jobs whose outputs just closed after their exit was seen.
    for (struct job *j = jobs, *next; j; j = next) {
      next = j->next;
      finish(j);
    }

    char chunk[65536];
    for (;;) {
      ssize_t r = read(0, chunk, sizeof chunk);
      if (r > 0) {
        append(&request, chunk, (size_t)r);
        continue;
      }
      if (r == 0) input_open = 0;
      else if (errno != EAGAIN && errno != EINTR) die("read");
      break;
    }
    while (request.len >= 4) {
      uint32_t len = get_u32(request.data);
      if (len < 24 || len > MAX_FRAME) {
        fprintf(stderr, "kemu-exec: bad frame length %u\n", len);
        return 1;
      }
      if (request.len < 4 + (size_t)len) break;
      char *frame = malloc(4 + (size_t)len);
      if (!frame) die("malloc");
      memcpy(frame, request.data, 4 + (size_t)len);
      memmove(request.data, request.data + 4 + len, request.len - 4 - len);
      request.len -= 4 + (size_t)len;
      start(frame, 4 + (size_t)len);
    }

    while (reply.len) {
      ssize_t w = write(1, reply.data, reply.len);
      if (w > 0) {
        memmove(reply.data, reply.data + w, reply.len - (size_t)w);
        reply.len -= (size_t)w;
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
      return 0; // the agent closed its end
    }
  }
  return 0;
}
