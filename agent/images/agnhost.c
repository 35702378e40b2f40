/*
 * agnhost.c - kemu's small re-implementation of the agnhost test image
 * (registry.k8s.io/e2e-test-images/agnhost, k8s.io/kubernetes/test/images/agnhost).
 *
 * kemu pods have no container images: the image catalog (catalog.ts) maps the agnhost image to
 * this program. It implements the subcommands upstream e2e manifests use, with the same flags,
 * endpoints and answers, as one single-threaded poll() loop so that an idle server costs well
 * under a megabyte of RSS instead of the ~30 MB of the Go original:
 *
 *   netexec         HTTP (/, /hostname, /clientip, /echo, /dial, /shell, /exit, ...) + UDP server
 *   serve-hostname  answers every HTTP request, TCP connection or UDP datagram with the hostname
 *   liveness        healthy for 10 s, then /healthz answers 500
 *   connect         one TCP/UDP connection attempt with TIMEOUT/REFUSED/DNS/OTHER diagnostics
 *   pause           sleeps until SIGTERM/SIGINT
 *
 * Differences from upstream: no TLS and no SCTP (--sctp-port is accepted and ignored), /upload
 * is not implemented, every subcommand exits 0 promptly on SIGTERM/SIGINT (upstream's pause exits
 * 2, serve-hostname sleeps 60 s), log lines go to stdout (upstream: stderr), and
 * --http-port=-1 disables the HTTP server. /dial and /shell run in a forked child so that they
 * never block the other connections.
 *
 * Build: gcc -O2 -Wall -Wextra -o agnhost agnhost.c (see build.sh). No libraries beyond libc.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER (64 * 1024)
#define MAX_BODY (1024 * 1024)
#define LINGER_MS 2000
#define MAX_UDP 16

/* ------------------------------------------------------------------------------------------ */
/* process-wide state, signals, logging                                                        */

static volatile sig_atomic_t g_signal;
static long long g_start_ns;
static sigset_t g_waitmask; /* mask while waiting in ppoll/sigsuspend: TERM and INT deliverable */

static void on_signal(int sig) { g_signal = sig; }

static long long mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long mono_ms(void) { return mono_ns() / 1000000; }

static void setup_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  /* Children (/dial, /shell, and orphans when we are PID 1) are reaped automatically. */
  sa.sa_flags = SA_NOCLDWAIT;
  sigaction(SIGCHLD, &sa, NULL);

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &g_waitmask);
  sigdelset(&g_waitmask, SIGTERM);
  sigdelset(&g_waitmask, SIGINT);
}

/* For forked children: default signal handling again (and nothing blocked). */
static void child_reset_signals(void) {
  signal(SIGCHLD, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGTERM:
    return "terminated";
  case SIGINT:
    return "interrupt";
  default:
    return "signal";
  }
}

/* One line in Go's log format ("2006/01/02 15:04:05 message"), flushed at once. */
static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
  char ts[32];
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S", &tm);
  va_list ap;
  va_start(ap, fmt);
  fputs(ts, stdout);
  fputc(' ', stdout);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  va_end(ap);
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...) {
  char ts[32];
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S", &tm);
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fprintf(stderr, "%s ", ts);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void hostname(char *out, size_t n) {
  if (gethostname(out, n) != 0) fatal("Error occurred: failed to get hostname:%s", strerror(errno));
  out[n - 1] = 0;
}

/* Go error strings are lower case: "connection refused", not "Connection refused". */
static void go_strerror(int err, char *out, size_t n) {
  snprintf(out, n, "%s", strerror(err));
  if (out[0] && isupper((unsigned char)out[0]) && !(out[1] && isupper((unsigned char)out[1])))
    out[0] = (char)tolower((unsigned char)out[0]);
}

/* ------------------------------------------------------------------------------------------ */
/* growable buffers                                                                            */

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return;
  size_t c = b->cap ? b->cap : 256;
  while (c < b->len + n + 1) c *= 2;
  char *p = realloc(b->p, c);
  if (!p) abort();
  b->p = p;
  b->cap = c;
}

static void buf_add(struct buf *b, const void *d, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_addf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void buf_consume(struct buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
  }
  if (b->p) b->p[b->len] = 0;
  /* Idle connections should not keep big buffers around. */
  if (b->len == 0 && b->cap > 16384) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

static void buf_free(struct buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static const char *buf_str(const struct buf *b) { return b->p ? b->p : ""; }

/* A JSON string the way Go's encoding/json writes it (HTML-safe escapes included). */
static void json_str(struct buf *b, const char *s, size_t n) {
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"':
      buf_adds(b, "\\\"");
      break;
    case '\\':
      buf_adds(b, "\\\\");
      break;
    case '\n':
      buf_adds(b, "\\n");
      break;
    case '\r':
      buf_adds(b, "\\r");
      break;
    case '\t':
      buf_adds(b, "\\t");
      break;
    case '\b':
      buf_adds(b, "\\b");
      break;
    case '\f':
      buf_adds(b, "\\f");
      break;
    case '<':
    case '>':
    case '&':
      buf_addf(b, "\\u%04x", c);
      break;
    default:
      if (c < 0x20) {
        buf_addf(b, "\\u%04x", c);
      } else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
        buf_addf(b, "\\u202%c", (unsigned char)s[i + 2] == 0xa8 ? '8' : '9');
        i += 2;
      } else {
        buf_add(b, &s[i], 1);
      }
    }
  }
  buf_add(b, "\"", 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Go-compatible formatting and parsing                                                        */

/* time.Now().String(): "2006-01-02 15:04:05.999999999 -0700 MST m=+0.000000001" */
static void go_now(char *out, size_t n) {
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  struct tm tm;
  localtime_r(&rt.tv_sec, &tm);
  char date[40], zone[64], frac[16] = "";
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  strftime(zone, sizeof zone, "%z %Z", &tm);
  if (rt.tv_nsec) {
    snprintf(frac, sizeof frac, ".%09ld", rt.tv_nsec);
    size_t l = strlen(frac);
    while (l > 1 && frac[l - 1] == '0') frac[--l] = 0;
  }
  long long m = mono_ns() - g_start_ns;
  snprintf(out, n, "%s%s %s m=+%lld.%09lld", date, frac, zone, m / 1000000000LL, m % 1000000000LL);
}

/* time.Duration.String(): "1h2m3.5s", "1.5ms", "0s". */
static void go_duration(long long d, char *out, size_t n) {
  const char *sign = d < 0 ? "-" : "";
  unsigned long long u = d < 0 ? (unsigned long long)(-d) : (unsigned long long)d;
  char frac[16] = "";
  if (u == 0) {
    snprintf(out, n, "0s");
    return;
  }
  if (u < 1000000000ULL) {
    int prec;
    const char *unit;
    unsigned long long div;
    if (u < 1000ULL) {
      prec = 0, unit = "ns", div = 1;
    } else if (u < 1000000ULL) {
      prec = 3, unit = "\xc2\xb5s", div = 1000;
    } else {
      prec = 6, unit = "ms", div = 1000000;
    }
    if (prec) {
      snprintf(frac, sizeof frac, ".%0*llu", prec, u % div);
      size_t l = strlen(frac);
      while (l > 1 && frac[l - 1] == '0') frac[--l] = 0;
      if (l == 1) frac[0] = 0;
    }
    snprintf(out, n, "%s%llu%s%s", sign, u / div, frac, unit);
    return;
  }
  unsigned long long secs = u / 1000000000ULL, ns = u % 1000000000ULL;
  if (ns) {
    snprintf(frac, sizeof frac, ".%09llu", ns);
    size_t l = strlen(frac);
    while (l > 1 && frac[l - 1] == '0') frac[--l] = 0;
  }
  unsigned long long h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
  if (h)
    snprintf(out, n, "%s%lluh%llum%llu%ss", sign, h, m, s, frac);
  else if (m)
    snprintf(out, n, "%s%llum%llu%ss", sign, m, s, frac);
  else
    snprintf(out, n, "%s%llu%ss", sign, s, frac);
}

/* time.ParseDuration: "300ms", "1.5h", "2h45m", "0". Returns 0 on success. */
static int parse_go_duration(const char *s, long long *out) {
  const char *p = s;
  int neg = 0;
  double total = 0;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  if (strcmp(p, "0") == 0) {
    *out = 0;
    return 0;
  }
  if (!*p) return -1;
  while (*p) {
    unsigned long long v = 0;
    int digits = 0, fdigits = 0;
    double f = 0, scale = 1;
    while (isdigit((unsigned char)*p)) v = v * 10 + (unsigned long long)(*p++ - '0'), digits++;
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) f = f * 10 + (*p++ - '0'), scale *= 10, fdigits++;
    }
    if (!digits && !fdigits) return -1;
    const char *u = p;
    while (*p && *p != '.' && !isdigit((unsigned char)*p)) p++;
    size_t ul = (size_t)(p - u);
    double mult;
    if (ul == 2 && !strncmp(u, "ns", 2))
      mult = 1;
    else if ((ul == 2 && !strncmp(u, "us", 2)) || (ul == 3 && !strncmp(u, "\xc2\xb5s", 3)) ||
             (ul == 3 && !strncmp(u, "\xce\xbcs", 3)))
      mult = 1e3;
    else if (ul == 2 && !strncmp(u, "ms", 2))
      mult = 1e6;
    else if (ul == 1 && *u == 's')
      mult = 1e9;
    else if (ul == 1 && *u == 'm')
      mult = 60e9;
    else if (ul == 1 && *u == 'h')
      mult = 3600e9;
    else
      return -1;
    total += ((double)v + f / scale) * mult;
  }
  if (total > 9.2e18) return -1;
  *out = neg ? -(long long)total : (long long)total;
  return 0;
}

/* strconv.Atoi: optional sign and decimal digits only. Returns 0 on success. */
static int parse_int(const char *s, long *out) {
  if (!*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || isspace((unsigned char)*s)) return -1;
  *out = v;
  return 0;
}

/* strconv.ParseBool. Returns 0 on success. */
static int parse_bool(const char *s, int *out) {
  static const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (!strcmp(s, yes[i])) return *out = 1, 0;
    if (!strcmp(s, no[i])) return *out = 0, 0;
  }
  return -1;
}

/* net.Addr.String() of a peer: "10.0.0.1:80", "[fd00::1]:80"; v4-mapped addresses as IPv4. */
static void fmt_sockaddr(const struct sockaddr_storage *ss, char *out, size_t n) {
  char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = "?";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
      snprintf(out, n, "%s:%u", ip, ntohs(a->sin6_port));
      return;
    }
    inet_ntop(AF_INET6, &a->sin6_addr, ip, INET6_ADDRSTRLEN);
    if (a->sin6_scope_id) {
      char ifname[IF_NAMESIZE];
      size_t l = strlen(ip);
      if (if_indextoname(a->sin6_scope_id, ifname))
        snprintf(ip + l, sizeof ip - l, "%%%s", ifname);
      else
        snprintf(ip + l, sizeof ip - l, "%%%u", a->sin6_scope_id);
    }
    snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
  } else {
    snprintf(out, n, "?");
  }
}

static int unhex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* url.QueryUnescape (plus = 1) or url.PathUnescape (plus = 0). Returns -1 on a bad escape. */
static int url_unescape(const char *s, size_t n, int plus, struct buf *out) {
  out->len = 0;
  buf_reserve(out, n);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int h = unhex((unsigned char)s[i + 1]), l = unhex((unsigned char)s[i + 2]);
      if (h < 0 || l < 0) return -1;
      c = (char)(h * 16 + l);
      i += 2;
    } else if (c == '+' && plus) {
      c = ' ';
    }
    out->p[out->len++] = c;
  }
  out->p[out->len] = 0;
  return 0;
}

/* url.Values.Get on a raw query string: 1 and the decoded value in out when the key is present. */
static int query_get(const char *q, size_t qn, const char *key, struct buf *out) {
  struct buf k = {0};
  size_t i = 0;
  int found = 0;
  while (i < qn && !found) {
    size_t j = i;
    while (j < qn && q[j] != '&') j++;
    const char *pair = q + i;
    size_t pn = j - i;
    i = j + 1;
    if (!pn || memchr(pair, ';', pn)) continue;
    const char *eq = memchr(pair, '=', pn);
    size_t kn = eq ? (size_t)(eq - pair) : pn;
    if (url_unescape(pair, kn, 1, &k) < 0 || strcmp(buf_str(&k), key) != 0) continue;
    if (eq) {
      if (url_unescape(eq + 1, pn - kn - 1, 1, out) < 0) continue;
    } else {
      out->len = 0;
      buf_reserve(out, 0);
      out->p[0] = 0;
    }
    found = 1;
  }
  buf_free(&k);
  if (found && !out->p) buf_reserve(out, 0), out->p[0] = 0;
  return found;
}

/* "host:port" -> host and port ("[v6]:port" too). Returns 0 on success. */
static int split_host_port(const char *s, char *host, size_t hn, char *port, size_t pn) {
  const char *colon;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return -1;
    snprintf(host, hn, "%.*s", (int)(close - s - 1), s + 1);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return -1;
    if (memchr(s, ':', (size_t)(colon - s))) return -1; /* too many colons */
    snprintf(host, hn, "%.*s", (int)(colon - s), s);
  }
  snprintf(port, pn, "%s", colon + 1);
  return 0;
}

/* Resolves host:port like net.ResolveTCPAddr/ResolveUDPAddr (first IPv4 address, else first). */
static int resolve(const char *host, const char *port, int socktype, struct sockaddr_storage *ss,
                   socklen_t *sl, char *err, size_t en) {
  struct addrinfo hints, *res, *ai, *pick = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
  if (rc != 0) {
    if (rc == EAI_SERVICE)
      snprintf(err, en, "lookup %s: unknown port", port);
    else
      snprintf(err, en, "lookup %s: %s", host, rc == EAI_NONAME ? "no such host" : gai_strerror(rc));
    return -1;
  }
  for (ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  if (!pick) pick = res;
  memcpy(ss, pick->ai_addr, pick->ai_addrlen);
  *sl = pick->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* command line (a tiny pflag)                                                                 */

enum ftype { F_INT, F_BOOL, F_STR, F_DUR };

struct flag {
  const char *name;
  enum ftype type;
  void *ptr;
  const char *help;
};

static void print_flags(FILE *f, const struct flag *fl, int n) {
  fprintf(f, "\nFlags:\n");
  for (int i = 0; i < n; i++) {
    const char *t = fl[i].type == F_INT ? " int" : fl[i].type == F_STR ? " string" : fl[i].type == F_DUR ? " duration" : "";
    fprintf(f, "      --%s%s\t%s\n", fl[i].name, t, fl[i].help);
  }
  fprintf(f, "  -h, --help\thelp\n");
}

static void sub_usage(FILE *f, const char *use, const char *desc, const struct flag *fl, int n) {
  fprintf(f, "%s\n\nUsage:\n  agnhost %s [flags]\n", desc, use);
  print_flags(f, fl, n);
}

/* Parses argv (after the subcommand) into flags; positional arguments go to pos. */
static int parse_flags(const char *use, const char *desc, int argc, char **argv, struct flag *fl, int n,
                       char **pos, int maxpos) {
  int npos = 0;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--")) {
      for (i++; i < argc; i++) {
        if (npos >= maxpos) goto too_many;
        pos[npos++] = argv[i];
      }
      break;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      sub_usage(stdout, use, desc, fl, n);
      exit(0);
    }
    if (a[0] == '-' && a[1] == '-') {
      char name[128];
      const char *eq = strchr(a + 2, '=');
      snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
      struct flag *f = NULL;
      for (int k = 0; k < n; k++)
        if (!strcmp(fl[k].name, name)) f = &fl[k];
      if (!f) {
        fprintf(stderr, "Error: unknown flag: --%s\n", name);
        sub_usage(stderr, use, desc, fl, n);
        exit(1);
      }
      const char *val;
      if (eq) {
        val = eq + 1;
      } else if (f->type == F_BOOL) {
        val = "true";
      } else if (i + 1 < argc) {
        val = argv[++i];
      } else {
        fprintf(stderr, "Error: flag needs an argument: --%s\n", name);
        exit(1);
      }
      int ok = 0;
      switch (f->type) {
      case F_INT: {
        long v;
        ok = parse_int(val, &v) == 0;
        if (ok) *(int *)f->ptr = (int)v;
        break;
      }
      case F_BOOL:
        ok = parse_bool(val, (int *)f->ptr) == 0;
        break;
      case F_STR:
        *(const char **)f->ptr = val;
        ok = 1;
        break;
      case F_DUR:
        ok = parse_go_duration(val, (long long *)f->ptr) == 0;
        break;
      }
      if (!ok) {
        fprintf(stderr, "Error: invalid argument \"%s\" for \"--%s\" flag\n", val, name);
        exit(1);
      }
      continue;
    }
    if (a[0] == '-' && a[1]) {
      fprintf(stderr, "Error: unknown shorthand flag: '%c' in %s\n", a[1], a);
      sub_usage(stderr, use, desc, fl, n);
      exit(1);
    }
    if (npos >= maxpos) goto too_many;
    pos[npos++] = a;
  }
  return npos;
too_many:
  fprintf(stderr, "Error: accepts at most %d arg(s), received more\n", maxpos);
  exit(1);
}

/* ------------------------------------------------------------------------------------------ */
/* sockets                                                                                     */

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Binds a socket on [::]:port (dual stack) or, without IPv6, 0.0.0.0:port. -1 and errno on error. */
static int bind_any(int type, int port) {
  int one = 1, zero = 0;
  int fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons((unsigned short)port);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0) return fd;
    int e = errno;
    close(fd);
    if (e != EADDRNOTAVAIL && e != EAFNOSUPPORT) return errno = e, -1;
  } else if (errno != EAFNOSUPPORT) {
    return -1;
  }
  fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a4;
  memset(&a4, 0, sizeof a4);
  a4.sin_family = AF_INET;
  a4.sin_addr.s_addr = htonl(INADDR_ANY);
  a4.sin_port = htons((unsigned short)port);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0) {
    int e = errno;
    close(fd);
    return errno = e, -1;
  }
  return fd;
}

static int listen_tcp(int port) {
  int fd = bind_any(SOCK_STREAM, port);
  if (fd < 0) fatal("listen tcp :%d: bind: %s", port, strerror(errno));
  if (listen(fd, 4096) != 0) fatal("listen tcp :%d: listen: %s", port, strerror(errno));
  return fd;
}

static int listen_udp_addr(const char *ip, int port) {
  if (!ip || !*ip) {
    int fd = bind_any(SOCK_DGRAM, port);
    if (fd < 0) fatal("Error occurred: failed to create listener for UDP address :%d:%s", port, strerror(errno));
    return fd;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((unsigned short)port);
    sl = sizeof *a4;
  } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)port);
    sl = sizeof *a6;
  } else {
    fatal("parseAddress: invalid address %s", ip);
  }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0)
    fatal("Error occurred: failed to create listener for UDP address %s:%d:%s", ip, port, strerror(errno));
  return fd;
}

/* Non-blocking connect with a deadline (deadline_ms 0 = none). 0, or -1 with errno (ETIMEDOUT). */
static int connect_deadline(int fd, const struct sockaddr *sa, socklen_t sl, long long deadline_ms) {
  if (connect(fd, sa, sl) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int timeout = -1;
    if (deadline_ms) {
      long long left = deadline_ms - mono_ms();
      if (left <= 0) return errno = ETIMEDOUT, -1;
      timeout = (int)left;
    }
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return errno = ETIMEDOUT, -1;
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) return errno = err, -1;
    return 0;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP server                                                                                 */

struct conn {
  int fd;
  unsigned long id;
  int dead;       /* to be freed */
  int lingering;  /* write side shut down, discarding input until EOF or deadline */
  int close_after;/* close once out is written */
  int busy;       /* a handler answers later (/exit?wait=...): parse nothing more */
  int eof;        /* peer closed its write side */
  int sent_continue;
  long long linger_deadline;
  char peer[80];
  struct buf in, out;
  size_t out_off;
};

struct req {
  char method[16];
  const char *path; /* decoded */
  const char *query;
  size_t query_len;
  const char *headers; /* raw header lines */
  size_t headers_len;
  const char *body;
  size_t body_len;
  int head;  /* HEAD: no body in the answer */
  int close; /* close the connection after the answer */
  int keepalive10;
  int form; /* body is application/x-www-form-urlencoded (POST/PUT/PATCH) */
};

struct server;
typedef void (*http_handler)(struct server *, struct conn *, struct req *);
typedef void (*udp_handler)(struct server *, int fd, const char *data, size_t n,
                            const struct sockaddr_storage *from, socklen_t fl);

struct server {
  int http_fd;
  int tcp_fd; /* serve-hostname --tcp: answer each connection with the hostname, then close */
  int udp_fds[MAX_UDP];
  int nudp;
  http_handler on_http;
  udp_handler on_udp;
  const char *tcp_reply;
  long long accept_resume_ms;
  struct conn **conns;
  size_t nconns, capconns;
  unsigned long next_id;
  /* /exit */
  int exit_pending;
  long long exit_at_ms;
  long long exit_timeout_ns;
  int exit_code;
  unsigned long exit_conn;
  int exit_head;
  int draining;
  long long drain_deadline_ms;
};

static struct conn *conn_new(struct server *s, int fd, const struct sockaddr_storage *ss) {
  struct conn *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->fd = fd;
  c->id = ++s->next_id;
  fmt_sockaddr(ss, c->peer, sizeof c->peer);
  if (s->nconns == s->capconns) {
    s->capconns = s->capconns ? s->capconns * 2 : 64;
    s->conns = realloc(s->conns, s->capconns * sizeof *s->conns);
    if (!s->conns) abort();
  }
  s->conns[s->nconns++] = c;
  return c;
}

static void conn_close(struct conn *c) {
  if (c->dead) return;
  close(c->fd);
  c->dead = 1;
}

static struct conn *conn_by_id(struct server *s, unsigned long id) {
  for (size_t i = 0; i < s->nconns; i++)
    if (s->conns[i]->id == id && !s->conns[i]->dead) return s->conns[i];
  return NULL;
}

static const char *status_text(int code) {
  switch (code) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Request Entity Too Large";
  case 417: return "Expectation Failed";
  case 418: return "I'm a teapot";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return NULL;
  }
}

/* Queues one complete response. ctype NULL: none (Go sends none for an empty body). */
static void respond(struct conn *c, const struct req *r, int code, const char *ctype, const char *extra,
                    const char *body, size_t blen) {
  char date[64];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  const char *text = status_text(code);
  if (text)
    buf_addf(&c->out, "HTTP/1.1 %d %s\r\n", code, text);
  else
    buf_addf(&c->out, "HTTP/1.1 %d status code %d\r\n", code, code);
  if (r->close)
    buf_adds(&c->out, "Connection: close\r\n");
  else if (r->keepalive10)
    buf_adds(&c->out, "Connection: keep-alive\r\n");
  int nobody = code == 204 || code == 304 || (code >= 100 && code < 200);
  if (!nobody) {
    buf_addf(&c->out, "Content-Length: %zu\r\n", blen);
    if (blen && ctype) buf_addf(&c->out, "Content-Type: %s\r\n", ctype);
  }
  buf_addf(&c->out, "Date: %s\r\n", date);
  if (extra) buf_adds(&c->out, extra);
  buf_adds(&c->out, "\r\n");
  if (!r->head && !nobody) buf_add(&c->out, body, blen);
  if (r->close) c->close_after = 1;
}

#define TEXT "text/plain; charset=utf-8"

static void respond_text(struct conn *c, const struct req *r, int code, const char *body) {
  respond(c, r, code, TEXT, NULL, body, strlen(body));
}

/* http.Error: the message plus a newline, nosniff. */
static void respond_error(struct conn *c, const struct req *r, int code, const char *msg) {
  struct buf b = {0};
  buf_addf(&b, "%s\n", msg);
  respond(c, r, code, TEXT, "X-Content-Type-Options: nosniff\r\n", b.p, b.len);
  buf_free(&b);
}

/* http.Redirect. */
static void respond_redirect(struct conn *c, const struct req *r, const char *location, int code) {
  struct buf loc = {0}, extra = {0}, body = {0};
  if (location[0] == '/' || strstr(location, "://")) {
    buf_adds(&loc, location);
  } else {
    const char *slash = strrchr(r->path, '/');
    buf_add(&loc, r->path, slash ? (size_t)(slash - r->path + 1) : 0);
    if (!loc.len) buf_adds(&loc, "/");
    buf_adds(&loc, location);
  }
  buf_addf(&extra, "Location: %s\r\n", buf_str(&loc));
  if (!strcmp(r->method, "GET") || r->head) {
    buf_adds(&body, "<a href=\"");
    for (const char *p = buf_str(&loc); *p; p++) {
      switch (*p) {
      case '<': buf_adds(&body, "&lt;"); break;
      case '>': buf_adds(&body, "&gt;"); break;
      case '&': buf_adds(&body, "&amp;"); break;
      case '"': buf_adds(&body, "&#34;"); break;
      case '\'': buf_adds(&body, "&#39;"); break;
      default: buf_add(&body, p, 1);
      }
    }
    const char *text = status_text(code);
    buf_addf(&body, "\">%s</a>.\n\n", text ? text : "");
  }
  respond(c, r, code, "text/html; charset=utf-8", extra.p, buf_str(&body), body.len);
  buf_free(&loc);
  buf_free(&extra);
  buf_free(&body);
}

/* The first value of a request header (case-insensitive name), trimmed. */
static int header_get(const struct req *r, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  const char *p = r->headers, *end = r->headers + r->headers_len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && (size_t)(colon - p) == nl && !strncasecmp(p, name, nl)) {
      const char *v = colon + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      snprintf(out, n, "%.*s", (int)(ve - v), v);
      return 1;
    }
    p = eol + 1;
  }
  return 0;
}

static int has_token(const char *list, const char *token) {
  size_t tl = strlen(token);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',' || *p == '\t') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *te = e;
    while (te > p && (te[-1] == ' ' || te[-1] == '\t')) te--;
    if ((size_t)(te - p) == tl && !strncasecmp(p, token, tl)) return 1;
    p = e;
  }
  return 0;
}

/* r.FormValue: the form body (POST/PUT/PATCH urlencoded) first, then the URL query. */
static int form_get(const struct req *r, const char *key, struct buf *out) {
  if (r->form && query_get(r->body, r->body_len, key, out)) return 1;
  return query_get(r->query, r->query_len, key, out);
}

static void form_value(const struct req *r, const char *key, struct buf *out) {
  if (!form_get(r, key, out)) {
    out->len = 0;
    buf_reserve(out, 0);
    out->p[0] = 0;
  }
}

static void conn_flush(struct conn *c) {
  while (c->out_off < c->out.len) {
    ssize_t w = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_close(c);
      return;
    }
    c->out_off += (size_t)w;
  }
  c->out_off = 0;
  buf_consume(&c->out, c->out.len);
  if (c->close_after && !c->lingering) {
    /* Half-close and wait for the peer's FIN so it reads the whole answer (no RST). */
    shutdown(c->fd, SHUT_WR);
    c->lingering = 1;
    c->linger_deadline = mono_ms() + LINGER_MS;
    buf_consume(&c->in, c->in.len);
  }
}

static void process_input(struct server *s, struct conn *c);

/* Parses and answers every complete request in c->in (pipelining included). */
static void process_input(struct server *s, struct conn *c) {
  while (!c->dead && !c->lingering && !c->close_after && !c->busy && c->in.len) {
    char *p = c->in.p;
    size_t n = c->in.len, skip = 0;
    while (skip < n && (p[skip] == '\r' || p[skip] == '\n')) skip++;
    if (skip) {
      buf_consume(&c->in, skip);
      continue;
    }
    /* end of the header block */
    size_t hend = 0, i;
    for (i = 0; i + 1 < n; i++) {
      if (p[i] == '\n' && p[i + 1] == '\n') {
        hend = i + 2;
        break;
      }
      if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') {
        hend = i + 3;
        break;
      }
    }
    struct req r;
    memset(&r, 0, sizeof r);
    strcpy(r.method, "GET");
    if (!hend) {
      if (n > MAX_HEADER) {
        r.close = 1;
        respond_error(c, &r, 431, "431 Request Header Fields Too Large");
      }
      return;
    }
    /* request line */
    char *eol = memchr(p, '\n', hend);
    size_t ll = (size_t)(eol - p);
    if (ll && p[ll - 1] == '\r') ll--;
    char line[8192];
    if (ll >= sizeof line) {
      r.close = 1;
      respond_error(c, &r, 414, "414 Request URI Too Long");
      return;
    }
    memcpy(line, p, ll);
    line[ll] = 0;
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof r.method || strncmp(sp2 + 1, "HTTP/1.", 7) ||
        !isdigit((unsigned char)sp2[8]) || sp2[9]) {
      r.close = 1;
      respond_error(c, &r, 400, "400 Bad Request");
      return;
    }
    *sp1 = *sp2 = 0;
    memcpy(r.method, line, (size_t)(sp1 - line) + 1);
    int http10 = sp2[8] == '0';
    char *target = sp1 + 1;
    if (!strncasecmp(target, "http://", 7) || !strncasecmp(target, "https://", 8)) {
      char *path = strchr(strstr(target, "://") + 3, '/');
      target = path ? path : "/";
    }
    if (target[0] != '/' && strcmp(target, "*")) {
      r.close = 1;
      respond_error(c, &r, 400, "400 Bad Request");
      return;
    }
    r.headers = eol + 1;
    r.headers_len = hend - (size_t)(eol + 1 - p);
    r.head = !strcmp(r.method, "HEAD");

    char v[256];
    long cl = 0;
    if (header_get(&r, "Transfer-Encoding", v, sizeof v)) {
      /* Chunked request bodies are not supported: answer, then close the connection. */
      r.close = 1;
    } else if (header_get(&r, "Content-Length", v, sizeof v) && (parse_int(v, &cl) || cl < 0)) {
      r.close = 1;
      respond_error(c, &r, 400, "400 Bad Request");
      return;
    }
    if (cl > MAX_BODY) {
      r.close = 1;
      respond_error(c, &r, 413, "413 Request Entity Too Large");
      return;
    }
    if (n < hend + (size_t)cl) {
      if (!c->sent_continue && header_get(&r, "Expect", v, sizeof v) && !strcasecmp(v, "100-continue")) {
        buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->sent_continue = 1;
      }
      return;
    }
    c->sent_continue = 0;
    r.body = p + hend;
    r.body_len = (size_t)cl;
    int conn_close_hdr = header_get(&r, "Connection", v, sizeof v) && has_token(v, "close");
    int conn_keep_hdr = header_get(&r, "Connection", v, sizeof v) && has_token(v, "keep-alive");
    if (http10) {
      if (conn_keep_hdr && !r.close)
        r.keepalive10 = 1;
      else
        r.close = 1;
    } else if (conn_close_hdr) {
      r.close = 1;
    }
    if ((!strcmp(r.method, "POST") || !strcmp(r.method, "PUT") || !strcmp(r.method, "PATCH")) &&
        header_get(&r, "Content-Type", v, sizeof v) &&
        !strncasecmp(v, "application/x-www-form-urlencoded", 33))
      r.form = 1;

    /* path and query */
    char *q = strchr(target, '?');
    struct buf path = {0};
    if (q) {
      r.query = q + 1;
      r.query_len = strlen(q + 1);
      *q = 0;
    } else {
      r.query = "";
    }
    if (url_unescape(target, strlen(target), 0, &path) < 0) {
      buf_free(&path);
      r.close = 1;
      respond_error(c, &r, 400, "400 Bad Request");
      return;
    }
    r.path = path.p;
    s->on_http(s, c, &r);
    buf_free(&path);
    if (c->dead) return;
    buf_consume(&c->in, hend + (size_t)cl);
  }
}

static void accept_all(struct server *s, int lfd, int raw) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        s->accept_resume_ms = mono_ms() + 100; /* out of descriptors: retry shortly */
      return;
    }
    struct conn *c = conn_new(s, fd, &ss);
    if (raw) {
      logmsg("TCP request from %s", c->peer);
      buf_adds(&c->out, s->tcp_reply);
      c->close_after = 1;
      conn_flush(c);
    } else {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  }
}

static void conn_read(struct server *s, struct conn *c) {
  char rbuf[16384];
  for (int rounds = 0; rounds < 16; rounds++) {
    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close(c);
      break;
    }
    if (r == 0) {
      c->eof = 1;
      break;
    }
    if (c->lingering) continue; /* discard */
    buf_add(&c->in, rbuf, (size_t)r);
    if (c->in.len > MAX_HEADER + MAX_BODY + 16384) break;
  }
  if (c->dead) return;
  if (c->lingering) {
    if (c->eof) conn_close(c);
    return;
  }
  process_input(s, c);
  if (c->dead) return;
  if (c->eof && !c->busy) c->close_after = 1;
  conn_flush(c);
  if (!c->dead && c->lingering && c->eof) conn_close(c);
}

static void udp_read(struct server *s, int fd) {
  char data[2048];
  for (int rounds = 0; rounds < 64; rounds++) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, data, sizeof data - 1, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data[n] = 0;
    s->on_udp(s, fd, data, (size_t)n, &from, fl);
  }
}

/* /exit timer fired: exit now (timeout 0, like os.Exit) or answer and drain gracefully. */
static void fire_exit(struct server *s) {
  s->exit_pending = 0;
  if (s->exit_timeout_ns == 0) exit(s->exit_code);
  struct conn *c = conn_by_id(s, s->exit_conn);
  if (c) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.head = s->exit_head;
    r.close = 1;
    c->busy = 0;
    respond(c, &r, 200, NULL, NULL, "", 0);
    c->close_after = 1;
    conn_flush(c);
  }
  if (s->http_fd >= 0) close(s->http_fd), s->http_fd = -1;
  if (s->tcp_fd >= 0) close(s->tcp_fd), s->tcp_fd = -1;
  for (int i = 0; i < s->nudp; i++) close(s->udp_fds[i]);
  s->nudp = 0;
  s->draining = 1;
  s->drain_deadline_ms = mono_ms() + (s->exit_timeout_ns > 0 ? s->exit_timeout_ns / 1000000 : 0);
  for (size_t i = 0; i < s->nconns; i++) {
    struct conn *o = s->conns[i];
    if (o->dead) continue;
    o->close_after = 1;
    if (o->out.len == 0 && !o->lingering) conn_close(o); /* idle: close now, like Server.Shutdown */
  }
}

static void run_server(struct server *s) {
  struct pollfd *pfd = NULL;
  struct conn **pconn = NULL;
  size_t cap = 0;
  for (;;) {
    if (g_signal) {
      logmsg("Shutting down after receiving signal: %s.", signal_name(g_signal));
      exit(0);
    }
    long long now = mono_ms();
    if (s->exit_pending && now >= s->exit_at_ms) fire_exit(s);
    /* drop dead connections, expire lingering ones */
    size_t live = 0;
    for (size_t i = 0; i < s->nconns; i++) {
      struct conn *c = s->conns[i];
      if (!c->dead && c->lingering && now >= c->linger_deadline) conn_close(c);
      if (c->dead) {
        buf_free(&c->in);
        buf_free(&c->out);
        free(c);
      } else {
        s->conns[live++] = c;
      }
    }
    s->nconns = live;
    if (s->draining && (s->nconns == 0 || now >= s->drain_deadline_ms)) {
      logmsg("Graceful shutdown completed with: <nil>");
      exit(s->exit_code);
    }

    size_t need = s->nconns + 2 + (size_t)s->nudp;
    if (need > cap) {
      cap = need * 2;
      pfd = realloc(pfd, cap * sizeof *pfd);
      pconn = realloc(pconn, cap * sizeof *pconn);
      if (!pfd || !pconn) abort();
    }
    size_t np = 0;
    int accepting = now >= s->accept_resume_ms;
    if (s->http_fd >= 0 && accepting) pfd[np] = (struct pollfd){s->http_fd, POLLIN, 0}, pconn[np++] = NULL;
    if (s->tcp_fd >= 0 && accepting) pfd[np] = (struct pollfd){s->tcp_fd, POLLIN, 0}, pconn[np++] = NULL;
    for (int i = 0; i < s->nudp; i++) pfd[np] = (struct pollfd){s->udp_fds[i], POLLIN, 0}, pconn[np++] = NULL;
    long long wake = -1;
    if (!accepting) wake = s->accept_resume_ms;
    if (s->exit_pending && (wake < 0 || s->exit_at_ms < wake)) wake = s->exit_at_ms;
    if (s->draining && (wake < 0 || s->drain_deadline_ms < wake)) wake = s->drain_deadline_ms;
    for (size_t i = 0; i < s->nconns; i++) {
      struct conn *c = s->conns[i];
      short ev = 0;
      if (!c->busy && !c->eof) ev |= POLLIN;
      if (c->lingering) ev |= POLLIN;
      if (c->out.len > c->out_off) ev |= POLLOUT;
      if (c->lingering && (wake < 0 || c->linger_deadline < wake)) wake = c->linger_deadline;
      /* no events wanted (e.g. a closed peer waiting for /exit): skip it, or POLLHUP would spin */
      pfd[np] = (struct pollfd){ev ? c->fd : -1, ev, 0};
      pconn[np++] = c;
    }
    struct timespec ts, *tsp = NULL;
    if (wake >= 0) {
      long long left = wake - now;
      if (left < 0) left = 0;
      ts.tv_sec = left / 1000;
      ts.tv_nsec = (left % 1000) * 1000000;
      tsp = &ts;
    }
    int r = ppoll(pfd, np, tsp, &g_waitmask);
    if (r < 0) {
      if (errno == EINTR) continue;
      fatal("poll: %s", strerror(errno));
    }
    for (size_t i = 0; i < np && r > 0; i++) {
      if (!pfd[i].revents) continue;
      struct conn *c = pconn[i];
      if (!c) {
        if (pfd[i].fd == s->http_fd)
          accept_all(s, s->http_fd, 0);
        else if (pfd[i].fd == s->tcp_fd)
          accept_all(s, s->tcp_fd, 1);
        else
          udp_read(s, pfd[i].fd);
        continue;
      }
      if (c->dead) continue;
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) conn_read(s, c);
      if (!c->dead && (pfd[i].revents & POLLOUT)) conn_flush(c);
      if (!c->dead && c->eof && !c->busy && c->out.len == 0 && !c->lingering) conn_close(c);
    }
  }
}

static void server_init(struct server *s) {
  memset(s, 0, sizeof *s);
  s->http_fd = s->tcp_fd = -1;
}

/* Forks a child that answers this one connection with blocking I/O (/dial, /shell). Returns 0 in
   the child, 1 in the parent (which forgets the connection), -1 if fork failed. */
static int fork_for(struct server *s, struct conn *c) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) {
    conn_close(c);
    return 1;
  }
  child_reset_signals();
  if (s->http_fd >= 0) close(s->http_fd);
  if (s->tcp_fd >= 0) close(s->tcp_fd);
  for (int i = 0; i < s->nudp; i++) close(s->udp_fds[i]);
  for (size_t i = 0; i < s->nconns; i++)
    if (s->conns[i] != c && !s->conns[i]->dead) close(s->conns[i]->fd);
  int fl = fcntl(c->fd, F_GETFL);
  fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
  return 0;
}

/* In a forked child: write the answer, half-close, wait briefly for the peer's FIN, exit. */
static void __attribute__((noreturn)) child_finish(struct conn *c) {
  size_t off = 0;
  while (off < c->out.len) {
    ssize_t w = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(0);
    off += (size_t)w;
  }
  shutdown(c->fd, SHUT_WR);
  struct timeval tv = {LINGER_MS / 1000, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char junk[4096];
  while (recv(c->fd, junk, sizeof junk, 0) > 0) {
  }
  fflush(stdout);
  _exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* netexec                                                                                     */

static struct {
  int http_port, udp_port, sctp_port;
  const char *tls_cert, *tls_key, *http_override, *udp_addresses;
  int ready;
} ne = {8080, 8081, -1, "", "", "", "", 0};

static const char *ne_use = "netexec";
static const char *ne_desc = "Creates HTTP(S), UDP, and (optionally) SCTP servers with various endpoints";

/* GET http://addr/request with a 5 s client timeout: 0 and the body, or -1 and a Go-like error. */
static int dial_http(const struct sockaddr_storage *ss, socklen_t sl, const char *request, struct buf *out,
                     struct buf *err) {
  char addr[96];
  fmt_sockaddr(ss, addr, sizeof addr);
  struct buf url = {0};
  buf_addf(&url, "http://%s/", addr);
  struct buf reqpath = {0};
  for (const unsigned char *p = (const unsigned char *)request; *p; p++) {
    if (*p <= ' ' || *p == 0x7f)
      buf_addf(&reqpath, "%%%02X", *p);
    else
      buf_add(&reqpath, p, 1);
  }
  buf_adds(&url, buf_str(&reqpath));
  long long deadline = mono_ms() + 5000;
  int rc = -1;
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  char e[128];
  if (fd < 0) {
    go_strerror(errno, e, sizeof e);
    buf_addf(err, "Get \"%s\": dial tcp %s: socket: %s", url.p, addr, e);
    goto done;
  }
  if (connect_deadline(fd, (const struct sockaddr *)ss, sl, deadline) != 0) {
    if (errno == ETIMEDOUT && mono_ms() >= deadline) {
      buf_addf(err, "Get \"%s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
               url.p);
    } else {
      go_strerror(errno, e, sizeof e);
      buf_addf(err, "Get \"%s\": dial tcp %s: connect: %s", url.p, addr, e);
    }
    goto done;
  }
  struct buf rq = {0}, resp = {0};
  buf_addf(&rq, "GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nConnection: close\r\n\r\n",
           buf_str(&reqpath), addr);
  size_t off = 0;
  int timed_out = 0, failed = 0;
  while (off < rq.len && !failed) {
    ssize_t w = send(fd, rq.p + off, rq.len - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {fd, POLLOUT, 0};
      long long left = deadline - mono_ms();
      if (left <= 0 || poll(&p, 1, (int)left) == 0) timed_out = failed = 1;
      continue;
    }
    failed = 1;
  }
  buf_free(&rq);
  /* read until EOF (Connection: close), then take the body */
  while (!failed) {
    char chunk[8192];
    ssize_t rd = recv(fd, chunk, sizeof chunk, 0);
    if (rd > 0) {
      buf_add(&resp, chunk, (size_t)rd);
      continue;
    }
    if (rd == 0) break;
    if (errno == EAGAIN || errno == EINTR) {
      struct pollfd p = {fd, POLLIN, 0};
      long long left = deadline - mono_ms();
      if (left <= 0 || poll(&p, 1, (int)left) == 0) timed_out = failed = 1;
      continue;
    }
    failed = 1;
  }
  const char *hdr_end = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
  if (failed || !hdr_end) {
    if (timed_out)
      buf_addf(err, "Get \"%s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
               url.p);
    else
      buf_addf(err, "Get \"%s\": EOF", url.p);
    buf_free(&resp);
    goto done;
  }
  const char *body = hdr_end + 4;
  size_t blen = resp.len - (size_t)(body - resp.p);
  struct req hr;
  memset(&hr, 0, sizeof hr);
  hr.headers = resp.p;
  hr.headers_len = (size_t)(hdr_end - resp.p) + 2;
  char v[64];
  long cl;
  if (header_get(&hr, "Transfer-Encoding", v, sizeof v) && has_token(v, "chunked")) {
    const char *p = body, *end = body + blen;
    while (p < end) {
      char *next;
      unsigned long sz = strtoul(p, &next, 16);
      const char *crlf = strstr(next, "\r\n");
      if (!crlf || sz == 0) break;
      p = crlf + 2;
      if ((size_t)(end - p) < sz) sz = (unsigned long)(end - p);
      buf_add(out, p, sz);
      p += sz + 2;
    }
  } else {
    if (header_get(&hr, "Content-Length", v, sizeof v) && parse_int(v, &cl) == 0 && (size_t)cl < blen)
      blen = (size_t)cl;
    buf_add(out, body, blen);
  }
  if (!out->p) buf_reserve(out, 0), out->p[0] = 0;
  buf_free(&resp);
  rc = 0;
done:
  if (fd >= 0) close(fd);
  buf_free(&url);
  buf_free(&reqpath);
  return rc;
}

static int dial_udp(const struct sockaddr_storage *ss, socklen_t sl, const char *request, struct buf *out,
                    struct buf *err) {
  char e[128];
  int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (const struct sockaddr *)ss, sl) != 0) {
    go_strerror(errno, e, sizeof e);
    buf_addf(err, "udp dial failed. err:dial udp: %s", e);
    if (fd >= 0) close(fd);
    return -1;
  }
  if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0) {
    go_strerror(errno, e, sizeof e);
    buf_addf(err, "udp connection write failed. err:write udp: %s", e);
    close(fd);
    return -1;
  }
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  char la[96], ra[96];
  getsockname(fd, (struct sockaddr *)&local, &ll);
  fmt_sockaddr(&local, la, sizeof la);
  fmt_sockaddr(ss, ra, sizeof ra);
  struct pollfd p = {fd, POLLIN, 0};
  int pr;
  do pr = poll(&p, 1, 5000);
  while (pr < 0 && errno == EINTR);
  char data[2048];
  ssize_t n = pr > 0 ? recv(fd, data, sizeof data, 0) : -1;
  if (n <= 0) {
    if (pr == 0)
      snprintf(e, sizeof e, "i/o timeout");
    else
      go_strerror(n == 0 ? EIO : errno, e, sizeof e);
    buf_addf(err, "reading from udp connection failed. err:'read udp %s->%s: %s'", la, ra, e);
    close(fd);
    return -1;
  }
  buf_add(out, data, (size_t)n);
  close(fd);
  return 0;
}

static void ne_dial(struct server *s, struct conn *c, struct req *r) {
  struct buf host = {0}, port = {0}, request = {0}, protocol = {0}, tries_s = {0};
  /* upstream reads these from the URL query only */
  if (!query_get(r->query, r->query_len, "host", &host)) buf_adds(&host, "");
  if (!query_get(r->query, r->query_len, "port", &port)) buf_adds(&port, "");
  if (!query_get(r->query, r->query_len, "request", &request)) buf_adds(&request, "");
  if (!query_get(r->query, r->query_len, "protocol", &protocol)) buf_adds(&protocol, "");
  if (!query_get(r->query, r->query_len, "tries", &tries_s)) buf_adds(&tries_s, "");
  logmsg("GET /dial?host=%s&protocol=%s&port=%s&request=%s&tries=%s", host.p, protocol.p, port.p, request.p,
         tries_s.p);
  int f = fork_for(s, c);
  if (f != 0) {
    if (f < 0) respond_error(c, r, 500, "fork failed");
    goto out;
  }
  r->close = 1;
  long tries = 1;
  struct buf msg = {0};
  if (tries_s.len && parse_int(tries_s.p, &tries) != 0) {
    buf_addf(&msg, "tries parameter is invalid. strconv.Atoi: parsing \"%s\": invalid syntax", tries_s.p);
    respond_error(c, r, 400, msg.p);
    child_finish(c);
  }
  if (!request.len) {
    respond_error(c, r, 400, "request parameter not specified. <nil>");
    child_finish(c);
  }
  int udp = 0;
  if (!strcasecmp(protocol.p, "udp")) {
    udp = 1;
  } else if (!strcasecmp(protocol.p, "sctp")) {
    respond_error(c, r, 400, "host and/or port param are invalid. sctp is not supported by kemu's agnhost");
    child_finish(c);
  } else if (protocol.len && strcasecmp(protocol.p, "http")) {
    buf_addf(&msg, "unsupported protocol. %s", protocol.p);
    respond_error(c, r, 400, msg.p);
    child_finish(c);
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  char err[256];
  if (resolve(host.p, port.p, udp ? SOCK_DGRAM : SOCK_STREAM, &ss, &sl, err, sizeof err) != 0) {
    buf_addf(&msg, "host and/or port param are invalid. %s", err);
    respond_error(c, r, 400, msg.p);
    child_finish(c);
  }
  struct buf json = {0}, errors = {0}, responses = {0}, resp = {0}, e = {0};
  int nerr = 0, nresp = 0, last_ok = 0;
  for (long i = 0; i < tries; i++) {
    resp.len = 0;
    e.len = 0;
    int rc = udp ? dial_udp(&ss, sl, request.p, &resp, &e) : dial_http(&ss, sl, request.p, &resp, &e);
    if (rc == 0) {
      if (nresp++) buf_adds(&responses, ",");
      json_str(&responses, buf_str(&resp), resp.len);
      last_ok = resp.len > 0;
    } else {
      if (nerr++) buf_adds(&errors, ",");
      json_str(&errors, buf_str(&e), e.len);
      last_ok = 0;
    }
  }
  buf_adds(&json, "{");
  if (nerr) buf_addf(&json, "\"errors\":[%s]", errors.p);
  if (last_ok) buf_addf(&json, "%s\"responses\":[%s]", nerr ? "," : "", responses.p);
  buf_adds(&json, "}");
  respond(c, r, 200, TEXT, NULL, json.p, json.len);
  child_finish(c);
out:
  buf_free(&host);
  buf_free(&port);
  buf_free(&request);
  buf_free(&protocol);
  buf_free(&tries_s);
}

static void ne_shell(struct server *s, struct conn *c, struct req *r) {
  struct buf cmd = {0};
  if (!form_get(r, "shellCommand", &cmd) || !cmd.len) form_value(r, "cmd", &cmd);
  logmsg("GET /shell?cmd=%s", cmd.p);
  int f = fork_for(s, c);
  if (f != 0) {
    if (f < 0) respond_error(c, r, 500, "fork failed");
    buf_free(&cmd);
    return;
  }
  r->close = 1;
  struct buf output = {0}, err = {0};
  int pfd[2];
  if (pipe(pfd) != 0) {
    buf_addf(&err, "pipe: %s", strerror(errno));
  } else {
    pid_t pid = fork();
    if (pid == 0) {
      signal(SIGPIPE, SIG_DFL);
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      dup2(pfd[1], 1);
      dup2(pfd[1], 2);
      close(pfd[0]);
      close(pfd[1]);
      close(c->fd);
      execl("/bin/sh", "sh", "-c", cmd.p, (char *)NULL);
      _exit(127);
    }
    close(pfd[1]);
    char chunk[8192];
    ssize_t n;
    while ((n = read(pfd[0], chunk, sizeof chunk)) != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      buf_add(&output, chunk, (size_t)n);
    }
    close(pfd[0]);
    int status = 0;
    if (pid < 0) {
      buf_addf(&err, "fork/exec /bin/sh: %s", strerror(errno));
    } else if (waitpid(pid, &status, 0) == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status))
        buf_addf(&err, "exit status %d", WEXITSTATUS(status));
      else if (WIFSIGNALED(status))
        buf_addf(&err, "signal: %s", strsignal(WTERMSIG(status)));
    }
  }
  struct buf json = {0};
  buf_adds(&json, "{");
  if (err.len) json_str(&json, "error", 5), buf_adds(&json, ":"), json_str(&json, err.p, err.len);
  if (output.len) {
    if (err.len) buf_adds(&json, ",");
    json_str(&json, "output", 6), buf_adds(&json, ":"), json_str(&json, output.p, output.len);
  }
  buf_adds(&json, "}");
  logmsg("Output: map[%s%s%s%s%s]", err.len ? "error:" : "", buf_str(&err), err.len && output.len ? " " : "",
         output.len ? "output:" : "", buf_str(&output));
  respond(c, r, 200, TEXT, NULL, json.p, json.len);
  child_finish(c);
}

static void ne_exit(struct server *s, struct conn *c, struct req *r) {
  struct buf w = {0}, t = {0}, code_s = {0}, msg = {0};
  form_value(r, "wait", &w);
  form_value(r, "timeout", &t);
  form_value(r, "code", &code_s);
  logmsg("GET /exit?code=%s&timeout=%s&wait=%s", code_s.p, t.p, w.p);
  long long timeout = 0, wait = 0;
  long code = 0;
  if (t.len && parse_go_duration(t.p, &timeout) != 0) {
    buf_addf(&msg, "argument 'timeout' must be a valid golang duration or empty, got \"%s\"\n", t.p);
  } else if (w.len && parse_go_duration(w.p, &wait) != 0) {
    buf_addf(&msg, "argument 'wait' must be a valid golang duration or empty, got \"%s\"\n", w.p);
  } else if (code_s.len && parse_int(code_s.p, &code) != 0) {
    buf_addf(&msg, "argument 'code' must be an integer [0-127] or empty, got \"%s\"\n", code_s.p);
  }
  if (msg.len) {
    respond(c, r, 200, TEXT, NULL, msg.p, msg.len);
  } else {
    char ws[64], ts[64];
    go_duration(wait, ws, sizeof ws);
    go_duration(timeout, ts, sizeof ts);
    logmsg("Will begin shutdown in %s, allowing %s for connections to close, then will exit with %ld", ws, ts,
           code);
    s->exit_pending = 1;
    s->exit_at_ms = mono_ms() + (wait > 0 ? wait / 1000000 : 0);
    s->exit_timeout_ns = timeout;
    s->exit_code = (int)code;
    s->exit_conn = c->id;
    s->exit_head = r->head;
    c->busy = 1;
  }
  buf_free(&w);
  buf_free(&t);
  buf_free(&code_s);
  buf_free(&msg);
}

static void ne_http(struct server *s, struct conn *c, struct req *r) {
  char host[256];
  struct buf path = {0}, query = {0};
  if (ne.http_override[0]) {
    /* every request is served as if it were a GET of the override path */
    const char *o = ne.http_override, *q = strchr(o, '?');
    if (url_unescape(o, q ? (size_t)(q - o) : strlen(o), 0, &path) < 0) buf_adds(&path, o);
    buf_adds(&query, q ? q + 1 : "");
    r->path = path.p;
    r->query = query.p;
    r->query_len = query.len;
    r->form = 0;
  }
  const char *p = r->path;
  if (!strcmp(p, "/clientip")) {
    logmsg("GET /clientip");
    respond_text(c, r, 200, c->peer);
  } else if (!strcmp(p, "/dial")) {
    ne_dial(s, c, r);
  } else if (!strcmp(p, "/echo")) {
    struct buf msg = {0}, code_s = {0};
    form_value(r, "msg", &msg);
    form_value(r, "code", &code_s);
    logmsg("GET /echo?msg=%s&code=%s", msg.p, code_s.p);
    long code = 200;
    if (code_s.len && parse_int(code_s.p, &code) != 0) {
      struct buf e = {0};
      buf_addf(&e, "argument 'code' must be an integer or empty, got \"%s\"\n", code_s.p);
      respond(c, r, 200, TEXT, NULL, e.p, e.len);
      buf_free(&e);
    } else if (code < 100 || code > 999) {
      conn_close(c); /* Go panics on an invalid status code and drops the connection */
    } else {
      respond(c, r, (int)code, TEXT, NULL, msg.p, msg.len);
    }
    buf_free(&msg);
    buf_free(&code_s);
  } else if (!strcmp(p, "/exit")) {
    ne_exit(s, c, r);
  } else if (!strcmp(p, "/healthz")) {
    logmsg("GET /healthz");
    respond(c, r, ne.ready ? 200 : 412, NULL, NULL, "", 0);
  } else if (!strcmp(p, "/hostname") || !strcmp(p, "/hostName")) {
    logmsg("GET %s", p);
    hostname(host, sizeof host);
    respond_text(c, r, 200, host);
  } else if (!strcmp(p, "/header")) {
    struct buf key = {0};
    char v[4096] = "";
    form_value(r, "key", &key);
    logmsg("GET /header?key=%s", key.p);
    header_get(r, key.p, v, sizeof v);
    respond_text(c, r, 200, v);
    buf_free(&key);
  } else if (!strcmp(p, "/redirect")) {
    struct buf loc = {0}, code_s = {0};
    form_value(r, "location", &loc);
    form_value(r, "code", &code_s);
    logmsg("%s /redirect?msg=%s&code=%s", r->method, loc.p, code_s.p);
    long code = 302;
    if (code_s.len && parse_int(code_s.p, &code) != 0) {
      struct buf e = {0};
      buf_addf(&e, "argument 'code' must be an integer or empty, got \"%s\"\n", code_s.p);
      respond(c, r, 200, TEXT, NULL, e.p, e.len);
      buf_free(&e);
    } else {
      respond_redirect(c, r, loc.p, (int)code);
    }
    buf_free(&loc);
    buf_free(&code_s);
  } else if (!strcmp(p, "/shell")) {
    ne_shell(s, c, r);
  } else if (!strcmp(p, "/shutdown")) {
    logmsg("GET /shutdown");
    exit(0);
  } else if (!strcmp(p, "/upload")) {
    logmsg("GET /upload");
    logmsg("Unable to upload file: not supported by kemu's agnhost");
    respond_text(c, r, 200, "{\"error\":\"Unable to upload file.\"}");
  } else {
    char now[200], body[256];
    logmsg("GET /");
    go_now(now, sizeof now);
    snprintf(body, sizeof body, "NOW: %s", now);
    respond_text(c, r, 200, body);
  }
  buf_free(&path);
  buf_free(&query);
}

static void ne_udp(struct server *s, int fd, const char *data, size_t n, const struct sockaddr_storage *from,
                   socklen_t fl) {
  (void)s;
  char peer[96], host[256];
  fmt_sockaddr(from, peer, sizeof peer);
  /* strings.ToLower(strings.TrimSpace(text)) */
  char text[2048];
  size_t a = 0, b = n;
  while (a < b && isspace((unsigned char)data[a])) a++;
  while (b > a && isspace((unsigned char)data[b - 1])) b--;
  for (size_t i = a; i < b; i++) text[i - a] = (char)tolower((unsigned char)data[i]);
  text[b - a] = 0;
  if (!strcmp(text, "hostname")) {
    logmsg("Sending udp hostName response");
    hostname(host, sizeof host);
    sendto(fd, host, strlen(host), MSG_DONTWAIT, (const struct sockaddr *)from, fl);
  } else if (!strncmp(text, "echo ", 5)) {
    logmsg("Echoing %s to UDP client %s", text + 5, peer);
    sendto(fd, text + 5, strlen(text + 5), MSG_DONTWAIT, (const struct sockaddr *)from, fl);
  } else if (!strcmp(text, "clientip")) {
    logmsg("Sending clientip back to UDP client %s", peer);
    sendto(fd, peer, strlen(peer), MSG_DONTWAIT, (const struct sockaddr *)from, fl);
  } else if (text[0]) {
    logmsg("Unknown UDP command received from %s: %s", peer, text);
  }
}

static int cmd_netexec(int argc, char **argv) {
  struct flag fl[] = {
      {"http-port", F_INT, &ne.http_port, "HTTP Listen Port (-1: no HTTP server) (default 8080)"},
      {"udp-port", F_INT, &ne.udp_port, "UDP Listen Port (-1: no UDP server) (default 8081)"},
      {"sctp-port", F_INT, &ne.sctp_port, "SCTP Listen Port (accepted and ignored: no SCTP in kemu's agnhost)"},
      {"tls-cert-file", F_STR, &ne.tls_cert, "not supported by kemu's agnhost"},
      {"tls-private-key-file", F_STR, &ne.tls_key, "not supported by kemu's agnhost"},
      {"http-override", F_STR, &ne.http_override,
       "Override the HTTP handler to always respond as if it were a GET with this path & params"},
      {"udp-listen-addresses", F_STR, &ne.udp_addresses,
       "A comma separated list of ip addresses the udp servers listen from"},
  };
  char *pos[1];
  parse_flags(ne_use, ne_desc, argc, argv, fl, (int)(sizeof fl / sizeof fl[0]), pos, 0);
  if (ne.tls_cert[0] || ne.tls_key[0]) fatal("netexec: TLS (--tls-cert-file) is not supported by kemu's agnhost");
  struct server s;
  server_init(&s);
  s.on_http = ne_http;
  s.on_udp = ne_udp;
  if (ne.udp_port != -1) {
    char addrs[1024];
    snprintf(addrs, sizeof addrs, "%s", ne.udp_addresses);
    if (!addrs[0]) {
      s.udp_fds[s.nudp++] = listen_udp_addr("", ne.udp_port);
      logmsg("Started UDP server on port  %d", ne.udp_port);
    } else {
      for (char *save = NULL, *a = strtok_r(addrs, ",", &save); a && s.nudp < MAX_UDP;
           a = strtok_r(NULL, ",", &save)) {
        int dup = 0;
        for (char *b = addrs; b < a; b += strlen(b) + 1)
          if (!strcmp(b, a)) dup = 1;
        if (dup) continue;
        s.udp_fds[s.nudp++] = listen_udp_addr(a, ne.udp_port);
        logmsg("Started UDP server on port %s %d", a, ne.udp_port);
      }
    }
    ne.ready = 1;
  }
  if (ne.sctp_port != -1) {
    logmsg("SCTP is not supported by kemu's agnhost: --sctp-port=%d ignored", ne.sctp_port);
    ne.ready = 1;
  }
  if (ne.http_port != -1) {
    s.http_fd = listen_tcp(ne.http_port);
    logmsg("Started HTTP server on port %d", ne.http_port);
  }
  run_server(&s);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* serve-hostname                                                                              */

static struct {
  int tcp, udp, http, close, port;
  char host[256];
} sh = {0, 0, 1, 0, 9376, ""};

static void sh_http(struct server *s, struct conn *c, struct req *r) {
  (void)s;
  logmsg("HTTP request from %s", c->peer);
  if (sh.close) r->close = 1;
  respond_text(c, r, 200, sh.host);
}

static void sh_udp(struct server *s, int fd, const char *data, size_t n, const struct sockaddr_storage *from,
                   socklen_t fl) {
  (void)s, (void)data, (void)n;
  char peer[96];
  fmt_sockaddr(from, peer, sizeof peer);
  logmsg("UDP request from %s", peer);
  sendto(fd, sh.host, strlen(sh.host), MSG_DONTWAIT, (const struct sockaddr *)from, fl);
}

static int cmd_serve_hostname(int argc, char **argv) {
  struct flag fl[] = {
      {"tcp", F_BOOL, &sh.tcp, "Serve raw over TCP."},
      {"udp", F_BOOL, &sh.udp, "Serve raw over UDP."},
      {"http", F_BOOL, &sh.http, "Serve HTTP. (default true)"},
      {"close", F_BOOL, &sh.close, "Close connection per each HTTP request."},
      {"port", F_INT, &sh.port, "Port number. (default 9376)"},
  };
  char *pos[1];
  parse_flags("serve-hostname", "Serves the hostname through HTTP / TCP / UDP on the given port.", argc, argv, fl,
              (int)(sizeof fl / sizeof fl[0]), pos, 0);
  if (sh.http && (sh.tcp || sh.udp)) fatal("Can't server TCP/UDP mode and HTTP mode at the same time");
  hostname(sh.host, sizeof sh.host);
  struct server s;
  server_init(&s);
  s.on_http = sh_http;
  s.on_udp = sh_udp;
  s.tcp_reply = sh.host;
  if (sh.tcp) s.tcp_fd = listen_tcp(sh.port);
  if (sh.udp) {
    s.udp_fds[s.nudp++] = bind_any(SOCK_DGRAM, sh.port);
    if (s.udp_fds[0] < 0) fatal("Error from ListenUDP(): listen udp :%d: bind: %s", sh.port, strerror(errno));
  }
  if (sh.http) s.http_fd = listen_tcp(sh.port);
  logmsg("Serving on port %d.", sh.port);
  run_server(&s);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* liveness                                                                                    */

static long long lv_started_ns;

static void lv_http(struct server *s, struct conn *c, struct req *r) {
  (void)s;
  char d[64], body[128];
  long long since = mono_ns() - lv_started_ns;
  if (!strcmp(r->path, "/started")) {
    go_duration(since, d, sizeof d);
    respond_text(c, r, 200, d);
  } else if (!strcmp(r->path, "/healthz")) {
    if (since > 10000000000LL) {
      snprintf(body, sizeof body, "error: %.9g", (double)since / 1e9);
      respond_text(c, r, 500, body);
    } else {
      respond_text(c, r, 200, "ok");
    }
  } else if (!strcmp(r->path, "/redirect")) {
    struct buf loc = {0};
    form_value(r, "loc", &loc);
    respond_redirect(c, r, loc.p, 302);
    buf_free(&loc);
  } else {
    respond_error(c, r, 404, "404 page not found");
  }
}

static int cmd_liveness(int argc, char **argv) {
  char *pos[1];
  parse_flags("liveness", "Starts a server that is alive for 10 seconds", argc, argv, NULL, 0, pos, 0);
  lv_started_ns = mono_ns();
  struct server s;
  server_init(&s);
  s.on_http = lv_http;
  s.http_fd = listen_tcp(8080);
  run_server(&s);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* connect                                                                                     */

static int cmd_connect(int argc, char **argv) {
  long long timeout = 0;
  const char *protocol = "tcp", *udp_data = "hostname", *sctp_data = "hostname";
  struct flag fl[] = {
      {"timeout", F_DUR, &timeout, "Maximum time before returning an error"},
      {"protocol", F_STR, &protocol, "The protocol to use to perform the connection, can be tcp, udp or sctp"},
      {"udp-data", F_STR, &udp_data, "The UDP payload send to the server (default \"hostname\")"},
      {"sctp-data", F_STR, &sctp_data, "The SCTP payload send to the server (not supported)"},
  };
  const char *desc = "Attempts a TCP, UDP or SCTP connection and returns useful errors";
  char *pos[2];
  int npos = parse_flags("connect [host:port]", desc, argc, argv, fl, (int)(sizeof fl / sizeof fl[0]), pos, 2);
  if (npos != 1) {
    fprintf(stderr, "Error: accepts 1 arg(s), received %d\n", npos);
    exit(1);
  }
  const char *dest = pos[0];
  char host[256], port[64], err[300], e[128];
  struct sockaddr_storage ss;
  socklen_t sl;
  int udp;
  if (!strcmp(protocol, "") || !strcmp(protocol, "tcp")) {
    udp = 0;
  } else if (!strcmp(protocol, "udp")) {
    udp = 1;
  } else if (!strcmp(protocol, "sctp")) {
    fprintf(stderr, "OTHER: sctp is not supported by kemu's agnhost\n");
    return 1;
  } else {
    fprintf(stderr, "Unsupported protocol\n%s", protocol);
    return 1;
  }
  if (split_host_port(dest, host, sizeof host, port, sizeof port) != 0) {
    fprintf(stderr, "%s: address %s: missing port in address\n", udp ? "DNS" : "UNKNOWN", dest);
    return 1;
  }
  if (resolve(host, port, udp ? SOCK_DGRAM : SOCK_STREAM, &ss, &sl, err, sizeof err) != 0) {
    fprintf(stderr, "DNS: %s\n", err);
    return 1;
  }
  long long deadline = timeout > 0 ? mono_ms() + (timeout + 999999) / 1000000 : 0;
  int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM | SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    go_strerror(errno, e, sizeof e);
    fprintf(stderr, "OTHER: socket: %s\n", e);
    return 1;
  }
  if (!udp) {
    if (connect_deadline(fd, (struct sockaddr *)&ss, sl, deadline) == 0) return 0;
    if (errno == ETIMEDOUT) {
      fprintf(stderr, "TIMEOUT\n");
    } else if (errno == ECONNREFUSED) {
      fprintf(stderr, "REFUSED\n");
    } else {
      go_strerror(errno, e, sizeof e);
      fprintf(stderr, "OTHER: dial tcp %s: connect: %s\n", dest, e);
    }
    return 1;
  }
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
    go_strerror(errno, e, sizeof e);
    fprintf(stderr, "OTHER: dial udp %s: %s\n", dest, e);
    return 1;
  }
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  char la[96], ra[96];
  getsockname(fd, (struct sockaddr *)&local, &ll);
  fmt_sockaddr(&local, la, sizeof la);
  fmt_sockaddr(&ss, ra, sizeof ra);
  struct buf payload = {0};
  buf_addf(&payload, "%s\n", udp_data);
  const char *op = "write";
  ssize_t n = send(fd, payload.p, payload.len, MSG_NOSIGNAL);
  char buf[1024];
  if (n >= 0) {
    op = "read";
    struct pollfd p = {fd, POLLIN, 0};
    int pr;
    do pr = poll(&p, 1, deadline ? (int)(deadline - mono_ms() > 0 ? deadline - mono_ms() : 0) : -1);
    while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      fprintf(stderr, "TIMEOUT: read udp %s->%s: i/o timeout\n", la, ra);
      return 1;
    }
    n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      fprintf(stderr,
              "OTHER: No data received from the server. Cannot guarantee the server received the request.\n");
      return 1;
    }
    if (n > 0) return 0;
  }
  go_strerror(errno, e, sizeof e);
  fprintf(stderr, "%s: %s udp %s->%s: %s\n", errno == ECONNREFUSED ? "REFUSED" : "UNKNOWN", op, la, ra, e);
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* pause                                                                                       */

static int cmd_pause(int argc, char **argv) {
  char *pos[1];
  parse_flags("pause", "Pauses the execution", argc, argv, NULL, 0, pos, 0);
  printf("Paused\n");
  fflush(stdout);
  while (!g_signal) sigsuspend(&g_waitmask);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "agnhost (kemu): a small C implementation of the agnhost test image's subcommands.\n"
          "\n"
          "Usage:\n"
          "  agnhost [command]\n"
          "\n"
          "Available Commands:\n"
          "  connect         Attempts a TCP or UDP connection and returns useful errors\n"
          "  liveness        Starts a server that is alive for 10 seconds\n"
          "  netexec         Creates HTTP and UDP servers with various endpoints\n"
          "  pause           Pauses the execution until SIGTERM or SIGINT\n"
          "  serve-hostname  Serves the hostname through HTTP / TCP / UDP on the given port\n"
          "\n"
          "Use \"agnhost [command] --help\" for more information about a command.\n");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  tzset();
  g_start_ns = mono_ns();
  setup_signals();
  raise_nofile();
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "netexec")) return cmd_netexec(argc - 2, argv + 2);
  if (!strcmp(cmd, "serve-hostname")) return cmd_serve_hostname(argc - 2, argv + 2);
  if (!strcmp(cmd, "pause")) return cmd_pause(argc - 2, argv + 2);
  if (!strcmp(cmd, "liveness")) return cmd_liveness(argc - 2, argv + 2);
  if (!strcmp(cmd, "connect")) return cmd_connect(argc - 2, argv + 2);
  fprintf(stderr, "Error: unknown command \"%s\" for \"agnhost\"\n\n", cmd);
  usage(stderr);
  return 1;
}
