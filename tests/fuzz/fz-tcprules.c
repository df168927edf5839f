/* fz-tcprules: the static rules parser against tcprules itself.

   The first byte picks the flavour (bit 0: ucspi-tcp-ipv6, compared with
   that package's tcprules), the rest is the rules text. For each input,
   the text goes through rules_parse and cdbout (what relay-open does with
   no grants) and through the real tcprules; then:
   - both accept it and the two cdb files are the same bytes, or
   - both refuse it, and the line tcprules prints is the line relay-open
     names.
   Two known differences of ucspi-tcp-ipv6's tcprules are taken out before
   the comparison, and checked on their own: it never returns on a line
   of blanks (relay-open skips it, as ucspi-tcp's tcprules does: such
   lines are given to it empty), nor on a line with no colon followed by
   allow or deny (relay-open refuses it: tcprules is given the lines
   before it, which both must read the same, and one input in 16 checks
   that tcprules does hang there).

   With FZ_RELAY_OPEN naming a relay-open program, the text also goes
   through that program (an empty relay directory, so no grants): it must
   write the same cdb, or refuse with "relay-open: fatal: FILE:LINE: why"
   naming the same line and leave the old cdb, with no temp file. Run so
   over a corpus (-runs=0), this checks the program itself.

   FZ_TCPRULES and FZ_TCPRULES6 name the two tcprules programs (defaults:
   /usr/bin/tcprules, and .deps/ucspi-tcp-ipv6/usr/bin/tcprules from the
   top of the tree, found from this program's path). */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "cdbout.h"
#include "ip.h"
#include "rules.h"
#include "fz.h"

extern char **environ ;

static uint8_t const *data ;
static size_t size ;
static char dir[64] ;
static char tr4[4096], tr6[4096] ;
static char const *relayopen ;

static void cleanup (void)
{
  static char const *const names[] = { "in.txt", "ours.cdb", "theirs.cdb", "theirs.tmp", "err", "ours.cdb.relay-open.tmp", "prog.cdb", "prog.cdb.relay-open.tmp", "prog.err", "cache/lock", "cache/pending", 0 } ;
  char p[128] ;
  for (unsigned int i = 0 ; names[i] ; i++) { snprintf(p, sizeof p, "%s/%s", dir, names[i]) ; unlink(p) ; }
  snprintf(p, sizeof p, "%s/cache/scan", dir) ; rmdir(p) ;
  snprintf(p, sizeof p, "%s/cache", dir) ; rmdir(p) ;
  snprintf(p, sizeof p, "%s/relay", dir) ; rmdir(p) ;
  rmdir(dir) ;
}

static void setup (void)
{
  char const *e ;
  char const *shm = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm" ;
  snprintf(dir, sizeof dir, "%s/poprelay-fz.XXXXXX", shm) ;
  if (!mkdtemp(dir)) { perror("mkdtemp") ; exit(111) ; }
  atexit(&cleanup) ;
  e = getenv("FZ_TCPRULES") ;
  snprintf(tr4, sizeof tr4, "%s", e ? e : "/usr/bin/tcprules") ;
  e = getenv("FZ_TCPRULES6") ;
  if (e) snprintf(tr6, sizeof tr6, "%s", e) ;
  else
  {
    char self[4000] ;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1) ;
    char *p ;
    if (n < 0) { perror("readlink") ; exit(111) ; }
    self[n] = 0 ;
    /* TOP/.build-fuzz/tests/fuzz/fz-tcprules */
    for (int up = 0 ; up < 4 ; up++) { p = strrchr(self, '/') ; if (p) *p = 0 ; }
    snprintf(tr6, sizeof tr6, "%s/.deps/ucspi-tcp-ipv6/usr/bin/tcprules", self) ;
  }
  if (access(tr4, X_OK) || access(tr6, X_OK)) { fprintf(stderr, "fz-tcprules: no tcprules at %s or %s\n", tr4, tr6) ; exit(111) ; }
  relayopen = getenv("FZ_RELAY_OPEN") ;
  if (relayopen)
  {
    char p[128] ;
    snprintf(p, sizeof p, "%s/relay", dir) ;
    if (mkdir(p, 0700) == -1) { perror(p) ; exit(111) ; }
  }
}

static void path (char *p, char const *name)
{
  snprintf(p, 128, "%s/%s", dir, name) ;
}

static void writefile (char const *name, char const *s, size_t len)
{
  char p[128] ;
  int fd ;
  path(p, name) ;
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600) ;
  if (fd == -1 || write(fd, s, len) != (ssize_t)len || close(fd) == -1) { perror(p) ; abort() ; }
}

static size_t readfile (char const *name, char *buf, size_t max)
{
  char p[128] ;
  ssize_t r ;
  int fd ;
  path(p, name) ;
  fd = open(p, O_RDONLY) ;
  if (fd == -1) return 0 ;
  r = read(fd, buf, max) ;
  close(fd) ;
  return r > 0 ? (size_t)r : 0 ;
}

/* Runs argv with standard input from stdin_name (or /dev/null) and
   standard error into err_name. Returns its exit status, -1 if it ran past
   ms milliseconds (then it is killed). posix_spawn, not fork: forking a
   sanitized process copies its large address space each time. */
static int run (char *const *argv, char const *stdin_name, char const *err_name, unsigned int ms)
{
  char in[128], err[128] ;
  posix_spawn_file_actions_t fa ;
  struct timespec tick = { 0, 100000 } ;
  int status = 0, r ;
  pid_t pid ;
  if (stdin_name) path(in, stdin_name) ; else strcpy(in, "/dev/null") ;
  path(err, err_name) ;
  if (posix_spawn_file_actions_init(&fa)
   || posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0)
   || posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600)
   || posix_spawn(&pid, argv[0], &fa, 0, argv, environ))
  { perror("posix_spawn") ; abort() ; }
  posix_spawn_file_actions_destroy(&fa) ;
  for (unsigned long waited = 0 ; ; waited++)
  {
    r = waitpid(pid, &status, WNOHANG) ;
    if (r == pid) break ;
    if (r == -1 && errno != EINTR) { perror("waitpid") ; abort() ; }
    if (waited / 10 >= ms)
    {
      kill(pid, SIGKILL) ;
      while (waitpid(pid, &status, 0) == -1 && errno == EINTR) ;
      return -1 ;
    }
    nanosleep(&tick, 0) ;
  }
  if (!WIFEXITED(status)) { fprintf(stderr, "fz-tcprules: %s died (status 0x%x)\n", argv[0], status) ; abort() ; }
  return WEXITSTATUS(status) ;
}

/* Runs tcprules on in.txt: its exit status, or -1 after ms milliseconds */
static int tcprules (char const *prog, unsigned int ms)
{
  char cdb[128], tmp[128] ;
  char *argv[4] = { (char *)prog, cdb, tmp, 0 } ;
  path(cdb, "theirs.cdb") ; path(tmp, "theirs.tmp") ;
  unlink(cdb) ;
  return run(argv, "in.txt", "err", ms) ;
}

/* the line relay-open names, as tcprules prints it: without its newline
   and trailing blanks */
static void nthline (char const *text, size_t len, uint32_t n, char const **s, size_t *l)
{
  size_t pos = 0 ;
  for (uint32_t i = 1 ; i < n && pos < len ; i++)
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    pos = nl ? (size_t)(nl - text) + 1 : len ;
  }
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    size_t end = nl ? (size_t)(nl - text) : len ;
    while (end > pos && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\n')) end-- ;
    *s = text + pos ;
    *l = end - pos ;
  }
}

/* the text of the first n-1 lines */
static size_t firstlines (char const *text, size_t len, uint32_t n)
{
  size_t pos = 0 ;
  for (uint32_t i = 1 ; i < n && pos < len ; i++)
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    pos = nl ? (size_t)(nl - text) + 1 : len ;
  }
  return pos ;
}

/* ucspi-tcp-ipv6's tcprules spins on a line of blanks: give it those lines
   empty, which both skip */
static size_t unblank (char *out, char const *text, size_t len)
{
  size_t pos = 0, n = 0 ;
  while (pos < len)
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    size_t end = nl ? (size_t)(nl - text) + 1 : len, k = pos ;
    while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n')) k++ ;
    if (k == end && text[pos] != '\n')
    {
      if (nl) out[n++] = '\n' ;
    }
    else { memcpy(out + n, text + pos, end - pos) ; n += end - pos ; }
    pos = end ;
  }
  return n ;
}

static int sample (void)
{
  uint32_t h = 2166136261u ;
  for (size_t i = 0 ; i < size ; i++) { h ^= data[i] ; h *= 16777619u ; }
  return (h >> 7 & 15) == 0 ;
}

static size_t readfile (char const *, char *, size_t) ;

/* relay-open itself on in.txt, against what rules_parse said */
static void program (int keys, int ok, uint32_t line, char const *what)
{
  static char a[1 << 20], b[1 << 20] ;
  char d[128], c[128], r[128], o[128], t[128] ;
  char *argv[] = { (char *)relayopen, "-d", d, "-c", c, "-r", r, "-o", o, "-T", keys == KEYS_UCSPI_TCP ? "ucspi-tcp" : "ucspi-tcp-ipv6", 0 } ;
  int rc ;
  path(d, "relay") ; path(c, "cache") ; path(r, "in.txt") ; path(o, "prog.cdb") ; path(t, "prog.cdb.relay-open.tmp") ;
  {
    /* dated a minute back: relay-open waits for a rules file modified
       less than a second ago to settle */
    struct timespec ts[2] ;
    clock_gettime(CLOCK_REALTIME, &ts[0]) ;
    ts[0].tv_sec -= 60 ;
    ts[1] = ts[0] ;
    if (utimensat(AT_FDCWD, r, ts, 0) == -1) { perror(r) ; abort() ; }
  }
  {
    int fd = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644) ;
    if (fd == -1 || write(fd, "old", 3) != 3 || close(fd) == -1) { perror(o) ; abort() ; }
  }
  rc = run(argv, 0, "prog.err", 20000) ;
  if (ok)
  {
    size_t na, nb ;
    FZ_CHECK(rc == 0, "rules_parse accepts, the relay-open program exits %d", rc) ;
    na = readfile("ours.cdb", a, sizeof a) ;
    nb = readfile("prog.cdb", b, sizeof b) ;
    FZ_CHECK(na == nb && !memcmp(a, b, na), "the relay-open program writes another cdb than rules_parse and cdbout") ;
  }
  else
  {
    char want[512] ;
    size_t n = readfile("prog.err", a, sizeof a - 1), wl ;
    a[n] = 0 ;
    wl = (size_t)snprintf(want, sizeof want, "relay-open: fatal: %s:%u: %s\n", r, line, what) ;
    FZ_CHECK(rc == 100, "rules_parse refuses line %u, the relay-open program exits %d", line, rc) ;
    FZ_CHECK(n == wl && !memcmp(a, want, wl), "the relay-open program says \"%s\", wanted \"%s\"", a, want) ;
    FZ_CHECK(readfile("prog.cdb", b, sizeof b) == 3 && !memcmp(b, "old", 3), "a refused rules file replaced the cdb") ;
    FZ_CHECK(access(t, F_OK) == -1, "a refused rules file left the temp file") ;
  }
}

static int ours (char const *text, size_t len, int keys, uint32_t *line, char const **what)
{
  rules_t r = RULES_ZERO ;
  cdbout_t out ;
  char p[128] ;
  int ok = rules_parse(&r, text, len, keys, line, what) ;
  if (!ok)
  {
    if (!*what) { perror("rules_parse") ; abort() ; }
    rules_free(&r) ;
    return 0 ;
  }
  path(p, "ours.cdb") ;
  if (!cdbout_start(&out, p)) { perror("cdbout_start") ; abort() ; }
  for (size_t i = 0 ; i < rules_n(&r) ; i++)
  {
    rule_t const *rec = RREC(&r, i) ;
    if (!cdbout_add(&out, RKEY(&r, rec), rec->keylen, RDATA(&r, rec), rec->datalen)) { perror("cdbout_add") ; abort() ; }
  }
  if (!cdbout_finish(&out)) { perror("cdbout_finish") ; abort() ; }
  cdbout_free(&out) ;
  rules_free(&r) ;
  return 1 ;
}

static void compare (char const *text, size_t len, char const *prog, int keys, char const *label)
{
  static char a[1 << 20], b[1 << 20] ;
  uint32_t line = 0 ;
  char const *what = 0 ;
  int ok = ours(text, len, keys, &line, &what) ;
  int rc ;
  writefile("in.txt", text, len) ;
  if (relayopen) program(keys, ok, line, what) ;
  rc = tcprules(prog, 3000) ;
  FZ_CHECK(rc != -1, "%s: tcprules ran for 3 seconds", label) ;
  if (ok)
  {
    size_t na, nb ;
    FZ_CHECK(rc == 0, "%s: relay-open accepts, tcprules exits %d", label, rc) ;
    na = readfile("ours.cdb", a, sizeof a) ;
    nb = readfile("theirs.cdb", b, sizeof b) ;
    FZ_CHECK(na && na == nb && !memcmp(a, b, na), "%s: the cdb differs from tcprules' (%zu and %zu bytes)", label, na, nb) ;
  }
  else
  {
    static char const head[] = "tcprules: fatal: unable to parse this line: " ;
    char const *l ;
    size_t ll, ne ;
    FZ_CHECK(rc == 100, "%s: relay-open refuses line %u (%s), tcprules exits %d", label, line, what, rc) ;
    ne = readfile("err", a, sizeof a) ;
    nthline(text, len, line, &l, &ll) ;
    ll = strnlen(l, ll) ;   /* tcprules prints the line as a C string */
    FZ_CHECK(ne == sizeof head - 1 + ll + 1 && !memcmp(a, head, sizeof head - 1) && !memcmp(a + sizeof head - 1, l, ll),
             "%s: relay-open refuses line %u (%s), tcprules another: %.*s", label, line, what, (int)(ne > 200 ? 200 : ne), a) ;
  }
}

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  static char buf[1 << 16] ;
  char const *text ;
  size_t len ;
  if (!dir[0]) setup() ;
  data = d ; size = s ;
  if (!s || s > sizeof buf) return 0 ;
  text = (char const *)d + 1 ;
  len = s - 1 ;
  if (!(d[0] & 1))
  {
    compare(text, len, tr4, KEYS_UCSPI_TCP, "ucspi-tcp") ;
    return 0 ;
  }
  len = unblank(buf, text, len) ;
  text = buf ;
  {
    rules_t r = RULES_ZERO ;
    uint32_t line ;
    char const *what ;
    int ok = rules_parse(&r, text, len, KEYS_UCSPI_TCP_IPV6, &line, &what) ;
    rules_free(&r) ;
    if (!ok && what && !strcmp(what, "no colon is followed by allow or deny"))
    {
      compare(text, firstlines(text, len, line), tr6, KEYS_UCSPI_TCP_IPV6, "ucspi-tcp-ipv6, the lines before one it never returns from") ;
      if (sample())
      {
        writefile("in.txt", text, len) ;
        FZ_CHECK(tcprules(tr6, 200) == -1, "ucspi-tcp-ipv6's tcprules returned from line %u, which has no colon followed by allow or deny", line) ;
      }
      return 0 ;
    }
  }
  compare(text, len, tr6, KEYS_UCSPI_TCP_IPV6, "ucspi-tcp-ipv6") ;
  return 0 ;
}
