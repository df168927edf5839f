/* relay-clean: remove the stamps of expired grants, then have rules.cdb
   rebuilt.

   Run it from cron, chained to relay-open ("relay-clean relay-open"), or
   as a supervised service with -w, which sleeps until the next grant is
   due to expire and then asks the relay-open service for a rebuild.

   A stamp is removed under its bucket's lock, after its time is read
   again under that lock: pop3-wrapper takes the same lock to refresh a
   stamp, so a grant refreshed while the cleaner works is never removed
   (checking a stamp's age and then unlinking it without a lock is how a
   refreshed grant gets lost). Temp files left by a killed pop3-wrapper
   are removed after a grace period; anything else is reported and left. */

#define _DEFAULT_SOURCE  /* flock */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <skalibs/buffer.h>
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "conf.h"
#include "relaydir.h"
#include "scan.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "relay-clean [ -v ] [ -q ] [ -n ] [ -w ] [ -d dir ] [ -c cachedir ] [ -t ttl ] [ -k skew ] [ -g grace ] [ prog... ]"

char const *PROG = "relay-clean" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_CACHE", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_GRACE", 0 } ;

/* How long a pass waits for a bucket's lock before it leaves that
   bucket's stale stamps to the next pass: pop3-wrapper holds it for
   microseconds, but a user can stop their own pop3-wrapper while it holds
   it. A stale stamp grants nothing whether it is removed or not
   (relay-open judges its time), so waiting buys nothing. */
#define LOCKWAIT_MS 50

static conf_t conf ;
static int dryrun = 0 ;
static int quiet = 0 ;
static int verbose = 0 ;
static volatile sig_atomic_t stop = 0 ;

typedef struct pass_s pass_t ;
struct pass_s
{
  int dirfd ;
  int64_t now ;
  int64_t nextexpiry ;     /* earliest expiry of a kept stamp, 0 if none */
  int64_t nexttemp ;       /* when the oldest kept temp file is abandoned */
  unsigned long removed, future, kept, temps, tempskept, junk, errors ;
  unsigned long busy ;     /* stale stamps left in buckets whose lock was held */
  int bfd ;                /* the open bucket, and its number */
  unsigned int bucket ;
  int bucketbusy ;         /* its lock was held past LOCKWAIT_MS this pass */
  int fatal ;              /* the relay directory itself could not be used */
  stralloc msg ;           /* a place named in a message */
  unsigned int bucketwarned ;   /* one warning per pass for buckets not made */
} ;

/* DIR[/BB][/NAME] into sa, NAME escaped (see stamp_where) */
static char const *where (stralloc *sa, char const *bname, char const *name)
{
  sa->len = 0 ;
  if (!stamp_where(sa, conf.dir, bname, name)) strerr_diefusys(111, "make a message") ;
  return sa->s ;
}

/* -n: one line on standard output, "what DIR/BB/NAME (why)" */
static void say (char const *what, char const *bname, char const *name, char const *why)
{
  size_t w = 0 ;
  stralloc sa = STRALLOC_ZERO ;
  where(&sa, bname, name) ;
  sa.len-- ;
  if (!stralloc_insertb(&sa, 0, " ", 1) || !stralloc_insertb(&sa, 0, what, strlen(what))
   || (why && (!stralloc_cats(&sa, " (") || !stralloc_cats(&sa, why) || !stralloc_cats(&sa, ")")))
   || !stralloc_catb(&sa, "\n", 1)
   || !buffer_putall(buffer_1, sa.s, sa.len, &w) || !buffer_flush(buffer_1))
    strerr_diefusys(111, "write to stdout") ;
  stralloc_free(&sa) ;
}

static int openbucket (pass_t *p, unsigned int bucket)
{
  char bname[3] ;
  if (p->bfd >= 0 && p->bucket == bucket) return 1 ;
  if (p->bfd >= 0) close(p->bfd) ;
  stamp_bucketname(bname, bucket) ;
  p->bucket = bucket ;
  p->bucketbusy = 0 ;
  p->bfd = openat(p->dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  return p->bfd >= 0 ;
}

/* Removes the stamp of ip if, read again under the bucket's lock, it is
   still expired or from the future. */
static void expire (pass_t *p, unsigned int bucket, ip_t const *ip)
{
  char name[IP_FMT], bname[3] ;
  struct stat st ;
  int state ;
  ip_fmt(name, ip) ;
  stamp_bucketname(bname, bucket) ;
  if (!openbucket(p, bucket)) goto err ;
  if (p->bucketbusy) { p->busy++ ; return ; }
  if (!stamp_lock(p->bfd, LOCKWAIT_MS))
  {
    if (errno != ETIMEDOUT) goto err ;
    p->bucketbusy = 1 ;
    p->busy++ ;
    strerr_warnw("leaving the stale stamps of ", conf.dir, "/", bname, " to the next pass: its lock is held") ;
    return ;
  }
  if (fstatat(p->bfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
  {
    stamp_unlock(p->bfd) ;
    if (errno == ENOENT) return ;   /* somebody else removed it */
    goto err ;
  }
  state = S_ISREG(st.st_mode) ? stamp_state((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, p->now, conf.ttl, conf.skew) : STAMP_LIVE ;
  if (state == STAMP_LIVE)
  {
    /* refreshed since the scan */
    stamp_unlock(p->bfd) ;
    p->kept++ ;
    return ;
  }
  if (dryrun) say("would remove", bname, name, state == STAMP_FUTURE ? "dated in the future" : "expired") ;
  else if (unlinkat(p->bfd, name, 0) == -1) { stamp_unlock(p->bfd) ; goto err ; }
  else if (verbose) strerr_warni("removed ", conf.dir, "/", bname, "/", name, state == STAMP_FUTURE ? " (dated in the future)" : "") ;
  stamp_unlock(p->bfd) ;
  if (state == STAMP_FUTURE) p->future++ ; else p->removed++ ;
  return ;
 err:
  p->errors++ ;
  strerr_warnwusys("remove ", conf.dir, "/", bname, "/", name) ;
}

static int onbucket (unsigned int bucket, scanent_t const *e, size_t n, void *ctx)
{
  pass_t *p = ctx ;
  for (size_t i = 0 ; i < n ; i++)
  {
    if (stamp_state(e[i].mtime, p->now, conf.ttl, conf.skew) != STAMP_LIVE) expire(p, bucket, &e[i].ip) ;
    else
    {
      int64_t x = stamp_expiry(e[i].mtime, conf.ttl) ;
      p->kept++ ;
      if (!p->nextexpiry || x < p->nextexpiry) p->nextexpiry = x ;
    }
  }
  return 0 ;
}

static void onother (unsigned int bucket, int bucketfd, char const *name, int kind, int64_t mtime, char const *why, void *ctx)
{
  pass_t *p = ctx ;
  char bname[3] ;
  stamp_bucketname(bname, bucket) ;
  /* a bucket that is missing, or not as relaydir.h makes it, is made (or
     made anew) when we may: the services make them, never a mail user */
  if (!name && !dryrun && (kind == SCAN_MISSING || kind == SCAN_JUNK) && !relaydir_fixbucket(bucketfd, bname) && !p->bucketwarned++)
    strerr_warnwusys("make bucket ", where(&p->msg, bname, 0), " (and maybe others)") ;
  if (kind == SCAN_MISSING) return ;
  if (kind == SCAN_JUNK)
  {
    p->junk++ ;
    if (!dryrun) strerr_warnw("leaving ", where(&p->msg, bname, name), ": ", why) ;
    else say("would leave", bname, name, why) ;
    return ;
  }
  if (mtime >= p->now - (int64_t)conf.grace * 1000000000)
  {
    int64_t x = mtime + (int64_t)conf.grace * 1000000000 ;
    p->tempskept++ ;
    if (!p->nexttemp || x < p->nexttemp) p->nexttemp = x ;
    return ;
  }
  if (dryrun) say("would remove", bname, name, "abandoned temp file") ;
  else if (unlinkat(bucketfd, name, 0) == -1 && errno != ENOENT)
  {
    p->errors++ ;
    strerr_warnwusys("remove ", where(&p->msg, bname, name)) ;
    return ;
  }
  p->temps++ ;
}

/* At the top: junk is reported; a temp directory that relaydir_make left
   when it was killed goes after the grace period, as temp stamps do. */
static void ontopjunk (char const *name, int kind, int64_t mtime, void *ctx)
{
  pass_t *p = ctx ;
  if (kind == SCAN_JUNK)
  {
    p->junk++ ;
    if (dryrun) say("would leave", 0, name, "not a bucket") ;
    else strerr_warnw("leaving ", where(&p->msg, 0, name), ": not a bucket") ;
    return ;
  }
  if (mtime >= p->now - (int64_t)conf.grace * 1000000000)
  {
    int64_t x = mtime + (int64_t)conf.grace * 1000000000 ;
    p->tempskept++ ;
    if (!p->nexttemp || x < p->nexttemp) p->nexttemp = x ;
    return ;
  }
  if (dryrun) say("would remove", 0, name, "abandoned temp directory") ;
  else relaydir_discard(p->dirfd, name) ;
  p->temps++ ;
}

static void summary (pass_t const *p)
{
  char n[7][ULONG_FMT] ;
  if (quiet) return ;
  n[0][ulong_fmt(n[0], p->removed)] = 0 ;
  n[1][ulong_fmt(n[1], p->future)] = 0 ;
  n[2][ulong_fmt(n[2], p->temps)] = 0 ;
  n[3][ulong_fmt(n[3], p->kept)] = 0 ;
  n[4][ulong_fmt(n[4], p->tempskept)] = 0 ;
  n[5][ulong_fmt(n[5], p->junk)] = 0 ;
  n[6][ulong_fmt(n[6], p->busy)] = 0 ;
  strerr_warni(dryrun ? "would remove " : "removed ", n[0], " expired, ", n[1], " future-dated, ", n[2], " abandoned temp; kept ", n[3], " live, ", n[4], " temp; junk ", n[5], p->busy ? "; left in locked buckets " : "", p->busy ? n[6] : "") ;
}

/* One pass over the relay directory. Returns 0, or 111 after a message. */
static int pass (pass_t *p)
{
  stralloc cachefile = STRALLOC_ZERO ;
  scan_t s ;
  int r ;
  memset(p, 0, sizeof *p) ;
  p->bfd = -1 ;
  p->now = stamp_now() ;
  p->dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (p->dirfd == -1)
  {
    strerr_warnwusys("open relay directory ", conf.dir) ;
    p->fatal = 1 ;
    return 111 ;
  }
  if (!dryrun && faccessat(p->dirfd, ".", W_OK, AT_EACCESS) == -1)
  {
    strerr_warnwusys("write in relay directory ", conf.dir) ;
    close(p->dirfd) ;
    p->fatal = 1 ;
    return 111 ;
  }
  memset(&s, 0, sizeof s) ;
  if (mkdir(conf.cache, 0700) == -1 && errno != EEXIST) s.cachedir = 0 ;
  else if (stralloc_cats(&cachefile, conf.cache) && stralloc_cats(&cachefile, "/scan") && stralloc_0(&cachefile)) s.cachedir = cachefile.s ;
  s.now = p->now ;
  s.tempsbefore = p->now - (int64_t)conf.grace * 1000000000 ;
  s.rereadjunk = 1 ;   /* every pass reports what does not belong */
  s.stamps = &onbucket ;
  s.other = &onother ;
  s.ctx = p ;
  r = scan_relay(&s, p->dirfd) ;
  stralloc_free(&cachefile) ;
  if (r) { strerr_warnwusys("read relay directory ", conf.dir) ; p->fatal = 1 ; }
  else scan_topjunk(p->dirfd, &ontopjunk, p) ;
  if (p->bfd >= 0) close(p->bfd) ;
  close(p->dirfd) ;
  stralloc_free(&p->msg) ;
  summary(p) ;
  return r || p->errors || p->busy ? 111 : 0 ;
}

/* After a pass that removed something, the cdb must drop it: run prog
   and wait for it, or poke the relay-open service. */
static void rebuild (char const *const *prog)
{
  if (prog[0])
  {
    int status ;
    char q[80] ;
    pid_t pid ;
    conf_quote(q, sizeof q, prog[0]) ;   /* one line, whatever the name holds */
    pid = fork() ;
    if (pid == -1) { strerr_warnwusys("fork to run ", q) ; return ; }
    if (!pid)
    {
      execvp(prog[0], (char *const *)prog) ;
      strerr_diefusys(errno == ENOENT ? 127 : 126, "exec ", q) ;
    }
    while (waitpid(pid, &status, 0) == -1) if (errno != EINTR) { strerr_warnwusys("wait for ", q) ; return ; }
    if (!WIFEXITED(status) || WEXITSTATUS(status))
      strerr_warnw(q, " failed: expired grants stay in ", conf.cdb, " until the next rebuild") ;
    return ;
  }
  {
    unsigned int fifos, stale ;
    int dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
    int r = dirfd >= 0 ? trigger_poke(dirfd, &fifos, &stale) : -1 ;
    if (dirfd >= 0) close(dirfd) ;
    if (r < 0) strerr_warnwusys("ask relay-open for a rebuild through ", conf.dir, "/" TRIGGER_DIR) ;
    else if (!r) strerr_warnw("no relay-open -w service listens on ", conf.dir, "/" TRIGGER_DIR, ": expired grants stay in the cdb until the next rebuild") ;
  }
}

static void onterm (int sig)
{
  (void)sig ;
  stop = 1 ;
}

static int service (char const *const *prog)
{
  struct sigaction sa ;
  memset(&sa, 0, sizeof sa) ;
  sa.sa_handler = &onterm ;
  sigemptyset(&sa.sa_mask) ;
  sigaction(SIGTERM, &sa, 0) ;
  sigaction(SIGINT, &sa, 0) ;
  sigaction(SIGHUP, &sa, 0) ;
  while (!stop)
  {
    pass_t p ;
    int64_t now, wake ;
    struct timespec ts ;
    int code = pass(&p) ;
    if (p.fatal) return code ;
    /* stale stamps left in a locked bucket grant nothing either: the cdb
       must drop them all the same */
    if (p.removed + p.future + p.busy) rebuild(prog) ;
    now = stamp_now() ;
    /* At the latest after a ttl, or a minute: a stamp written after this
       pass expires after that. */
    wake = now + (int64_t)(conf.ttl < 60 ? conf.ttl : 60) * 1000000000 ;
    if (p.nextexpiry && p.nextexpiry < wake) wake = p.nextexpiry ;
    if (p.nexttemp && p.nexttemp < wake) wake = p.nexttemp ;
    if (p.busy && now + 1000000000 < wake) wake = now + 1000000000 ;   /* try the locked bucket again soon */
    wake += 10000000 ;   /* 10 ms past the deadline, so it has passed */
    if (wake < now) wake = now ;
    ts.tv_sec = (time_t)((wake - now) / 1000000000) ;
    ts.tv_nsec = (long)((wake - now) % 1000000000) ;
    if (!stop) nanosleep(&ts, 0) ;
  }
  return 0 ;
}

int main (int argc, char const *const *argv)
{
  int watch = 0 ;
  char const *bad, *why ;
  subgetopt l = SUBGETOPT_ZERO ;

  conf_defaults(&conf) ;
  if (!conf_env(&conf, vars, &bad, &why)) strerr_dief(100, "bad ", bad, ": ", why) ;
  for (;;)
  {
    int opt = subgetopt_r(argc, argv, "+vqnwd:c:t:k:g:", &l) ;
    if (opt == -1) break ;
    switch (opt)
    {
      case 'v' : verbose = 1 ; break ;
      case 'q' : quiet = 1 ; break ;
      case 'n' : dryrun = 1 ; break ;   /* relay-clean has no never list */
      case 'w' : watch = 1 ; break ;
      default : conf_option(&conf, opt, l.arg, USAGE) ;
    }
  }
  argc -= l.ind ; argv += l.ind ;
  if (watch && dryrun) strerr_dieusage(100, USAGE) ;

  if (watch) return service(argv) ;
  {
    pass_t p ;
    int code = pass(&p) ;
    if (p.fatal || dryrun) return code ;
    if (!argc)
    {
      if (p.removed + p.future + p.busy) rebuild(argv) ;
      return code ;
    }
    /* chained, djb-style: the build runs after every pass, so that a
       cron line also catches up with anything else that changed */
    execvp(argv[0], (char *const *)argv) ;
    {
      char q[80] ;
      conf_quote(q, sizeof q, argv[0]) ;
      strerr_diefusys(errno == ENOENT ? 127 : 126, "exec ", q) ;
    }
  }
}
