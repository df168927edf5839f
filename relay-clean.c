/* relay-clean: remove the stamps of expired grants, then have rules.cdb
   rebuilt.

   Run it from cron, chained to relay-open ("relay-clean relay-open"), or
   as a supervised service with -w, which sleeps until the next grant is
   due to expire and then asks the relay-open service for a rebuild. It
   cleans the local relay directory and, with POPRELAY_HOSTS, the one of
   each sending host, so that the grants of a host that went away do not
   linger.

   A stamp is removed under its bucket's lock, after its time is read
   again under that lock: pop3-wrapper takes the same lock to refresh a
   stamp, so a grant refreshed while the cleaner works is never removed
   (checking a stamp's age and then unlinking it without a lock is how a
   refreshed grant gets lost). A lock held too long (a user can stop their
   own pop3-wrapper while it holds it) leaves that bucket to the next
   pass: a stale stamp grants nothing anyway. Temp files left by a killed
   pop3-wrapper are removed after a grace period; anything else is
   reported and left. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <skalibs/buffer.h>
#include <skalibs/djbunix.h>
#include <skalibs/selfpipe.h>
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "chain.h"
#include "conf.h"
#include "relaydir.h"
#include "scan.h"
#include "sources.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "relay-clean [ -v ] [ -q ] [ -n ] [ -w ] [ -d dir ] [ -H hostsdir ] [ -c cachedir ] [ -t ttl ] [ -k skew ] [ -g grace ] [ prog... ]"

char const *PROG = "relay-clean" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_HOSTS", "POPRELAY_CACHE", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_GRACE", 0 } ;

/* How long a pass waits for a bucket's lock before it leaves that
   bucket's stale stamps to the next pass (see the top of the file). */
#define LOCKWAIT_MS 50

static conf_t conf ;
static int dryrun = 0 ;
static int quiet = 0 ;
static int verbose = 0 ;

typedef struct pass_s pass_t ;
struct pass_s
{
  int64_t now ;
  int64_t nextexpiry ;     /* earliest expiry of a kept stamp, 0 if none */
  int64_t nexttemp ;       /* when the oldest kept temp file is abandoned */
  unsigned long removed, future, kept, temps, tempskept, junk, errors ;
  unsigned long busy ;     /* stale stamps left in buckets whose lock was held */
  source_t *src ;          /* the relay directory at hand */
  int bfd ;                /* the open bucket, and its number */
  unsigned int bucket ;
  int bucketbusy ;         /* its lock was held past LOCKWAIT_MS this pass */
  int locked ;             /* we hold its lock */
  int fatal ;              /* the local relay directory could not be used */
  unsigned int bucketwarned ;   /* one warning per pass for buckets not made */
  stralloc msg ;           /* a place named in a message */
} ;

/* DIR[/BB][/NAME] of the relay directory at hand, NAME escaped (see
   stamp_where) */
static char const *where (pass_t *p, char const *bname, char const *name)
{
  p->msg.len = 0 ;
  if (!stamp_where(&p->msg, p->src->path.s, bname, name)) strerr_diefusys(111, "make a message") ;
  return p->msg.s ;
}

/* -n: one line on standard output, "WHAT DIR/BB/NAME (why)" */
static void dryline (pass_t *p, char const *what, char const *bname, char const *name, char const *why)
{
  size_t w = 0 ;
  where(p, bname, name) ;
  if (!buffer_puts(buffer_1, what) || !buffer_put(buffer_1, " ", 1) || !buffer_puts(buffer_1, p->msg.s)
   || (why && (!buffer_put(buffer_1, " (", 2) || !buffer_puts(buffer_1, why) || !buffer_put(buffer_1, ")", 1)))
   || !buffer_putall(buffer_1, "\n", 1, &w) || !buffer_flush(buffer_1))
    strerr_diefusys(111, "write to stdout") ;
}

static int openbucket (pass_t *p, unsigned int bucket)
{
  char bname[3] ;
  if (p->bfd >= 0 && p->bucket == bucket) return 1 ;
  if (p->bfd >= 0) fd_close(p->bfd) ;   /* and its lock */
  p->locked = 0 ;
  stamp_bucketname(bname, bucket) ;
  p->bucket = bucket ;
  p->bucketbusy = 0 ;
  p->bfd = openat(p->src->dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  return p->bfd >= 0 ;
}

/* Removes the stamp of ip if, read again under the bucket's lock, it is
   still expired or from the future. The lock is taken at the bucket's
   first stale stamp and let go once all its stamps are judged:
   a login waits for it under a millisecond. */
static void expire (pass_t *p, unsigned int bucket, ip_t const *ip)
{
  char name[IP_FMT], bname[3] ;
  struct stat st ;
  int state ;
  ip_fmt(name, ip) ;
  stamp_bucketname(bname, bucket) ;
  if (!openbucket(p, bucket)) goto err ;
  if (p->bucketbusy) { p->busy++ ; return ; }
  if (!p->locked && !(p->locked = stamp_lock(p->bfd, LOCKWAIT_MS)))
  {
    if (errno != ETIMEDOUT) goto err ;
    p->bucketbusy = 1 ;
    p->busy++ ;
    strerr_warnw("leaving the stale stamps of ", where(p, bname, 0), " to the next pass: its lock is held") ;
    return ;
  }
  if (fstatat(p->bfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
  {
    if (errno == ENOENT) return ;   /* somebody else removed it */
    goto err ;
  }
  state = S_ISREG(st.st_mode) ? stamp_state(stamp_ns(&st.st_mtim), p->now, conf.ttl, conf.skew) : STAMP_LIVE ;
  if (state == STAMP_LIVE)
  {
    /* refreshed since the scan */
    p->kept++ ;
    return ;
  }
  if (dryrun) dryline(p, "would remove", bname, name, state == STAMP_FUTURE ? "dated in the future" : "expired") ;
  else if (unlinkat(p->bfd, name, 0) == -1) goto err ;
  else if (verbose) strerr_warni("removed ", where(p, bname, name), state == STAMP_FUTURE ? " (dated in the future)" : "") ;
  if (state == STAMP_FUTURE) p->future++ ; else p->removed++ ;
  return ;
 err:
  p->errors++ ;
  strerr_warnwusys("remove ", where(p, bname, name)) ;
}

static void judge (pass_t *p, unsigned int bucket, scanent_t const *e, size_t n)
{
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
}

/* a temp file or directory: removed past the grace period, else its time
   to go noted; 1 if it is to go */
static int abandoned (pass_t *p, int64_t mtime)
{
  int64_t x = mtime + (int64_t)conf.grace * STAMP_SECOND ;
  if (x <= p->now) return 1 ;
  p->tempskept++ ;
  if (!p->nexttemp || x < p->nexttemp) p->nexttemp = x ;
  return 0 ;
}

/* What is not a stamp. A bucket of the local relay directory that is
   missing, or not as relaydir.h makes it, is made (or made anew) when we
   may: the services make them, never a mail user. */
static pass_t *current ;   /* the pass tidy works for */

static void tidy (source_t *src, unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why)
{
  pass_t *p = current ;
  char bname[3] ;
  (void)src ;
  stamp_bucketname(bname, bucket) ;
  if (!name && !dryrun && !p->src->label[0] && (kind == SCAN_MISSING || kind == SCAN_JUNK) && !relaydir_fixbucket(fd, bname) && !p->bucketwarned++)
    strerr_warnwusys("make bucket ", where(p, bname, 0), " (and maybe others)") ;
  if (kind == SCAN_MISSING) return ;
  if (kind == SCAN_JUNK)
  {
    p->junk++ ;
    if (dryrun) dryline(p, "would leave", bname, name, why) ;
    else strerr_warnw("leaving ", where(p, bname, name), ": ", why) ;
    return ;
  }
  if (!abandoned(p, mtime)) return ;
  if (dryrun) dryline(p, "would remove", bname, name, "abandoned temp file") ;
  else if (unlinkat(fd, name, 0) == -1 && errno != ENOENT)
  {
    p->errors++ ;
    strerr_warnwusys("remove ", where(p, bname, name)) ;
    return ;
  }
  p->temps++ ;
}

/* At the top: junk is reported; a temp directory that relaydir_make left
   when it was killed goes after the grace period, as temp stamps do. */
static void tidytop (char const *name, int kind, int64_t mtime, void *ctx)
{
  pass_t *p = ctx ;
  if (kind == SCAN_JUNK)
  {
    p->junk++ ;
    if (dryrun) dryline(p, "would leave", 0, name, "not a bucket") ;
    else strerr_warnw("leaving ", where(p, 0, name), ": not a bucket") ;
    return ;
  }
  if (!abandoned(p, mtime)) return ;
  if (dryrun) dryline(p, "would remove", 0, name, "abandoned temp directory") ;
  else relaydir_discard(p->src->dirfd, name) ;
  p->temps++ ;
}

/* A sending host's incoming directory (relaydir.h): what a killed rsync
   left there, a temp file that never reached its bucket, goes after the
   grace period, judged by its change time, which rsync cannot set back
   as it sets the modification time. Directories are left alone. */
static void incoming (pass_t *p)
{
  int fd = openat(p->src->dirfd, RELAYDIR_RSYNC, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  DIR *d = fd >= 0 ? fdopendir(fd) : 0 ;
  struct dirent *de ;
  if (!d) { if (fd >= 0) fd_close(fd) ; return ; }
  while ((de = readdir(d)))
  {
    struct stat st ;
    if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue ;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 || S_ISDIR(st.st_mode)) continue ;
    if (!abandoned(p, stamp_ns(&st.st_ctim))) continue ;
    if (dryrun) dryline(p, "would remove", RELAYDIR_RSYNC, de->d_name, "abandoned rsync temp file") ;
    else if (unlinkat(fd, de->d_name, 0) == -1 && errno != ENOENT)
    {
      p->errors++ ;
      strerr_warnwusys("remove ", where(p, RELAYDIR_RSYNC, de->d_name)) ;
      continue ;
    }
    p->temps++ ;
  }
  closedir(d) ;
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

/* One relay directory, bucket by bucket. Returns 1, or 0 after a
   message. */
static int passdir (pass_t *p, source_t *src, stralloc *ents)
{
  scanner_t s ;
  scan_t how = { .cachedir = 0, .full = 0, .now = p->now, .tempsbefore = p->now - (int64_t)conf.grace * STAMP_SECOND,
                 .rereadjunk = 1, .who = 0, .aside = 0, .ctx = 0 } ;
  int ok = 1 ;
  p->src = src ;
  p->bfd = -1 ;
  p->locked = 0 ;
  if (!dryrun && faccessat(src->dirfd, ".", W_OK, AT_EACCESS) == -1)
  {
    strerr_warnwusys("write in relay directory ", src->path.s) ;
    return 0 ;
  }
  /* every pass reports what does not belong (rereadjunk) */
  current = p ;
  if (!sources_scan(src, &how, conf.cache, &tidy, &s)) { strerr_warnwusys("read relay directory ", src->path.s) ; return 0 ; }
  for (unsigned int b = 0 ; ok && b < STAMP_BUCKETS ; b++)
  {
    if (!scan_bucket(&s, b, ents)) { strerr_warnwusys("read relay directory ", src->path.s) ; ok = 0 ; break ; }
    judge(p, b, (scanent_t const *)ents->s, ents->len / sizeof(scanent_t)) ;
    if (p->locked) { stamp_unlock(p->bfd) ; p->locked = 0 ; }
  }
  if (ok) scan_topjunk(src->dirfd, &tidytop, p) ;
  if (ok && src->label[0]) incoming(p) ;
  scan_end(&s, 0) ;
  if (p->bfd >= 0) fd_close(p->bfd) ;
  return ok ;
}

/* One pass over every relay directory. Returns 0, or 111 after a
   message. */
static int pass (pass_t *p, sources_t *srcs)
{
  stralloc ents = STRALLOC_ZERO ;
  int ok = 1 ;
  memset(p, 0, sizeof *p) ;
  p->now = stamp_now() ;
  for (size_t i = 0 ; i < sources_n(srcs) ; i++)
    if (!passdir(p, sources_get(srcs, i), &ents))
    {
      ok = 0 ;
      /* the local relay directory: nothing done, nothing to sum up */
      if (!i) { p->fatal = 1 ; break ; }
    }
  stralloc_free(&ents) ;
  stralloc_free(&p->msg) ;
  if (!p->fatal) summary(p) ;
  return !ok || p->errors || p->busy ? 111 : 0 ;
}

/* After a pass that found something stale, the cdb must drop it: run
   prog and wait for it, or poke the relay-open service. */
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
    if (!pid) chain_exec(prog) ;
    while (waitpid(pid, &status, 0) == -1) if (errno != EINTR) { strerr_warnwusys("wait for ", q) ; return ; }
    if (!WIFEXITED(status) || WEXITSTATUS(status))
      strerr_warnw(q, " failed: expired grants stay in ", conf.cdb, " until the next rebuild") ;
    return ;
  }
  {
    unsigned int fifos, stale ;
    int dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
    int r = dirfd >= 0 ? trigger_poke(dirfd, &fifos, &stale) : -1 ;
    if (dirfd >= 0) fd_close(dirfd) ;
    if (r < 0) strerr_warnwusys("ask relay-open for a rebuild through ", conf.dir, "/" TRIGGER_DIR) ;
    else if (!r) strerr_warnw("no relay-open -w service listens on ", conf.dir, "/" TRIGGER_DIR, ": expired grants stay in the cdb until the next rebuild") ;
  }
}

/* -w: a pass, then a sleep until the next grant is due to expire (or a
   temp file is due to go), and at most a minute or one TTL. On a busy
   host a grant expires every few milliseconds: the next pass starts no
   sooner than a tenth of a second after the last one ended, nor sooner
   than four times as long as it took, so that stamps go in batches and
   the service spends a fifth of a core at most (relay-open -w drops an
   expired grant from the cdb on time by itself; the stamp's file only
   waits). SIGTERM,
   SIGINT and SIGHUP stop it, through skalibs' selfpipe: a signal is never
   lost between a check and a sleep. */
#define PASSGAP (STAMP_SECOND / 10)
#define PASSSHARE 4

static int64_t monotime (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return stamp_ns(&ts) ;
}

static int service (sources_t *srcs, char const *const *prog)
{
  sigset_t set ;
  int sigfd = selfpipe_init() ;
  sigemptyset(&set) ;
  sigaddset(&set, SIGTERM) ; sigaddset(&set, SIGINT) ; sigaddset(&set, SIGHUP) ;
  if (sigfd == -1 || !selfpipe_trapset(&set)) strerr_diefusys(111, "catch signals") ;
  for (;;)
  {
    pass_t p ;
    struct pollfd pfd = { .fd = sigfd, .events = POLLIN, .revents = 0 } ;
    int64_t now, wake, began = monotime(), took ;
    int code ;
    /* the directories opened anew at each pass: an administrator may
       have moved or added one */
    sources_free(srcs) ;
    *srcs = (sources_t)SOURCES_ZERO ;
    if (!sources_open(srcs, conf.dir, conf.hosts, 1))
    {
      strerr_warnwusys("open relay directory ", conf.dir) ;
      return 111 ;
    }
    code = pass(&p, srcs) ;
    if (p.fatal) return code ;
    /* stale stamps left in a locked bucket grant nothing either: the cdb
       must drop them all the same */
    if (p.removed + p.future + p.busy) rebuild(prog) ;
    now = stamp_now() ;
    /* at the latest after a ttl, or a minute: a stamp written after this
       pass expires after that */
    wake = now + (int64_t)(conf.ttl < 60 ? conf.ttl : 60) * STAMP_SECOND ;
    if (p.nextexpiry && p.nextexpiry < wake) wake = p.nextexpiry ;
    if (p.nexttemp && p.nexttemp < wake) wake = p.nexttemp ;
    if (p.busy && now + STAMP_SECOND < wake) wake = now + STAMP_SECOND ;   /* the locked bucket, soon */
    wake += STAMP_SECOND / 100 ;   /* 10 ms past the deadline, so it has passed */
    took = monotime() - began ;
    if (wake < now + PASSGAP) wake = now + PASSGAP ;
    if (wake < now + PASSSHARE * took) wake = now + PASSSHARE * took ;
    if (poll(&pfd, 1, (int)((wake - now) / 1000000)) > 0 && selfpipe_read() > 0) return 0 ;
  }
}

int main (int argc, char const *const *argv)
{
  sources_t srcs = SOURCES_ZERO ;
  int watch = 0 ;
  char const *bad, *why ;
  subgetopt l = SUBGETOPT_ZERO ;

  conf_defaults(&conf) ;
  if (!conf_env(&conf, vars, &bad, &why)) strerr_dief(100, "bad ", bad, ": ", why) ;
  for (;;)
  {
    int opt = subgetopt_r(argc, argv, "+vqnwd:H:c:t:k:g:", &l) ;
    if (opt == -1) break ;
    switch (opt)
    {
      case 'v' : verbose = 1 ; break ;
      case 'q' : quiet = 1 ; break ;
      /* a dry run, as make's and rsync's -n: relay-clean has no
         POPRELAY_NEVER, the -n of the other programs */
      case 'n' : dryrun = 1 ; break ;
      case 'w' : watch = 1 ; break ;
      default : conf_option(&conf, opt, l.arg, USAGE) ;
    }
  }
  argc -= l.ind ; argv += l.ind ;
  if (watch && dryrun) strerr_dieusage(100, USAGE) ;
  if (!sources_open(&srcs, conf.dir, conf.hosts, 1)) strerr_diefusys(111, "open relay directory ", conf.dir) ;

  if (watch)
  {
    int code = service(&srcs, argv) ;
    sources_free(&srcs) ;
    return code ;
  }
  {
    pass_t p ;
    int code = pass(&p, &srcs) ;
    sources_free(&srcs) ;
    if (p.fatal || dryrun) return code ;
    if (!argc)
    {
      if (p.removed + p.future + p.busy) rebuild(argv) ;
      return code ;
    }
    /* chained, djb-style: the build runs after every pass, so that a
       cron line also catches up with anything else that changed */
    chain_exec(argv) ;
  }
}
