/* relay-open: compile the static SMTP rules and the live grants into the
   cdb that tcpserver -x reads.

   It reads the administrator's rules (the text tcprules would compile) and
   the stamps of the relay directory, and writes, atomically, a cdb with
   one record per live grant first (its static record's variables plus
   RELAYCLIENT) and then every static record as tcprules writes it. With no
   grants the file is byte for byte what tcprules writes. For
   s6-tcpserver-access the same goes into s6's access-rules format (see
   s6rules.h).

   Run it once (from cron, or chained after relay-clean), or as a
   supervised service with -w, woken through DIR/.rebuild by pop3-wrapper.
   Builds are serialised by a lock in the cache directory; a run that finds
   another one building leaves a request that the builder serves, so no
   request is lost and concurrent logins cost one rebuild. */

#define _DEFAULT_SOURCE  /* flock */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <skalibs/allreadwrite.h>
#include <skalibs/buffer.h>
#include <skalibs/djbunix.h>
#include <skalibs/genalloc.h>
#include <skalibs/selfpipe.h>
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "cdbout.h"
#include "conf.h"
#include "grant.h"
#include "memo.h"
#include "hold.h"
#include "relaydir.h"
#include "scan.h"
#include "sources.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "relay-open [ -v ] [ -f ] [ -w | -l ] [ -d dir ] [ -H hostsdir ] [ -c cachedir ] [ -r rules ] [ -o cdb ] [ -t ttl ] [ -k skew ] [ -n never ] [ -e vars ] [ -m usermax ] [ -L 0|1 ] [ -T ucspi-tcp|ucspi-tcp-ipv6|s6-networking ]"

char const *PROG = "relay-open" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_HOSTS", "POPRELAY_CACHE", "POPRELAY_RULES", "POPRELAY_CDB", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_NEVER", "POPRELAY_ENV", "POPRELAY_TCPRULES", "POPRELAY_USERMAX", "POPRELAY_LINKLOCAL", 0 } ;

static conf_t conf ;
static int verbose = 0 ;
static int full = 0 ;
static int stop = 0 ;      /* the service was told to stop */
static int sigfd = -1 ;    /* the service's signals, through skalibs' selfpipe */

/* The relay directories, open for the life of the process: a one-shot
   run reads them once; the service keeps them, in memory where it can
   (watch.h). */
static sources_t sources = SOURCES_ZERO ;
static int watching = 0 ;     /* the service watches what it can */
static int drained = 0 ;      /* the build under way took in events (sources_drain) */

/* "skipping DIR[/BB][/NAME]: why", NAME escaped */
static void skipping (char const *dir, char const *bname, char const *name, char const *why)
{
  stralloc sa = STRALLOC_ZERO ;
  if (stamp_where(&sa, dir, bname, name)) strerr_warnw("skipping ", sa.s, ": ", why) ;
  else strerr_warnw("skipping a file in ", dir, ": ", why) ;
  stralloc_free(&sa) ;
}

/* What is not a stamp: reported. A bucket of the local relay directory
   that is missing, or not as relaydir.h makes it, is made (or made anew)
   when we may: the services make them, never a mail user; a host's are
   that host's to make. The service makes them at its start only, and
   after that leaves them to relay-clean: it would race an administrator
   removing the relay directory, one bucket at a time. */
static unsigned int bucketwarned = 0 ;
static int makebuckets = 1 ;
static void reportjunk (source_t *src, unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why)
{
  char bname[3] ;
  (void)mtime ;
  stamp_bucketname(bname, bucket) ;
  if (kind == SCAN_JUNK) skipping(src->path.s, bname, name, why) ;
  if (!name && makebuckets && !src->label[0] && (kind == SCAN_MISSING || kind == SCAN_JUNK) && !relaydir_fixbucket(fd, bname) && !bucketwarned++)
  {
    stralloc sa = STRALLOC_ZERO ;
    if (stamp_where(&sa, src->path.s, bname, 0)) strerr_warnwusys("make bucket ", sa.s, " (and maybe others)") ;
    stralloc_free(&sa) ;
  }
}

static void reporttop (char const *name, int kind, int64_t mtime, void *ctx)
{
  source_t const *src = ctx ;
  (void)mtime ;
  if (kind == SCAN_JUNK) skipping(src->path.s, 0, name, "not a bucket") ;
}

/* Every bucket of every source, merged, each stamp handed to fn; with
   POPRELAY_USERMAX, held in held until every one is known, then capped
   and handed over. Returns 0, or an errno. */
typedef int take_fn (void *ctx, unsigned int bucket, merged_t const *, int over) ;
static int eachstamp (scan_t const *how, sources_aside_fn *aside, grant_t *g, take_fn *fn, void *ctx, unsigned int *reread, unsigned long *looked)
{
  genalloc held = GENALLOC_ZERO ;   /* merged_t and its bucket, by index */
  genalloc buckets = GENALLOC_ZERO ;
  int r = 0 ;
  bucketwarned = 0 ;
  if (!sources_start(&sources, how, aside ? conf.cache : 0, aside)) return errno ? errno : EIO ;
  for (unsigned int b = 0 ; !r && b < STAMP_BUCKETS ; b++)
  {
    if (!sources_bucket(&sources, b)) { r = errno ? errno : EIO ; break ; }
    if (watching && sources_drain(&sources)) drained = 1 ;
    for (size_t i = 0 ; !r && i < sources_nmerged(&sources) ; i++)
    {
      merged_t const *m = sources_merged(&sources) + i ;
      if (!conf.usermax) r = (*fn)(ctx, b, m, 0) ;
      else if (!genalloc_append(merged_t, &held, m) || !genalloc_append(unsigned int, &buckets, &b)) r = ENOMEM ;
    }
  }
  if (!r && conf.usermax)
  {
    size_t n = genalloc_len(merged_t, &held) ;
    held_t *h = n ? malloc(n * sizeof *h) : 0 ;
    if (n && !h) r = ENOMEM ;
    for (size_t i = 0 ; !r && i < n ; i++)
    {
      h[i].e = genalloc_s(merged_t, &held)[i].e ;
      h[i].bucket = genalloc_s(unsigned int, &buckets)[i] ;
      h[i].over = 0 ;
    }
    if (!r && !grant_cap(g, h, n, conf.usermax)) r = ENOMEM ;
    for (size_t i = 0 ; !r && i < n ; i++) r = (*fn)(ctx, h[i].bucket, genalloc_s(merged_t, &held) + i, h[i].over) ;
    free(h) ;
  }
  *reread = sources_end(&sources, looked) ;
  genalloc_free(merged_t, &held) ;
  genalloc_free(unsigned int, &buckets) ;
  return r ;
}

/* One build: the stamps judged, a grant's records written at once. */
typedef struct build_s build_t ;
struct build_s
{
  grant_t g ;
  cdbout_t out ;
  unsigned long counts[GRANT_N] ;
  int64_t nextexpiry ;    /* earliest expiry among the grants, 0 if none */
  memo_t *memo ;          /* for the service, where it can serve (memo.h) */
  unsigned int bucket ;   /* the bucket at hand, */
  size_t at ;             /* the index in it of the stamp at hand, */
  uint64_t gen ;          /* its generation, */
  int replay ;            /* and whether its memo serves */
  unsigned long judged ;  /* stamps the memo did not know */
} ;

static memo_t memo = MEMO_ZERO ;

static int expiring (build_t *b, merged_t const *m)
{
  int64_t exp = stamp_expiry(m->e.mtime, conf.ttl) ;
  if (!b->nextexpiry || exp < b->nextexpiry) b->nextexpiry = exp ;
  return 0 ;
}

/* A stamp through the memo of its bucket: its verdict while live taken
   from the memo, or judged and put in the memo; whether it is live, from
   its time; its records, from the memo. A stamp that does not grant is
   warned about when it is judged, not at each build. */
static int memotake (build_t *b, unsigned int bucket, merged_t const *m)
{
  int st = stamp_state(m->e.mtime, b->g.now, conf.ttl, conf.skew), v ;
  size_t i = b->at++ ;
  if (!i || bucket != b->bucket)
  {
    b->bucket = bucket ;
    b->at = 1 ; i = 0 ;
    if (!sources_gen(&sources, bucket, &b->gen)) return EINVAL ;
    b->replay = memo_valid(b->memo, bucket, b->gen, sources_nmerged(&sources)) ;
    if (!b->replay) memo_start(b->memo, bucket) ;
  }
  if (b->replay) v = memo_verdict(b->memo, bucket, i) ;
  else
  {
    int r = memo_again(b->memo, bucket, &m->e.ip) ;
    if (r < 0) return errno ? errno : ENOMEM ;
    if (!r)
    {
      verdict_t d ;
      grant_judge_live(&b->g, &m->e, 0, &d) ;
      if (!memo_stamp(b->memo, bucket, &m->e.ip, d.v) || (d.v == GRANT_GRANTED && !grant_write(&b->g, &b->out, &m->e, &d, memo_of(b->memo, bucket))))
        return errno ? errno : ENOMEM ;
      if (st == STAMP_LIVE && d.v != GRANT_GRANTED) grant_warn(&b->g, &m->e, &d) ;
      b->judged++ ;
    }
    if (b->at == sources_nmerged(&sources)) memo_done(b->memo, bucket, b->gen) ;
    v = memo_verdict(b->memo, bucket, i) ;
  }
  if (st != STAMP_LIVE) { b->counts[st == STAMP_EXPIRED ? GRANT_EXPIRED : GRANT_FUTURE]++ ; return 0 ; }
  b->counts[v]++ ;
  if (v != GRANT_GRANTED) return 0 ;
  if (!memo_write(b->memo, bucket, i, &b->out)) return errno ? errno : EIO ;
  return expiring(b, m) ;
}

static int take (void *ctx, unsigned int bucket, merged_t const *m, int over)
{
  build_t *b = ctx ;
  verdict_t d ;
  if (b->memo) return memotake(b, bucket, m) ;
  grant_judge(&b->g, &m->e, over, &d) ;
  b->counts[d.v]++ ;
  if (d.v != GRANT_GRANTED) { grant_warn(&b->g, &m->e, &d) ; return 0 ; }
  if (!grant_write(&b->g, &b->out, &m->e, &d, 0)) return errno ? errno : EIO ;
  return expiring(b, m) ;
}

static void builtline (build_t const *b, unsigned int reread, unsigned long looked, int64_t start)
{
  char g[ULONG_FMT], n[ULONG_FMT], ex[ULONG_FMT], rr[UINT_FMT], lk[ULONG_FMT], ms[UINT64_FMT] ;
  lk[ulong_fmt(lk, looked)] = 0 ;
  g[ulong_fmt(g, b->counts[GRANT_GRANTED])] = 0 ;
  n[ulong_fmt(n, (unsigned long)grant_nstatics(&b->g))] = 0 ;
  ex[ulong_fmt(ex, b->counts[GRANT_EXPIRED] + b->counts[GRANT_FUTURE])] = 0 ;
  rr[uint_fmt(rr, reread)] = 0 ;
  ms[uint64_fmt(ms, (uint64_t)((stamp_now() - start) / 1000000))] = 0 ;
  if (watching)
  {
    char jd[ULONG_FMT] ;
    jd[ulong_fmt(jd, b->judged)] = 0 ;
    strerr_warni("built ", conf.cdb, ": ", g, " grants, ", n, " static records, ", ex, " stale stamps; inotify: looked at ", lk, " stamps, read ", rr, " buckets again, judged ", jd, " stamps anew; ", ms, " ms") ;
  }
  else strerr_warni("built ", conf.cdb, ": ", g, " grants, ", n, " static records, ", ex, " stale stamps; read ", rr, " of 256 buckets; ", ms, " ms") ;
}

/* every source's junk at its top */
static void topjunk (void)
{
  for (size_t i = 0 ; i < sources_n(&sources) ; i++)
  {
    source_t *src = sources_get(&sources, i) ;
    scan_topjunk(src->dirfd, &reporttop, src) ;
  }
}

/* One build of the cdb, under the lock. Returns 0 or an exit code, after
   a message. */
static int build (int64_t *nextexpiry, int fatal)
{
  build_t b ;
  int64_t now = stamp_now() ;
  scan_t how = { .cachedir = 0, .full = full, .now = now, .tempsbefore = 0, .rereadjunk = 0, .who = conf.usermax > 0, .aside = 0, .ctx = 0 } ;
  unsigned int reread = 0 ;
  unsigned long looked = 0 ;
  int r, code ;
  memset(&b, 0, sizeof b) ;
  code = grant_load(&b.g, &conf, now, 0, fatal, verbose) ;
  if (code) goto end ;
  code = 111 ;
  /* the memo, for the service over one watched directory; not with
     POPRELAY_USERMAX, whose cap moves with the times of other stamps, nor
     for s6, whose records replace static ones */
  if (watching && sources_n(&sources) == 1 && !conf.usermax && conf.keys != KEYS_S6
   && memo_rules(&memo, b.g.text.s ? b.g.text.s : "", b.g.text.len))
    b.memo = &memo ;
  if (!cdbout_start(&b.out, conf.cdb)) { strerr_warnwusys("create ", cdbout_what(&b.out)) ; goto freeout ; }
  r = eachstamp(&how, &reportjunk, &b.g, &take, &b, &reread, &looked) ;
  if (r)
  {
    errno = r ;
    strerr_warnwusys("read the relay directories, or write ", cdbout_what(&b.out)) ;
    cdbout_abort(&b.out) ;
    goto freeout ;
  }
  if (!watching) topjunk() ;
  if (!grant_statics(&b.g, &b.out)) { strerr_warnwusys("write ", cdbout_what(&b.out)) ; cdbout_abort(&b.out) ; goto freeout ; }
  if (!cdbout_finish(&b.out)) { strerr_warnwusys("write ", cdbout_what(&b.out), " and rename it to ", conf.cdb) ; goto freeout ; }
  if (verbose) builtline(&b, reread, looked, now) ;
  *nextexpiry = b.nextexpiry ;
  code = 0 ;
 freeout:
  cdbout_free(&b.out) ;
 end:
  grant_free(&b.g) ;
  return code ;
}

/* -l: the stamps, one line each, as a build judges them. */
typedef struct list_s list_t ;
struct list_s
{
  grant_t g ;
  stralloc line ;
} ;

static void fmttime (char *s, int64_t ns)
{
  time_t t = (time_t)(ns / STAMP_SECOND) ;
  struct tm tm ;
  if (!gmtime_r(&t, &tm) || !strftime(s, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) strcpy(s, "?") ;
}

/* the login name in the stamp, or "?" */
static void userof (source_t const *src, unsigned int bucket, scanent_t const *e, stampinfo_t *si)
{
  char addr[IP_FMT], bname[3], buf[STAMP_SIZEMAX + 1] ;
  ssize_t r = -1 ;
  int fd, bfd ;
  ip_fmt(addr, &e->ip) ;
  stamp_bucketname(bname, bucket) ;
  bfd = openat(src->dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  fd = bfd >= 0 ? openat(bfd, addr, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1 ;
  if (bfd >= 0) fd_close(bfd) ;
  if (fd >= 0) { r = read(fd, buf, sizeof buf) ; fd_close(fd) ; }
  if (r < 0 || !stamp_parse(si, buf, (size_t)r)) memset(si, 0, sizeof *si) ;
  if (!si->user[0]) strcpy(si->user, "?") ;
}

/* " held-by=PID" for a grant a live session's holder keeps, " hold=ended"
   for one whose holder is gone (hold.h); nothing for another host's
   stamp, whose processes this host cannot see */
static int holdstatus (stralloc *line, source_t const *src, stampinfo_t const *si)
{
  char num[UINT64_FMT] ;
  uint64_t pid = 0 ;
  int live ;
  if (!si->holder[0] || src->label[0]) return 1 ;
  live = hold_live(si->holder, &pid) ;
  num[uint64_fmt(num, pid)] = 0 ;
  return live ? stralloc_cats(line, " held-by=") && stralloc_cats(line, num) : stralloc_cats(line, " hold=ended") ;
}

/* "ADDR user=U granted=TIME expires-in=Ns status=S[ detail][ hold][ from=HOST]" */
static int listone (void *ctx, unsigned int bucket, merged_t const *m, int over)
{
  static char const *const status[GRANT_N] = { "granted", "expired", "future", "never", "listed", "no-key", "denied", "over-cap" } ;
  list_t *l = ctx ;
  source_t const *src = sources_get(&sources, m->src) ;
  char addr[IP_FMT], granted[32], num[UINT64_FMT] ;
  stampinfo_t si ;
  verdict_t d ;
  int64_t left = stamp_expiry(m->e.mtime, conf.ttl) - l->g.now ;
  size_t w = 0 ;
  grant_judge(&l->g, &m->e, over, &d) ;
  userof(src, bucket, &m->e, &si) ;
  ip_fmt(addr, &m->e.ip) ;
  fmttime(granted, m->e.mtime) ;
  num[uint64_fmt(num, left > 0 ? (uint64_t)(left / STAMP_SECOND) : 0)] = 0 ;
  /* one line per stamp, whatever a user name holds: it is escaped as in
     the stamp itself */
  l->line.len = 0 ;
  if (!stralloc_cats(&l->line, addr) || !stralloc_cats(&l->line, " user=")
   || !stamp_escape(&l->line, si.user, sizeof si.user)
   || !stralloc_cats(&l->line, " granted=") || !stralloc_cats(&l->line, granted)
   || !stralloc_cats(&l->line, " expires-in=") || !stralloc_cats(&l->line, num)
   || !stralloc_cats(&l->line, "s status=") || !stralloc_cats(&l->line, status[d.v]))
    return ENOMEM ;
  if (d.v == GRANT_DENIED) num[uint_fmt(num, rules_line(&l->g.rules, (size_t)d.rec[0]))] = 0 ;
  if ((d.v == GRANT_DENIED && (!stralloc_cats(&l->line, " rule-line=") || !stralloc_cats(&l->line, num)))
   || ((d.v == GRANT_NEVER || d.v == GRANT_NOKEY) && (!stralloc_cats(&l->line, " (") || !stralloc_cats(&l->line, d.why) || !stralloc_cats(&l->line, ")")))
   || (d.v == GRANT_LISTED && !stralloc_cats(&l->line, " (in POPRELAY_NEVER)"))
   || !holdstatus(&l->line, src, &si)
   || (conf.hosts && (!stralloc_cats(&l->line, " from=") || !stralloc_cats(&l->line, src->label[0] ? src->label : "local")))
   || !stralloc_catb(&l->line, "\n", 1))
    return ENOMEM ;
  if (!buffer_putall(buffer_1, l->line.s, l->line.len, &w)) strerr_diefusys(111, "write to stdout") ;
  return 0 ;
}

/* A listing changes nothing, the cache included (it may not exist before
   the first build). */
static int list (void)
{
  list_t l = { .line = STRALLOC_ZERO } ;
  scan_t how = { .cachedir = 0, .full = 1, .now = stamp_now(), .tempsbefore = 0, .rereadjunk = 0, .who = conf.usermax > 0, .aside = 0, .ctx = 0 } ;
  unsigned int reread ;
  int code = grant_load(&l.g, &conf, how.now, 1, 1, 0) ;
  if (!code)
  {
    code = eachstamp(&how, 0, &l.g, &listone, &l, &reread, 0) ;
    if (code)
    {
      errno = code ;
      strerr_warnwusys("read the relay directories") ;
      code = 111 ;
    }
  }
  if (!buffer_flush(buffer_1)) strerr_diefusys(111, "write to stdout") ;
  grant_free(&l.g) ;
  stralloc_free(&l.line) ;
  return code ;
}

/* What a build depends on, hashed: two runs that share a cache directory
   serve each other's requests only when they would write the same cdb
   from the same inputs. */
static uint64_t fnv (uint64_t h, void const *p, size_t len)
{
  unsigned char const *s = p ;
  for (size_t i = 0 ; i < len ; i++) { h ^= s[i] ; h *= 1099511628211ull ; }
  return h ;
}

static uint64_t buildid (void)
{
  char const *const paths[] = { conf.cdb, conf.rules, conf.dir, conf.hosts ? conf.hosts : "" } ;
  uint64_t h = 14695981039346656037ull ;
  for (unsigned int i = 0 ; i < 4 ; i++)
  {
    /* a relative path means another file from another directory */
    if (paths[i][0] != '/')
    {
      char cwd[4096] ;
      if (getcwd(cwd, sizeof cwd)) h = fnv(h, cwd, strlen(cwd) + 1) ;
    }
    h = fnv(h, paths[i], strlen(paths[i]) + 1) ;
  }
  h = fnv(h, &conf.ttl, sizeof conf.ttl) ;
  h = fnv(h, &conf.skew, sizeof conf.skew) ;
  h = fnv(h, &conf.keys, sizeof conf.keys) ;
  h = fnv(h, &conf.nnever, sizeof conf.nnever) ;
  h = fnv(h, conf.never, conf.nnever * sizeof *conf.never) ;
  return fnv(h, conf.env.s, conf.env.len) ;
}

/* 16 hex digits and a NUL */
static void hexid (char *s, uint64_t id)
{
  s[uint640_xfmt(s, id, 16)] = 0 ;
}

/* Asks for a build and serves it, or has it served: see the top of the
   file. The request is a file, pending.ID, ID the hash of what the build
   depends on (buildid), so that a run for another cdb sharing the cache
   directory does not take this request as served. It is consumed by
   unlink, atomically, by the one builder that will build after it was
   made; a failed build makes it again, so the next run tries for itself
   and reports its own error. */
/* How long a run waits for the build lock. A build of a million grants
   takes seconds; a lock held much longer belongs to a run that is stuck,
   and waiting for it for ever would keep the old cdb, and its expired
   grants, in place. */
#define LOCKWAIT_MS 60000

/* SIGHUP: every relay directory read again whole at the next build */
static int rereadall = 0 ;

/* Waits ms milliseconds, or until the service is told to stop; returns
   with stop set if it was (a SIGHUP meanwhile is kept for the next
   build, not taken for a stop). Outside the service, a plain sleep. */
static void pause_ms (int ms)
{
  struct pollfd p = { .fd = sigfd, .events = POLLIN, .revents = 0 } ;
  if (sigfd < 0)
  {
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 } ;
    nanosleep(&ts, 0) ;
    return ;
  }
  if (poll(&p, 1, ms) > 0)
  {
    int sig ;
    while ((sig = selfpipe_read()) > 0)
      if (sig == SIGHUP) rereadall = 1 ; else stop = 1 ;
  }
}

/* Takes the build lock, waiting at most LOCKWAIT_MS, less if the service
   is told to stop. Returns 1, or 0 with errno. */
static int lockbuild (int fd)
{
  unsigned int waited = 0, step = 1 ;
  while (flock(fd, LOCK_EX | LOCK_NB) == -1)
  {
    if (errno != EWOULDBLOCK && errno != EINTR) return 0 ;
    if (waited >= LOCKWAIT_MS || stop) { errno = ETIMEDOUT ; return 0 ; }
    pause_ms((int)step) ;
    waited += step ;
    if (step < 50) step <<= 1 ;
  }
  return 1 ;
}

/* FILE in the cache directory, into sa */
static int cachefile (stralloc *sa, char const *file)
{
  sa->len = 0 ;
  return stralloc_cats(sa, conf.cache) && stralloc_cats(sa, "/") && stralloc_cats(sa, file) && stralloc_0(sa) ;
}

/* The cache directory holds the lock that decides who builds: it must be
   ours, and nobody else's to write. Returns 1, or 0 after a warning. */
static int cachedir (void)
{
  struct stat st ;
  if (mkdir(conf.cache, 0700) == -1 && errno != EEXIST)
  {
    strerr_warnwusys("create cache directory ", conf.cache) ;
    return 0 ;
  }
  if (lstat(conf.cache, &st) == -1) { strerr_warnwusys("stat cache directory ", conf.cache) ; return 0 ; }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || st.st_mode & 022)
  {
    strerr_warnw("not building: cache directory ", conf.cache, " must be a directory of this user that no one else can write") ;
    return 0 ;
  }
  return 1 ;
}

static int request (int64_t *nextexpiry)
{
  stralloc f = STRALLOC_ZERO ;
  char pending[8 + 16 + 1] = "pending." ;
  int lockfd, fd, made, code = 111 ;
  hexid(pending + 8, buildid()) ;
  if (!cachedir()) return 111 ;
  /* a request that cannot be made (no inode left) only means this run
     builds for itself */
  if (!cachefile(&f, pending)) goto nomem ;
  fd = open(f.s, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600) ;
  made = fd >= 0 ;
  if (made) fd_close(fd) ;
  if (!cachefile(&f, "lock")) goto nomem ;
  lockfd = open(f.s, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600) ;
  if (lockfd == -1) { strerr_warnwusys("open ", f.s) ; goto end ; }
  if (!lockbuild(lockfd))
  {
    if (errno == ETIMEDOUT && !stop) strerr_warnw("unable to lock ", f.s, ": another build has held it for 60 seconds") ;
    else if (errno != ETIMEDOUT) strerr_warnwusys("lock ", f.s) ;
    fd_close(lockfd) ;
    goto end ;
  }
  if (!cachefile(&f, pending)) { fd_close(lockfd) ; goto nomem ; }
  if (made && unlink(f.s) == -1 && errno == ENOENT)
    code = 0 ;   /* a build that started after our request has finished */
  else
  {
    code = build(nextexpiry, sigfd < 0) ;
    if (code)
    {
      fd = open(f.s, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600) ;
      if (fd >= 0) fd_close(fd) ;
    }
  }
  fd_close(lockfd) ;
  goto end ;
 nomem:
  strerr_warnwu("build: out of memory") ;
 end:
  stralloc_free(&f) ;
  return code ;
}

/* While builds fail (a full disk, an unreadable rules file), the old cdb
   stays, with grants that expire meanwhile: the service tries again every
   second, and says so once a minute, not once a second. */
#define FAILRETRY_MS 1000
#define FAILSHOUT (60 * STAMP_SECOND)

static ssize_t hushed (int fd, struct iovec const *v, unsigned int n)
{
  size_t total = 0 ;
  (void)fd ;
  for (unsigned int i = 0 ; i < n ; i++) total += v[i].iov_len ;
  return (ssize_t)total ;
}

/* One build of the service. Returns 1 if it built (or had it built), 0
   if it failed. */
static int attempt (int64_t *next)
{
  static int64_t failing = 0, shouted = 0 ;
  int64_t now = stamp_now() ;
  int code ;
  /* a failure's own message comes out with each shout only */
  int hush = failing && now < shouted + FAILSHOUT ;
  buffer_flush(buffer_2) ;
  if (hush) buffer_2->op = &hushed ;
  code = request(next) ;
  buffer_flush(buffer_2) ;
  if (hush) buffer_2->op = &fd_writev ;
  if (!code)
  {
    if (failing)
    {
      char s[UINT64_FMT] ;
      s[uint64_fmt(s, (uint64_t)((now - failing) / STAMP_SECOND))] = 0 ;
      strerr_warni("built ", conf.cdb, " again, after ", s, " seconds of failed builds") ;
    }
    failing = 0 ;
    return 1 ;
  }
  if (!failing) failing = shouted = now ;
  else if (!hush)
  {
    char s[UINT64_FMT] ;
    s[uint64_fmt(s, (uint64_t)((now - failing) / STAMP_SECOND))] = 0 ;
    strerr_warnw("no build of ", conf.cdb, " has succeeded for ", s, " seconds: grants that expired meanwhile still relay until one does") ;
    shouted = now ;
  }
  return 0 ;
}

/* -w: build now, then whenever the grants change (an event from a
   watched relay directory, or a poke into the fifo), at each grant's
   expiry, and at least every five minutes (in case the clock jumped).
   Builds after a change are paced: the next starts no sooner than the
   processor time the last one took (its waits, for a rules file to
   settle or a disk, do not count), so that a steady stream of logins
   costs at most half a core and each login waits at most about three
   builds. The fifo is named
   after the build's inputs, so that a service restarted with the same
   settings takes back its own, and two services for two cdbs each get
   every poke. SIGTERM and SIGINT stop it, SIGHUP has every relay
   directory read again whole (and, with POPRELAY_HOSTS, the list of
   host directories); all come through skalibs' selfpipe, polled
   with the rest, so that a signal is never lost between a check and a
   wait. */
#define MAXFDS (2 + 64)
#define POLL (5 * STAMP_SECOND)

/* the signals read from the selfpipe */
static void signals (void)
{
  int sig ;
  while ((sig = selfpipe_read()) > 0)
    if (sig == SIGHUP) rereadall = 1 ; else stop = 1 ;
}

/* the fds to poll: the fifo, the signals, each watched directory */
static unsigned int pollset (struct pollfd *p, int fifo)
{
  unsigned int n = 0 ;
  p[n].fd = fifo ; p[n].events = POLLIN ; p[n++].revents = 0 ;
  p[n].fd = sigfd ; p[n].events = POLLIN ; p[n++].revents = 0 ;
  for (size_t i = 0 ; i < sources_n(&sources) && n < MAXFDS ; i++)
  {
    source_t *src = sources_get(&sources, i) ;
    if (!src->watching) continue ;
    p[n].fd = watch_fd(src->w) ; p[n].events = POLLIN ; p[n++].revents = 0 ;
  }
  return n ;
}

static void startwatching (void)
{
  scan_t how = { .cachedir = 0, .full = full, .now = stamp_now(), .tempsbefore = 0, .rereadjunk = 0, .who = conf.usermax > 0, .aside = 0, .ctx = 0 } ;
  unsigned int n = sources_watch(&sources, &how, conf.cache, &reportjunk) ;
  watching = n && n == sources_n(&sources) ;
  if (verbose)
  {
    char a[UINT_FMT], b[UINT_FMT] ;
    a[uint_fmt(a, n)] = 0 ;
    b[uint_fmt(b, (unsigned int)sources_n(&sources))] = 0 ;
    strerr_warni("watching ", a, " of ", b, " relay directories through inotify; the others are read through the scan cache at each build") ;
  }
}

/* this process's processor time, and a clock that never jumps (the
   pace is no business of the wall clock's), in nanoseconds */
static int64_t cputime (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) ;
  return stamp_ns(&ts) ;
}

static int64_t monotime (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return stamp_ns(&ts) ;
}

/* SIGHUP: every relay directory read again whole, and with
   POPRELAY_HOSTS the list of host directories too, so that one added
   since the start is read (each is then read whole, as it starts to be
   watched) */
static void rereadsources (void)
{
  if (conf.hosts)
  {
    sources_free(&sources) ;
    if (!sources_open(&sources, conf.dir, conf.hosts, 0)) strerr_diefusys(111, "open relay directory ", conf.dir) ;
    startwatching() ;
  }
  else
    for (size_t i = 0 ; i < sources_n(&sources) ; i++)
      if (sources_get(&sources, i)->watching) watch_all(sources_get(&sources, i)->w) ;
  rereadall = 0 ;
}

/* the pace of the service's builds: when the last ended, and the
   processor time it took */
typedef struct pace_s pace_t ;
struct pace_s { int64_t end, len ; } ;

/* One build of the service; returns when the next is due whatever
   happens (monotonic): a grant's expiry, a failed build's retry, the
   poll of a directory the kernel cannot tell about, or five minutes (in
   case the clock jumped). */
static int64_t servebuild (int fifo, pace_t *pace)
{
  int64_t next = 0, cpu = cputime(), wait = 300 * STAMP_SECOND ;
  trigger_drain(fifo) ;
  drained = 0 ;
  if (rereadall) rereadsources() ;
  if (!attempt(&next)) wait = FAILRETRY_MS * (STAMP_SECOND / 1000) ;
  else makebuckets = 0 ;
  pace->end = monotime() ;
  pace->len = cputime() - cpu ;
  if (next && next + STAMP_SECOND / 100 - stamp_now() < wait) wait = next + STAMP_SECOND / 100 - stamp_now() ;
  /* a directory the kernel cannot tell about (a network file system) is
     read again every few seconds */
  if (!watching && wait > POLL) wait = POLL ;
  return pace->end + (wait > 0 ? wait : 0) ;
}

/* Waits for the deadline, a poke, an event or a signal; 1 if a build is
   due. With every directory watched, an event or a poke brings a build
   only if it changed what a build writes (a refresh of a live grant does
   not; a poke comes after the events of its stamp). Events the last
   build took in from the kernel (sources_drain) are looked at at once,
   as if they had just come; marks left by a failure (a bucket that could
   not be read) wait for the deadline, the failed build's retry. */
static int waitchange (int fifo, int64_t deadline)
{
  struct pollfd p[MAXFDS] ;
  int pend = drained, r, timeout ;
  unsigned int n = pollset(p, fifo) ;
  drained = 0 ;
  timeout = pend ? 0 : deadline > monotime() ? (int)((deadline - monotime()) / 1000000) + 1 : 0 ;
  r = poll(p, n, timeout) ;
  if (r == -1 && errno != EINTR) strerr_diefusys(111, "poll") ;
  if (p[1].revents & POLLIN) signals() ;
  if (stop) return 0 ;
  if ((!r && !pend) || rereadall) return 1 ;
  if (p[0].revents & POLLIN)
  {
    trigger_drain(fifo) ;
    if (!watching) return 1 ;
  }
  return sources_changed(&sources, stamp_now(), conf.ttl, conf.skew) != 0 ;
}

static int service (void)
{
  char name[11 + 16 + 1] = "relay-open." ;
  sigset_t set ;
  int dirfd, fifo ;
  pace_t pace = { 0, 0 } ;

  sigfd = selfpipe_init() ;
  sigemptyset(&set) ;
  sigaddset(&set, SIGTERM) ; sigaddset(&set, SIGINT) ; sigaddset(&set, SIGHUP) ;
  if (sigfd == -1 || !selfpipe_trapset(&set)) strerr_diefusys(111, "catch signals") ;
  hexid(name + 11, buildid()) ;
  dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (dirfd == -1) strerr_diefusys(111, "open relay directory ", conf.dir) ;
  fifo = trigger_listen(dirfd, name) ;
  if (fifo == -1) strerr_diefusys(111, "listen on ", conf.dir, "/" TRIGGER_DIR "/", name) ;
  if (verbose) strerr_warni("listening on ", conf.dir, "/" TRIGGER_DIR "/", name) ;
  if (!sources_open(&sources, conf.dir, conf.hosts, 0)) strerr_diefusys(111, "open relay directory ", conf.dir) ;
  startwatching() ;

  while (!stop)
  {
    int64_t deadline = servebuild(fifo, &pace), rest ;
    while (!stop && !waitchange(fifo, deadline)) ;
    if (stop) break ;
    /* a change: wait, if need be, as long as the last build took */
    rest = pace.end + pace.len - monotime() ;
    if (rest > 0) pause_ms((int)(rest / 1000000) + 1) ;
  }
  trigger_unlisten(dirfd, name, fifo) ;
  sources_free(&sources) ;
  if (verbose) strerr_warni("stopping") ;
  return 0 ;
}

int main (int argc, char const *const *argv)
{
  int mode = 0 ;
  char const *bad, *why ;
  subgetopt l = SUBGETOPT_ZERO ;

  conf_defaults(&conf) ;
  if (!conf_env(&conf, vars, &bad, &why)) strerr_dief(100, "bad ", bad, ": ", why) ;
  for (;;)
  {
    int opt = subgetopt_r(argc, argv, "vfwld:c:r:o:t:k:n:e:T:m:L:H:", &l) ;
    if (opt == -1) break ;
    switch (opt)
    {
      case 'v' : verbose = 1 ; break ;
      case 'f' : full = 1 ; break ;
      case 'w' : if (mode == 'l') strerr_dieusage(100, USAGE) ; mode = 'w' ; break ;
      case 'l' : if (mode == 'w') strerr_dieusage(100, USAGE) ; mode = 'l' ; break ;
      default : conf_option(&conf, opt, l.arg, USAGE) ;
    }
  }
  if (l.ind < argc) strerr_dieusage(100, USAGE) ;

  if (mode == 'w') return service() ;
  if (!sources_open(&sources, conf.dir, conf.hosts, 0)) strerr_diefusys(111, "open relay directory ", conf.dir) ;
  {
    int64_t next ;
    int code = mode == 'l' ? list() : request(&next) ;
    sources_free(&sources) ;
    return code ;
  }
}
