/* fz-argv: the three programs run with hostile arguments and environments.

   Each input runs one program (the first byte picks which) from FZ_BIN
   (the sanitizer build, in package/check) in a scratch directory. The
   rest of the input is cut at NULs into pieces: a piece whose first byte
   has its high bit set is the value of one of the variables the programs
   read (POPRELAY_*, the client address variables, USER, SERVICE...),
   picked by that byte; any other piece is the next argument. Every "/"
   in a piece is taken to mean the scratch directory and every ".." is
   broken, so that no path leaves it; PATH holds one program, "session",
   which exits 0.

   - The exit status is one the program's man page documents: 0, 100,
     111, 126, 127 (and, for a service stopped by SIGTERM, 0); never a
     signal, never a sanitizer's.
   - Everything on standard error is a line "prog: fatal|warning|info|
     usage: ..."; a usage error or a bad setting of relay-open and
     relay-clean (exit 100) is one line.
   - pop3-wrapper runs the session unless its own arguments are wrong:
     it exits 100 only with a usage line.
   - A stamp appears only for an address one of the variables gave
     (fd 0 is not a socket here): nothing else is ever granted.
   - A holder (pop3-wrapper -h) ends with its session: no process of the
     run is left two seconds after pop3-wrapper's. */

#define _GNU_SOURCE   /* posix_spawn_file_actions_addchdir_np */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <skalibs/stralloc.h>
#include "ip.h"
#include "fz.h"

static uint8_t const *data ;
static size_t size ;
static char S[64] ;
static char bin[4096] ;

static char const *const progs[3] = { "pop3-wrapper", "relay-open", "relay-clean" } ;
static char const *const vars[] = {
  "POPRELAY_DIR", "POPRELAY_CACHE", "POPRELAY_RULES", "POPRELAY_CDB", "POPRELAY_TTL",
  "POPRELAY_SKEW", "POPRELAY_GRACE", "POPRELAY_NEVER", "POPRELAY_ENV", "POPRELAY_TCPRULES",
  "TCPREMOTEIP", "PROTO", "TCP6REMOTEIP", "SSLREMOTEIP", "IP", "REMOTE_HOST", "USER", "SERVICE",
  "AUTHORIZED", "TCPLOCALIP", "TCPLOCALPORT", "LOCAL_IP", "SSLLOCALIP", "POPRELAY_HOLD", "X" } ;
#define NVARS (sizeof vars / sizeof *vars)
/* the client address variables: what may become a stamp */
#define ADDRVAR(i) ((i) == 10 || ((i) >= 12 && (i) <= 15))

static int rmone (char const *p, struct stat const *st, int flag, struct FTW *f)
{
  (void)st ; (void)f ;
  if (flag == FTW_DP) rmdir(p) ; else unlink(p) ;
  return 0 ;
}

static void cleanup (void)
{
  if (S[0]) nftw(S, &rmone, 16, FTW_DEPTH | FTW_PHYS) ;
}

static void writefile (char const *name, char const *s, int mode)
{
  char p[256] ;
  int fd ;
  snprintf(p, sizeof p, "%s/%s", S, name) ;
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode) ;
  if (fd == -1 || write(fd, s, strlen(s)) != (ssize_t)strlen(s) || close(fd) == -1) { perror(p) ; exit(111) ; }
}

static void setup (void)
{
  char const *b = getenv("FZ_BIN") ;
  char p[256] ;
  if (!b) { fprintf(stderr, "fz-argv: set FZ_BIN to the directory of the programs\n") ; exit(100) ; }
  snprintf(bin, sizeof bin, "%s", b) ;
  snprintf(S, sizeof S, "/tmp/poprelay-fzargv.XXXXXX") ;
  if (!mkdtemp(S)) { perror("mkdtemp") ; exit(111) ; }
  atexit(&cleanup) ;
  snprintf(p, sizeof p, "%s/relay", S) ; mkdir(p, 0755) ;
  snprintf(p, sizeof p, "%s/bin", S) ; mkdir(p, 0755) ;
  writefile("rules", "127.:allow,RELAYCLIENT=\"\"\n10.9.:deny\n:allow,QMAILQUEUE=\"/bin/scan\"\n", 0644) ;
  /* the session: a program that exits 0, and nothing else on PATH */
  writefile("bin/session", "#!/bin/sh\nexit 0\n", 0755) ;
}

/* every "/" is the scratch directory, and ".." goes nowhere */
static void confine (stralloc *out, char const *s, size_t len)
{
  out->len = 0 ;
  for (size_t i = 0 ; i < len ; i++)
  {
    if (s[i] == '/') { if (!stralloc_cats(out, S) || !stralloc_catb(out, "/", 1)) abort() ; }
    else if (s[i] == '.' && i + 1 < len && s[i + 1] == '.') { if (!stralloc_catb(out, "_", 1)) abort() ; }
    else if (!stralloc_catb(out, s + i, 1)) abort() ;
  }
  if (!stralloc_0(out)) abort() ;
}

static size_t slurp (char const *name, char *buf, size_t max)
{
  char p[256] ;
  ssize_t r ;
  int fd ;
  snprintf(p, sizeof p, "%s/%s", S, name) ;
  fd = open(p, O_RDONLY) ;
  if (fd == -1) return 0 ;
  r = read(fd, buf, max - 1) ;
  close(fd) ;
  if (r < 0) r = 0 ;
  buf[r] = 0 ;
  return (size_t)r ;
}

/* stamps: files named like an address anywhere in the scratch directory */
static ip_t given[NVARS] ;
static unsigned int ngiven ;
static char const *stampfail ;
static char stampname[IP_FMT] ;
static int checking ;
static unsigned long runs ;

static int onfile (char const *p, struct stat const *st, int flag, struct FTW *f)
{
  char const *name = p + f->base ;
  ip_t ip ;
  char canon[IP_FMT] ;
  size_t len = strlen(name) ;
  (void)st ;
  if (flag != FTW_F || !ip_scan(&ip, name, len) || ip_fmt(canon, &ip) != len || memcmp(canon, name, len)) return 0 ;
  if (checking)
  {
    unsigned int i = 0 ;
    while (i < ngiven && !ip_equal(&given[i], &ip)) i++ ;
    if (i == ngiven && !stampfail) { stampfail = "a stamp for an address no variable gave" ; memcpy(stampname, canon, len + 1) ; }
  }
  unlink(p) ;
  return 0 ;
}

static int maybe_service (char **argv, int argc)
{
  for (int i = 1 ; i < argc ; i++)
  {
    if (argv[i][0] != '-' || !argv[i][1]) return 0 ;
    if (!strcmp(argv[i], "--")) return 0 ;
    if (strchr(argv[i], 'w')) return 1 ;
  }
  return 0 ;
}

/* The run of one program, in a child of the fuzzer's own that is the
   subreaper of what the program starts, so that a holder is told from
   any other child of the fuzzer (the sanitizers' symbolizer, which
   libFuzzer starts to name new functions and which stays). The child
   gives the program 0.3 s if a service, 10 s otherwise, then SIGTERM,
   then 2 s more; then waits for the program's descendants, 2 s at most;
   and says how it went through a pipe. */
typedef struct outcome_s { int status, termed, stuck ; } outcome_t ;  /* stuck: 1 the program, 2 a holder */

static void runchild (int wfd, posix_spawn_file_actions_t const *fa, char const *prog, char **argv, char **envp, int service)
{
  outcome_t o = { 0, 0, 0 } ;
  struct timespec tick = { 0, 200000 }, ms = { 0, 1000000 } ;
  unsigned long limit = service ? 1500 : 50000, waited = 0 ;
  pid_t pid ;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1 || posix_spawn(&pid, prog, fa, 0, argv, envp)) _exit(111) ;
  for (;;)
  {
    pid_t r = waitpid(pid, &o.status, WNOHANG) ;
    if (r == pid) break ;
    if (r == -1 && errno != EINTR) _exit(111) ;
    if (++waited == limit)
    {
      if (o.termed) { kill(pid, SIGKILL) ; waitpid(pid, &o.status, 0) ; o.stuck = 1 ; break ; }
      kill(pid, SIGTERM) ;
      o.termed = 1 ;
      waited = 0 ;
      limit = 10000 ;
    }
    nanosleep(&tick, 0) ;
  }
  /* A holder (pop3-wrapper -h) ends with its session, which here exits
     at once: once the program is reaped, none may be left 2 s later */
  for (waited = 0 ; !o.stuck ;)
  {
    int st ;
    pid_t r = waitpid(-1, &st, WNOHANG) ;
    if (r > 0) continue ;
    if (r == -1 && errno != EINTR) break ;   /* ECHILD: none left */
    if (++waited >= 2000) o.stuck = 2 ;
    else nanosleep(&ms, 0) ;
  }
  if (write(wfd, &o, sizeof o) != sizeof o) _exit(111) ;
  _exit(0) ;
}

static void run (posix_spawn_file_actions_t const *fa, char const *prog, char **argv, char **envp, int service, outcome_t *o)
{
  int p[2], st ;
  pid_t c ;
  if (pipe(p) == -1) { perror("pipe") ; abort() ; }
  c = fork() ;
  if (c == -1) { perror("fork") ; abort() ; }
  if (!c) { close(p[0]) ; runchild(p[1], fa, prog, argv, envp, service) ; }
  close(p[1]) ;
  while (waitpid(c, &st, 0) == -1) if (errno != EINTR) { perror("waitpid") ; abort() ; }
  if (read(p[0], o, sizeof *o) != sizeof *o || !WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "fz-argv: the run of %s failed\n", prog) ; abort() ; }
  close(p[0]) ;
}

extern char **environ ;

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  static stralloc pieces[64] ;
  char *argv[66], *envp[NVARS + 8] ;
  stralloc envs = STRALLOC_ZERO ;
  size_t envoff[NVARS + 8] ;
  int argc = 1, nenv = 0, which, status, termed, service ;
  outcome_t o ;
  int set[NVARS] ;
  char prog[4200], out[256], err[256] ;
  static char ebuf[1 << 16] ;
  posix_spawn_file_actions_t fa ;

  if (!S[0]) setup() ;
  data = d ; size = s ;
  if (!s || s > 8192) return 0 ;
  which = d[0] % 3 ;
  snprintf(prog, sizeof prog, "%s/%s", bin, progs[which]) ;
  argv[0] = (char *)progs[which] ;
  memset(set, 0, sizeof set) ;
  ngiven = 0 ;

  /* the pieces */
  {
    size_t pos = 1 ;
    unsigned int np = 0 ;
    while (pos < s && np < 64)
    {
      char const *z = memchr(d + pos, 0, s - pos) ;
      size_t end = z ? (size_t)((uint8_t const *)z - d) : s ;
      char const *p = (char const *)d + pos ;
      size_t plen = end - pos ;
      if (plen && (unsigned char)p[0] >= 0x80)
      {
        unsigned int v = ((unsigned char)p[0] & 0x7f) % NVARS ;
        confine(&pieces[np], p + 1, plen - 1) ;
        if (!set[v])
        {
          set[v] = 1 ;
          envoff[nenv] = envs.len ;
          if (!stralloc_cats(&envs, vars[v]) || !stralloc_catb(&envs, "=", 1) || !stralloc_cats(&envs, pieces[np].s) || !stralloc_0(&envs)) abort() ;
          nenv++ ;
          if (ADDRVAR(v) && ip_scan(&given[ngiven], pieces[np].s, strlen(pieces[np].s))) ngiven++ ;
        }
      }
      else if (argc < 64)
      {
        confine(&pieces[np], p, plen) ;
        argv[argc++] = pieces[np].s ;
      }
      np++ ;
      pos = end + 1 ;
    }
  }
  argv[argc] = 0 ;
  /* defaults inside the scratch directory, so that nothing outside it is
     ever the relay directory, the cache or the cdb */
  {
    static char const *const dflt[4][2] = { { "POPRELAY_DIR", "relay" }, { "POPRELAY_CACHE", "cache" }, { "POPRELAY_RULES", "rules" }, { "POPRELAY_CDB", "rules.cdb" } } ;
    for (unsigned int i = 0 ; i < 4 ; i++)
      if (!set[i])
      {
        envoff[nenv++] = envs.len ;
        if (!stralloc_cats(&envs, dflt[i][0]) || !stralloc_catb(&envs, "=", 1) || !stralloc_cats(&envs, S)
         || !stralloc_catb(&envs, "/", 1) || !stralloc_cats(&envs, dflt[i][1]) || !stralloc_0(&envs)) abort() ;
      }
    envoff[nenv++] = envs.len ;
    if (!stralloc_cats(&envs, "PATH=") || !stralloc_cats(&envs, S) || !stralloc_cats(&envs, "/bin") || !stralloc_0(&envs)) abort() ;
    {
      static char const *const keep[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", 0 } ;
      for (unsigned int i = 0 ; keep[i] ; i++)
      {
        char const *v = getenv(keep[i]) ;
        if (!v) continue ;
        envoff[nenv++] = envs.len ;
        if (!stralloc_cats(&envs, keep[i]) || !stralloc_catb(&envs, "=", 1) || !stralloc_cats(&envs, v) || !stralloc_0(&envs)) abort() ;
      }
    }
  }
  for (int i = 0 ; i < nenv ; i++) envp[i] = envs.s + envoff[i] ;
  envp[nenv] = 0 ;
  snprintf(out, sizeof out, "%s/out", S) ;
  snprintf(err, sizeof err, "%s/err", S) ;
  if (posix_spawn_file_actions_init(&fa)
   || posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
   || posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600)
   || posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600)
   || posix_spawn_file_actions_addchdir_np(&fa, S))
  { perror("posix_spawn_file_actions") ; abort() ; }
  service = which && maybe_service(argv, argc) ;
  run(&fa, prog, argv, envp, service, &o) ;
  posix_spawn_file_actions_destroy(&fa) ;
  if (o.stuck == 1) fz_fail(d, s, "%s did not stop %s", progs[which], service ? "on SIGTERM" : "within 10 seconds") ;
  FZ_CHECK(o.stuck != 2, "%s: a holder outlived its session by two seconds", progs[which]) ;
  status = o.status ;
  termed = o.termed ;

  slurp("err", ebuf, sizeof ebuf) ;
  if (!WIFEXITED(status))
  {
    FZ_CHECK(termed && service && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "%s died of signal %d; stderr:\n%s", progs[which], WIFSIGNALED(status) ? WTERMSIG(status) : 0, ebuf) ;
  }
  else
  {
    int code = WEXITSTATUS(status) ;
    FZ_CHECK(code == 0 || code == 100 || code == 111 || code == 126 || code == 127, "%s exited %d; stderr:\n%s", progs[which], code, ebuf) ;
    /* every line is the program's, in its format */
    {
      char const *l = ebuf ;
      unsigned int lines = 0 ;
      size_t pl = strlen(progs[which]) ;
      char const *last = 0 ;
      while (*l)
      {
        char const *nl = strchr(l, '\n') ;
        FZ_CHECK(nl, "%s: a message without a newline:\n%s", progs[which], ebuf) ;
        FZ_CHECK(!strncmp(l, progs[which], pl) && l[pl] == ':' &&
                 (!strncmp(l + pl, ": fatal: ", 9) || !strncmp(l + pl, ": warning: ", 11) || !strncmp(l + pl, ": info: ", 8) || !strncmp(l + pl, ": usage: ", 9)),
                 "%s: a line that is not \"%s: fatal|warning|info|usage: ...\":\n%s", progs[which], progs[which], ebuf) ;
        last = l ;
        lines++ ;
        l = nl + 1 ;
      }
      if (code == 100)
      {
        FZ_CHECK(last, "%s exited 100 without a word", progs[which]) ;
        if (which) FZ_CHECK(lines == 1 && (!strncmp(last + pl, ": fatal: ", 9) || !strncmp(last + pl, ": usage: ", 9)), "%s exited 100 with more or other than one fatal or usage line:\n%s", progs[which], ebuf) ;
        else FZ_CHECK(!strncmp(last + pl, ": usage: ", 9), "pop3-wrapper exited 100 without a usage error:\n%s", ebuf) ;
      }
      if (code == 111 && which) FZ_CHECK(last, "%s exited 111 without a word", progs[which]) ;
    }
  }

  stampfail = 0 ;
  checking = !which ;
  nftw(S, &onfile, 16, FTW_PHYS) ;
  /* now and then, what the runs made goes, but the rules and the session */
  if (!(++runs % 500))
  {
    DIR *dir = opendir(S) ;
    struct dirent *e ;
    char p[512] ;
    while (dir && (e = readdir(dir)))
    {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "rules") || !strcmp(e->d_name, "bin") || !strcmp(e->d_name, "relay")) continue ;
      snprintf(p, sizeof p, "%s/%s", S, e->d_name) ;
      nftw(p, &rmone, 16, FTW_DEPTH | FTW_PHYS) ;
    }
    if (dir) closedir(dir) ;
  }
  FZ_CHECK(!stampfail, "%s: %s: %s", progs[which], stampfail, stampname) ;
  stralloc_free(&envs) ;
  return 0 ;
}
