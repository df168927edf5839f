/* stream: a busy host's steady stream of logins and expiries, for
   package/bench.

   stream n rate secs ttl dir cdb pid cleaner...

   dir holds n live grants, written beforehand (mkstamps -e) for the
   addresses package/bench's addrs gives (10.0.0.0/8); relay-open -w,
   process pid, serves dir into cdb with POPRELAY_TTL ttl. cleaner is the
   command line of relay-clean -w: stream starts it once the stamps are
   aged (so that it plans its first sleep on what will expire) and stops
   it at the end.

   First, untimed, it ages the first rate * (secs + 5) of those stamps so
   that they expire one after the other, rate a second, from a moment 5
   seconds ahead (the "touched by hand" case of the service: relay-open
   reads their names again, and nothing it grants changes). Then, for secs
   seconds from that moment, it logs in at rate logins a second, Poisson
   arrivals: one in ten a new grant (198.18.0.0/15, which only the default
   rule covers), the others a refresh of a grant that is not expiring. A
   login is what pop3-wrapper does for it, in this process: the bucket's
   lock, the stamp written through a temp file and renamed, and after a
   new grant a poke into DIR/.rebuild.

   Every millisecond it checks whether cdb was replaced; at each new cdb
   it looks up, as tcpserver does at a connection, every new grant not yet
   seen and every expired grant not yet gone.

   Prints one line, TAB-separated: logins made and the rate reached a
   second; new grants, and login-to-grant median, p99 and worst in ms, and
   how many were not seen within 30 s; expiries, and expiry-to-gone
   median, p99 and worst in ms, and how many never went; relay-open's
   processor time over the secs seconds, as a share of one core; the
   expired stamps relay-clean removed by the end, and its processor
   share. */

#define _DEFAULT_SOURCE  /* srandom, random */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cdb.h>
#include <skalibs/stralloc.h>
#include "stamp.h"
#include "trigger.h"

#define PRIME 5
#define GIVEUP_NS (30 * STAMP_SECOND)
#define TICK_NS 1000000

typedef struct event_s event_t ;
struct event_s
{
  char addr[20] ;
  int64_t at ;      /* the login, or the expiry; wall clock, in ns */
  int64_t seen ;    /* 0: not yet */
} ;

static int dirfd_, bfd[STAMP_BUCKETS] ;
static stralloc stamp = STRALLOC_ZERO ;

static void die (char const *what, char const *arg)
{
  fprintf(stderr, "stream: fatal: %s %s: %s\n", what, arg, strerror(errno)) ;
  exit(111) ;
}

static void poolname (char *s, unsigned long i)
{
  unsigned long a = (i * 9973) % 16777216 ;
  sprintf(s, "10.%lu.%lu.%lu", a / 65536, (a / 256) % 256, a % 256) ;
}

static int bucketof (char const *addr)
{
  ip_t ip ;
  unsigned int b ;
  if (!ip_scan(&ip, addr, strlen(addr))) { errno = EINVAL ; die("not an address:", addr) ; }
  b = stamp_bucket(&ip) ;
  if (bfd[b] == -1)
  {
    char bname[4] ;
    stamp_bucketname(bname, b) ;
    bname[3] = 0 ;
    bfd[b] = openat(dirfd_, bname, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
    if (bfd[b] == -1) die("unable to open bucket", bname) ;
  }
  return bfd[b] ;
}

/* what pop3-wrapper does at a login, but the fork, the exec and the log */
static void login (char const *addr, int isnew)
{
  int b = bucketof(addr) ;
  if (!stamp_lock(b, 200)) die("unable to lock the bucket of", addr) ;
  if (!stamp_write(b, addr, stamp.s, stamp.len)) die("unable to write the stamp of", addr) ;
  stamp_unlock(b) ;
  if (isnew)
  {
    unsigned int fifos, stale ;
    trigger_poke(dirfd_, &fifos, &stale) ;
  }
}

static int64_t cpu_of (char const *pid)
{
  char path[64], buf[1024] ;
  unsigned long ut = 0, st = 0 ;
  char *p ;
  ssize_t r ;
  int fd ;
  snprintf(path, sizeof path, "/proc/%s/stat", pid) ;
  fd = open(path, O_RDONLY) ;
  if (fd == -1) die("unable to open", path) ;
  r = read(fd, buf, sizeof buf - 1) ;
  close(fd) ;
  if (r <= 0) die("unable to read", path) ;
  buf[r] = 0 ;
  p = strrchr(buf, ')') ;   /* past the command's name, which may hold blanks */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
  {
    errno = EINVAL ;
    die("unable to parse", path) ;
  }
  return (int64_t)(ut + st) * (STAMP_SECOND / sysconf(_SC_CLK_TCK)) ;
}

static int present (int fd, char const *addr)
{
  unsigned int dlen ;
  return fd >= 0 && cdb_seek(fd, addr, (unsigned int)strlen(addr), &dlen) > 0 ;
}

static int dblcmp (void const *a, void const *b)
{
  double x = *(double const *)a, y = *(double const *)b ;
  return x < y ? -1 : x > y ;
}

/* median, p99, worst of the seen events' delays, in ms; returns the
   number not seen */
static unsigned long figures (event_t const *e, unsigned long n, double *med, double *p99, double *worst)
{
  double *v = malloc((n + 1) * sizeof *v) ;
  unsigned long k = 0 ;
  if (!v) die("unable to", "allocate") ;
  for (unsigned long i = 0 ; i < n ; i++) if (e[i].seen) v[k++] = (e[i].seen - e[i].at) / 1e6 ;
  qsort(v, k, sizeof *v, &dblcmp) ;
  *med = k ? v[k / 2] : 0 ;
  *p99 = k ? v[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] : 0 ;
  *worst = k ? v[k - 1] : 0 ;
  free(v) ;
  return n - k ;
}

int main (int argc, char **argv)
{
  unsigned long n, rate, secs, ttl, nexp, nlog, nnew = 0, made = 0, fresh = 0, gone = 0 ;
  event_t *grants, *expiries ;
  int64_t t0, end, lastcheck = 0, cpu0, cpu1 = 0, next ;
  int64_t ccpu0, ccpu1 = 0 ;
  int cpudone = 0 ;
  pid_t cleaner ;
  char cpid[24] ;
  extern char **environ ;
  struct stat last = { 0 } ;
  stampinfo_t si ;
  char const *cdbfile, *pid ;
  if (argc < 9 || !(n = strtoul(argv[1], 0, 10)) || !(rate = strtoul(argv[2], 0, 10))
   || !(secs = strtoul(argv[3], 0, 10)) || !(ttl = strtoul(argv[4], 0, 10)))
  {
    fprintf(stderr, "usage: stream n rate secs ttl dir cdb pid cleaner...\n") ;
    return 100 ;
  }
  cdbfile = argv[6] ; pid = argv[7] ;
  nexp = rate * (secs + PRIME) ;
  nlog = rate * secs * 2 ;   /* room: Poisson arrivals run over the mean */
  if (nexp * 2 > n) { fprintf(stderr, "stream: fatal: %lu grants are too few for %lu logins a second\n", n, rate) ; return 100 ; }
  grants = calloc(nlog / 10 + 1, sizeof *grants) ;
  expiries = calloc(nexp, sizeof *expiries) ;
  if (!grants || !expiries) die("unable to", "allocate") ;
  dirfd_ = open(argv[5], O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (dirfd_ == -1) die("unable to open", argv[5]) ;
  for (unsigned int i = 0 ; i < STAMP_BUCKETS ; i++) bfd[i] = -1 ;
  memset(&si, 0, sizeof si) ;
  strcpy(si.user, "stream") ;
  strcpy(si.via, "bench") ;
  if (!stamp_fmt(&stamp, &si)) die("unable to", "format a stamp") ;
  srandom(1) ;

  /* the expiring grants: one every 1/rate s from t0 */
  t0 = stamp_now() + PRIME * STAMP_SECOND ;
  for (unsigned long i = 0 ; i < nexp ; i++)
  {
    event_t *e = &expiries[i] ;
    int64_t m ;
    struct timespec ts[2] ;
    poolname(e->addr, i + 1) ;
    e->at = t0 + (int64_t)i * STAMP_SECOND / (int64_t)rate ;
    m = e->at - (int64_t)ttl * STAMP_SECOND ;
    ts[0].tv_sec = ts[1].tv_sec = m / STAMP_SECOND ;
    ts[0].tv_nsec = ts[1].tv_nsec = m % STAMP_SECOND ;
    if (utimensat(bucketof(e->addr), e->addr, ts, AT_SYMLINK_NOFOLLOW) == -1) die("unable to age", e->addr) ;
  }
  if (stamp_now() > t0 - STAMP_SECOND) { fprintf(stderr, "stream: fatal: aging %lu stamps took more than %d s\n", nexp, PRIME - 1) ; return 111 ; }

  if (posix_spawn(&cleaner, argv[8], 0, 0, argv + 8, environ)) die("unable to run", argv[8]) ;
  snprintf(cpid, sizeof cpid, "%ld", (long)cleaner) ;
  while (stamp_now() < t0) { struct timespec ts = { 0, TICK_NS } ; nanosleep(&ts, 0) ; }
  cpu0 = cpu_of(pid) ;
  ccpu0 = cpu_of(cpid) ;
  end = t0 + (int64_t)secs * STAMP_SECOND ;
  next = t0 ;
  for (;;)
  {
    int64_t now = stamp_now() ;
    if (now < end)
      while (next <= now && made < nlog)
      {
        if (!(made % 10))
        {
          event_t *g = &grants[nnew++] ;
          unsigned long a = nnew ;
          snprintf(g->addr, sizeof g->addr, "198.%lu.%lu.%lu", 18 + (a / (256 * 254)) % 2, (a / 254) % 256, 1 + a % 254) ;
          g->at = stamp_now() ;
          login(g->addr, 1) ;
        }
        else
        {
          char addr[20] ;
          poolname(addr, nexp + 1 + (unsigned long)random() % (n - nexp)) ;
          login(addr, 0) ;
        }
        made++ ;
        /* exponential gaps: a Poisson process of rate a second */
        next += (int64_t)(-log(1.0 - (random() + 0.5) / 2147483648.0) * STAMP_SECOND / (double)rate) ;
      }
    else if (!cpudone) { cpu1 = cpu_of(pid) ; ccpu1 = cpu_of(cpid) ; cpudone = 1 ; }
    if (now - TICK_NS >= lastcheck || now >= end)
    {
      struct stat st ;
      if (stat(cdbfile, &st) == 0 && (st.st_ino != last.st_ino || st.st_mtim.tv_nsec != last.st_mtim.tv_nsec || st.st_mtim.tv_sec != last.st_mtim.tv_sec))
      {
        int fd = open(cdbfile, O_RDONLY | O_CLOEXEC) ;
        int64_t seen = stamp_now() ;
        last = st ;
        for (unsigned long i = fresh ; i < nnew ; i++)
          if (!grants[i].seen && present(fd, grants[i].addr)) grants[i].seen = seen ;
        while (fresh < nnew && grants[fresh].seen) fresh++ ;
        for (; gone < nexp && expiries[gone].at < seen && expiries[gone].at < end ; gone++)
          if (present(fd, expiries[gone].addr)) break ;
          else expiries[gone].seen = seen ;
        if (fd >= 0) close(fd) ;
      }
      if (now >= end)
      {
        if (now > end + GIVEUP_NS) break ;
        if (fresh == nnew && (gone == nexp || expiries[gone].at >= end)) break ;
      }
      lastcheck = now ;
    }
    {
      int64_t wait = TICK_NS ;
      if (now < end && next - stamp_now() < wait) wait = next - stamp_now() ;
      if (wait > 0) { struct timespec ts = { 0, wait } ; nanosleep(&ts, 0) ; }
    }
  }
  if (!cpudone) { cpu1 = cpu_of(pid) ; ccpu1 = cpu_of(cpid) ; }
  kill(cleaner, SIGTERM) ;
  while (waitpid(cleaner, 0, 0) == -1) if (errno != EINTR) die("unable to wait for", argv[8]) ;

  {
    double gm, gp, gw, em, ep, ew ;
    unsigned long nexpired = 0, gmiss, emiss, removed = 0 ;
    struct stat st ;
    while (nexpired < nexp && expiries[nexpired].at < end) nexpired++ ;
    for (unsigned long i = 0 ; i < nexpired ; i++)
      if (fstatat(bucketof(expiries[i].addr), expiries[i].addr, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT) removed++ ;
    gmiss = figures(grants, nnew, &gm, &gp, &gw) ;
    emiss = figures(expiries, nexpired, &em, &ep, &ew) ;
    printf("%lu\t%.0f\t%lu\t%.1f\t%.1f\t%.1f\t%lu\t%lu\t%.1f\t%.1f\t%.1f\t%lu\t%.3f\t%lu\t%.3f\n",
      made, made / (double)secs, nnew, gm, gp, gw, gmiss, nexpired, em, ep, ew, emiss,
      (cpu1 - cpu0) / (double)(secs * STAMP_SECOND), removed, (ccpu1 - ccpu0) / (double)(secs * STAMP_SECOND)) ;
  }
  return 0 ;
}
