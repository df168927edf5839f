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
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "cdbout.h"
#include "conf.h"
#include "hold.h"
#include "relaydir.h"
#include "rules.h"
#include "s6rules.h"
#include "scan.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "relay-open [ -v ] [ -f ] [ -w | -l ] [ -d dir ] [ -c cachedir ] [ -r rules ] [ -o cdb ] [ -t ttl ] [ -k skew ] [ -n never ] [ -e vars ] [ -m usermax ] [ -L 0|1 ] [ -T ucspi-tcp|ucspi-tcp-ipv6|s6-networking ]"

char const *PROG = "relay-open" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_CACHE", "POPRELAY_RULES", "POPRELAY_CDB", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_NEVER", "POPRELAY_ENV", "POPRELAY_TCPRULES", "POPRELAY_USERMAX", "POPRELAY_LINKLOCAL", 0 } ;

static conf_t conf ;
static int verbose = 0 ;
static int full = 0 ;
static volatile sig_atomic_t stop = 0 ;

/* A build's verdict on one stamp: what -l prints, and what a build does. */
#define V_GRANT 0
#define V_EXPIRED 1
#define V_FUTURE 2
#define V_NEVER 3
#define V_POLICY 4
#define V_NOKEY 5
#define V_DENIED 6
#define V_OVERCAP 7
#define V_N 8

typedef struct build_s build_t ;
struct build_s
{
  rules_t rules ;
  cdbout_t out ;
  int listing ;
  int dirfd ;
  int64_t now ;
  int64_t nextexpiry ;    /* earliest expiry among the grants, 0 if none */
  unsigned long counts[V_N] ;
  genalloc held ;         /* with POPRELAY_USERMAX: every stamp, held_t, until the cap is known */
  stralloc values ;       /* grant values, one per static record picked */
  uint32_t *valoff ;      /* 1 + offset in values, per record; [0] is "no record" */
  uint32_t *vallen ;
  stralloc line ;
  unsigned int bucketwarned ;   /* one warning per build for buckets not made */
  s6rules_t s6 ;          /* POPRELAY_TCPRULES=s6-networking: the static records */
  stralloc conv ;
} ;

/* The verdict on one stamp, and for a grant its keys (see ip_keys) with,
   for each, the static record tcpserver would use for that text without
   the grant (-1: none). A rule that names the address or a prefix of it
   and denies, in either of its texts, refuses the grant: it is the
   administrator's word on that address, whichever form tcpserver
   presents it in. A text that only the default rule denies (the
   ::ffff:a.b.c.d of rules written for IPv4) gets no key of its own. */
static int verdict (build_t *b, scanent_t const *e, ipkeys_t *keys, unsigned int *nkeys, long *rec, char const **why)
{
  int st = stamp_state(e->mtime, b->now, conf.ttl, conf.skew) ;
  *nkeys = 0 ;
  *why = 0 ;
  rec[0] = -1 ;
  if (st == STAMP_EXPIRED) return V_EXPIRED ;
  if (st == STAMP_FUTURE) return V_FUTURE ;
  *why = ip_never(&e->ip) ;
  if (!*why && !conf.linklocal) *why = ip_linklocal(&e->ip) ;
  if (*why) return V_NEVER ;
  if (ipnets_match(conf.never, conf.nnever, &e->ip)) return V_POLICY ;
  if (conf.keys == KEYS_S6)
  {
    /* s6 keys match by bits, never as a prefix of text (see
       s6rules_grantkeys); the static record is the one ucspi-tcp-ipv6's
       tcpserver would pick, which s6rules_make translated to mean the
       same */
    keys->len[0] = ip_fmt_tcpserver(keys->s[0], &e->ip) ;
    *nkeys = 1 ;
  }
  else
  {
    *nkeys = ip_keys(keys, &e->ip, conf.keys, why) ;
    if (!*nkeys) return V_NOKEY ;
  }
  {
    unsigned int n = *nkeys, kept = 0 ;
    long deflt = -1 ;
    for (unsigned int k = 0 ; k < n ; k++)
    {
      long r = rules_pick(&b->rules, keys->s[k], keys->len[k]) ;
      if (r >= 0 && rules_isdeny(rules_data(&b->rules, rules_rec(&b->rules, r)), rules_rec(&b->rules, r)->datalen))
      {
        if (!rules_isdefault(&b->rules, r)) { rec[0] = r ; *nkeys = 0 ; return V_DENIED ; }
        deflt = r ;
        continue ;
      }
      if (kept != k) { memcpy(keys->s[kept], keys->s[k], keys->len[k] + 1) ; keys->len[kept] = keys->len[k] ; }
      rec[kept++] = r ;
    }
    *nkeys = kept ;
    if (!kept) { rec[0] = deflt ; return V_DENIED ; }
  }
  return V_GRANT ;
}

/* the value of a grant whose static record is rec, made once per record */
static int grantvalue (build_t *b, long rec, char const **v, size_t *len)
{
  size_t i = (size_t)(rec + 1) ;
  if (!b->valoff[i])
  {
    size_t start = b->values.len ;
    rule_t const *r = rec >= 0 ? rules_rec(&b->rules, rec) : 0 ;
    if (conf.keys != KEYS_S6)
    {
      if (!rules_grantvalue(&b->values, r ? rules_data(&b->rules, r) : 0, r ? r->datalen : 0, conf.env.s, conf.env.len)) return 0 ;
    }
    else
    {
      char const *what ;   /* s6rules_make saw that every grant fits */
      b->conv.len = 0 ;
      if (!rules_grantvalue(&b->conv, r ? rules_data(&b->rules, r) : 0, r ? r->datalen : 0, conf.env.s, conf.env.len)
       || !s6rules_value(&b->values, b->conv.s, b->conv.len, &what)) return 0 ;
    }
    b->valoff[i] = (uint32_t)start + 1 ;
    b->vallen[i] = (uint32_t)(b->values.len - start) ;
  }
  *v = b->values.s + b->valoff[i] - 1 ;
  *len = b->vallen[i] ;
  return 1 ;
}

static void fmttime (char *s, int64_t ns)
{
  time_t t = (time_t)(ns / 1000000000) ;
  struct tm tm ;
  if (!gmtime_r(&t, &tm) || !strftime(s, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) strcpy(s, "?") ;
}

static void listone (build_t *b, unsigned int bucket, scanent_t const *e, int v, long rec, char const *why)
{
  static char const *const status[V_N] = { "granted", "expired", "future", "never", "never", "no-key", "denied", "over-cap" } ;
  char addr[IP_FMT], bname[3], granted[32], num[UINT64_FMT] ;
  char buf[STAMP_SIZEMAX + 1] ;
  stampinfo_t si ;
  int64_t left = stamp_expiry(e->mtime, conf.ttl) - b->now ;
  int fd, bfd ;
  ssize_t r = -1 ;
  size_t w = 0 ;

  ip_fmt(addr, &e->ip) ;
  stamp_bucketname(bname, bucket) ;
  bfd = openat(b->dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  fd = bfd >= 0 ? openat(bfd, addr, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1 ;
  if (bfd >= 0) close(bfd) ;
  if (fd >= 0) { r = read(fd, buf, sizeof buf) ; close(fd) ; }
  if (r < 0 || !stamp_parse(&si, buf, (size_t)r)) memset(&si, 0, sizeof si) ;
  if (!si.user[0]) strcpy(si.user, "?") ;
  fmttime(granted, e->mtime) ;
  num[uint64_fmt(num, left > 0 ? (uint64_t)(left / 1000000000) : 0)] = 0 ;

  /* one line per stamp, whatever a user name holds: it is escaped as in
     the stamp itself */
  b->line.len = 0 ;
  if (!stralloc_cats(&b->line, addr) || !stralloc_cats(&b->line, " user=")
   || !stamp_escape(&b->line, si.user, sizeof si.user)
   || !stralloc_cats(&b->line, " granted=") || !stralloc_cats(&b->line, granted)
   || !stralloc_cats(&b->line, " expires-in=") || !stralloc_cats(&b->line, num)
   || !stralloc_cats(&b->line, "s status=") || !stralloc_cats(&b->line, status[v]))
    strerr_diefusys(111, "list") ;
  if (v == V_DENIED)
  {
    num[uint_fmt(num, rules_rec(&b->rules, rec)->line)] = 0 ;
    if (!stralloc_cats(&b->line, " rule-line=") || !stralloc_cats(&b->line, num)) strerr_diefusys(111, "list") ;
  }
  if (v == V_NEVER && (!stralloc_cats(&b->line, " (") || !stralloc_cats(&b->line, why) || !stralloc_cats(&b->line, ")")))
    strerr_diefusys(111, "list") ;
  if (v == V_POLICY && !stralloc_cats(&b->line, " (in POPRELAY_NEVER)")) strerr_diefusys(111, "list") ;
  if (v == V_NOKEY && (!stralloc_cats(&b->line, " (") || !stralloc_cats(&b->line, why) || !stralloc_cats(&b->line, ")")))
    strerr_diefusys(111, "list") ;
  /* a grant held by a live session's holder, or one whose holder is gone */
  if (si.holder[0])
  {
    uint64_t pid = 0 ;
    int live = hold_live(si.holder, &pid) ;
    num[uint64_fmt(num, pid)] = 0 ;
    if (!(live ? stralloc_cats(&b->line, " held-by=") && stralloc_cats(&b->line, num) : stralloc_cats(&b->line, " hold=ended")))
      strerr_diefusys(111, "list") ;
  }
  if (!stralloc_catb(&b->line, "\n", 1) || !buffer_putall(buffer_1, b->line.s, b->line.len, &w))
    strerr_diefusys(111, "write to stdout") ;
}

/* a grant's records for s6-tcpserver-access, which replace the static
   ones keyed by that address */
static int s6grant (build_t *b, ip_t const *ip, long rec, char const *val, size_t vlen)
{
  char key[2][S6RULES_KEYMAX] ;
  size_t len[2] ;
  unsigned int n = s6rules_grantkeys(key, len, ip) ;
  for (unsigned int k = 0 ; k < n ; k++)
    if (!cdbout_add(&b->out, key[k], len[k], val, vlen)) return 0 ;
  s6rules_replace(&b->s6, rec) ;
  return 1 ;
}

/* What a build does with one stamp: list it, or write its grant's
   records, or say why it grants nothing. over: POPRELAY_USERMAX has
   refused it. Returns 0 or an errno. */
static int onstamp (build_t *b, unsigned int bucket, scanent_t const *e, int over)
{
  ipkeys_t keys ;
  char addr[IP_FMT] ;
  unsigned int nkeys ;
  long rec[IP_KEYS] ;
  char const *why ;
  int v = verdict(b, e, &keys, &nkeys, rec, &why) ;
  if (v == V_GRANT && over) v = V_OVERCAP ;
  b->counts[v]++ ;
  if (b->listing) { listone(b, bucket, e, v, rec[0], why) ; return 0 ; }
  if (v == V_GRANT)
  {
    int64_t exp = stamp_expiry(e->mtime, conf.ttl) ;
    if (conf.keys == KEYS_S6)
    {
      char const *val ;
      size_t vlen ;
      if (!grantvalue(b, rec[0], &val, &vlen)) return ENOMEM ;
      if (!s6grant(b, &e->ip, rec[0], val, vlen)) return errno ? errno : EIO ;
    }
    else for (unsigned int k = 0 ; k < nkeys ; k++)
    {
      char const *val ;
      size_t vlen ;
      if (!grantvalue(b, rec[k], &val, &vlen)) return ENOMEM ;
      if (!cdbout_add(&b->out, keys.s[k], keys.len[k], val, vlen)) return errno ? errno : EIO ;
    }
    if (!b->nextexpiry || exp < b->nextexpiry) b->nextexpiry = exp ;
    return 0 ;
  }
  if (v <= V_FUTURE) return 0 ;   /* relay-clean's business */
  ip_fmt(addr, &e->ip) ;
  if (v == V_NEVER) strerr_warnw("not granting ", addr, ": it is ", why) ;
  else if (v == V_POLICY) strerr_warnw("not granting ", addr, ": it is in POPRELAY_NEVER") ;
  else if (v == V_NOKEY) strerr_warnw("not granting ", addr, ": no key can grant it alone: ", why) ;
  else if (v == V_OVERCAP) strerr_warnw("not granting ", addr, ": its user has POPRELAY_USERMAX newer grants") ;
  else
  {
    char num[UINT_FMT] ;
    num[uint_fmt(num, rules_rec(&b->rules, rec[0])->line)] = 0 ;
    strerr_warnw("not granting ", addr, ": ", conf.rules, ":", num, " denies it") ;
  }
  return 0 ;
}

/* A stamp held until the cap is known, with a POPRELAY_USERMAX. */
typedef struct held_s held_t ;
struct held_s
{
  scanent_t e ;
  unsigned int bucket ;
  int over ;
} ;

static int onbucket (unsigned int bucket, scanent_t const *e, size_t n, void *ctx)
{
  build_t *b = ctx ;
  for (size_t i = 0 ; i < n ; i++)
  {
    int r ;
    if (conf.usermax)
    {
      held_t h = { .e = e[i], .bucket = bucket, .over = 0 } ;
      if (!genalloc_append(held_t, &b->held, &h)) return ENOMEM ;
      continue ;
    }
    r = onstamp(b, bucket, e + i, 0) ;
    if (r) return r ;
  }
  return 0 ;
}

/* the newest grants of each user first */
static int byuser (void const *a, void const *b)
{
  held_t const *x = *(held_t const *const *)a, *y = *(held_t const *const *)b ;
  if (x->e.who != y->e.who) return x->e.who < y->e.who ? -1 : 1 ;
  if (x->e.mtime != y->e.mtime) return x->e.mtime > y->e.mtime ? -1 : 1 ;
  return memcmp(x->e.ip.b, y->e.ip.b, 16) ;
}

/* POPRELAY_USERMAX: of each user's live stamps (by the login name in the
   stamp), the newest usermax grant, the others are over the cap; then
   every held stamp goes through onstamp in the order it was found.
   Returns 0 or an errno. */
static int applycap (build_t *b)
{
  size_t n = genalloc_len(held_t, &b->held), run = 0 ;
  held_t *h = genalloc_s(held_t, &b->held) ;
  held_t **p = n ? malloc(n * sizeof *p) : 0 ;
  uint64_t who = 0 ;
  if (n && !p) return ENOMEM ;
  for (size_t i = 0 ; i < n ; i++) p[i] = h + i ;
  if (n) qsort(p, n, sizeof *p, &byuser) ;
  for (size_t i = 0 ; i < n ; i++)
  {
    ipkeys_t keys ;
    unsigned int nkeys ;
    long rec[IP_KEYS] ;
    char const *why ;
    if (p[i]->e.who != who) { who = p[i]->e.who ; run = 0 ; }
    /* only what would be granted counts; a stamp whose user cannot be
       read counts as a user of its own */
    if (verdict(b, &p[i]->e, &keys, &nkeys, rec, &why) != V_GRANT || !who) continue ;
    if (++run > conf.usermax) p[i]->over = 1 ;
  }
  free(p) ;
  for (size_t i = 0 ; i < n ; i++)
  {
    int r = onstamp(b, h[i].bucket, &h[i].e, h[i].over) ;
    if (r) return r ;
  }
  return 0 ;
}


/* "skipping DIR/BB/NAME: why", NAME escaped */
static void skipping (char const *bname, char const *name, char const *why)
{
  stralloc sa = STRALLOC_ZERO ;
  if (stamp_where(&sa, conf.dir, bname, name)) strerr_warnw("skipping ", sa.s, ": ", why) ;
  else strerr_warnw("skipping a file in ", conf.dir, ": ", why) ;
  stralloc_free(&sa) ;
}

static void onother (unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why, void *ctx)
{
  build_t *b = ctx ;
  char bname[3] ;
  (void)mtime ;
  stamp_bucketname(bname, bucket) ;
  if (kind == SCAN_JUNK) skipping(bname, name, why) ;
  /* a bucket that is missing, or not as relaydir.h makes it, is made (or
     made anew) when we may: the services make them, never a mail user */
  if (!name && !b->listing && (kind == SCAN_MISSING || kind == SCAN_JUNK) && !relaydir_fixbucket(fd, bname) && !b->bucketwarned++)
  {
    stralloc sa = STRALLOC_ZERO ;
    if (stamp_where(&sa, conf.dir, bname, 0)) strerr_warnwusys("make bucket ", sa.s, " (and maybe others)") ;
    stralloc_free(&sa) ;
  }
}

static void ontopjunk (char const *name, int kind, int64_t mtime, void *ctx)
{
  (void)mtime ; (void)ctx ;
  if (kind == SCAN_JUNK) skipping(0, name, "not a bucket") ;
}

#define RULES_SETTLE 1000000000   /* see readrules */
#define RULES_TRUNCATED 20000000
#define RULES_TRIES 10

static int samefile (struct stat const *a, struct stat const *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
      && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
      && a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec ;
}

/* The rules as one whole version of the file. A file replaced by rename
   is read old or new; one rewritten in place (an editor that truncates
   and writes, "cat > rules") may be caught half written: so a file that
   changed while it was read is read again, and one modified less than a
   second ago is used only once it has stayed as it was for that second.
   (The file's modification time is the test, so that a file made ahead
   and dated back is used at once.) Returns 1, or 0 with errno (EAGAIN:
   it kept changing). */
static int readrules (stralloc *text)
{
  for (unsigned int tries = 0 ; tries < RULES_TRIES ; tries++)
  {
    struct stat before, after ;
    int64_t changed, now ;
    int fd = open(conf.rules, O_RDONLY | O_CLOEXEC) ;
    if (fd == -1) return 0 ;
    text->len = 0 ;
    if (fstat(fd, &before) == -1 || !slurp(text, fd) || fstat(fd, &after) == -1)
    {
      int e = errno ;
      close(fd) ;
      errno = e ;
      return 0 ;
    }
    close(fd) ;
    if (!samefile(&before, &after) || (off_t)text->len != after.st_size) continue ;
    changed = (int64_t)after.st_mtim.tv_sec * 1000000000 + after.st_mtim.tv_nsec ;
    now = stamp_now() ;
    {
      int64_t wait = changed + RULES_SETTLE - now ;
      struct timespec ts ;
      struct stat later ;
      /* settled; or changed well after now: the clock went back since */
      if (changed <= now - RULES_SETTLE || changed > now + RULES_SETTLE)
      {
        /* but a truncation shows the new size a moment before the new
           time: an empty file is looked at again */
        if (text->len) return 1 ;
        wait = RULES_TRUNCATED ;
      }
      ts.tv_sec = (time_t)(wait / 1000000000) ;
      ts.tv_nsec = (long)(wait % 1000000000) ;
      while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !stop) ;
      if (stat(conf.rules, &later) == 0 && samefile(&after, &later)) return 1 ;
    }
  }
  errno = EAGAIN ;
  return 0 ;
}

/* Reads and parses the static rules: 0, or an exit code after a message.
   Refusing a bad line here, before any lock, tells the one who ran us. */
static int loadrules (rules_t *r)
{
  stralloc text = STRALLOC_ZERO ;
  uint32_t line ;
  char const *what ;
  if (!readrules(&text))
  {
    if (errno == EAGAIN) strerr_warnw("unable to read ", conf.rules, ": it kept changing while it was read") ;
    else strerr_warnwusys("read ", conf.rules) ;
    stralloc_free(&text) ;
    return 111 ;
  }
  if (!rules_parse(r, text.s, text.len, conf.keys, &line, &what))
  {
    char num[UINT_FMT] ;
    stralloc_free(&text) ;
    if (!what) { strerr_warnwusys("parse ", conf.rules) ; return 111 ; }
    num[uint_fmt(num, line)] = 0 ;
    strerr_warn(PROG, ": fatal: ", conf.rules, ":", num, ": ", what) ;
    return 100 ;
  }
  stralloc_free(&text) ;
  if (conf.keys == KEYS_S6) return 0 ;
  if (r->hostrules && verbose)
    strerr_warni(conf.rules, " has host-name or TCPREMOTEINFO rules: tcpserver looks up an exact address before a host name, so a grant overrides =host rules for that address") ;
  return 0 ;
}

static void s6dead (uint32_t line, void *ctx)
{
  char num[UINT_FMT] ;
  (void)ctx ;
  num[uint_fmt(num, line)] = 0 ;
  strerr_warnw(conf.rules, ":", num, ": this key matches no client address, under tcpserver or s6-tcpserver-access: left out") ;
}

/* The static records for s6-tcpserver-access: 0, or an exit code after a
   message. */
static int loads6 (build_t *b)
{
  uint32_t line ;
  char const *what ;
  char num[UINT_FMT] ;
  b->s6 = (s6rules_t)S6RULES_ZERO ;
  if (s6rules_make(&b->s6, &b->rules, conf.env.s, conf.env.len, &s6dead, 0, &line, &what)) return 0 ;
  if (!what) { strerr_warnwusys("translate ", conf.rules, " for s6-tcpserver-access") ; return 111 ; }
  if (!line) { strerr_warn(PROG, ": fatal: POPRELAY_ENV: ", what) ; return 100 ; }
  num[uint_fmt(num, line)] = 0 ;
  strerr_warn(PROG, ": fatal: ", conf.rules, ":", num, ": ", what) ;
  return 100 ;
}

/* the static records for s6-tcpserver-access, after the grants */
static int s6statics (build_t *b)
{
  for (size_t i = 0 ; i < s6rules_n(&b->s6) ; i++)
  {
    char const *key, *data ;
    size_t keylen, datalen ;
    if (s6rules_get(&b->s6, i, &key, &keylen, &data, &datalen) && !cdbout_add(&b->out, key, keylen, data, datalen)) return 0 ;
  }
  return 1 ;
}

/* One build or listing. Returns 0 or an exit code, after a message. */
static int build (int listing, int64_t *nextexpiry)
{
  build_t b ;
  scan_t s ;
  int r, code = 0 ;
  size_t n ;
  memset(&b, 0, sizeof b) ;
  b.dirfd = -1 ;
  b.rules = (rules_t)RULES_ZERO ;
  b.listing = listing ;
  b.now = stamp_now() ;
  code = loadrules(&b.rules) ;
  if (!code && conf.keys == KEYS_S6 && !listing) code = loads6(&b) ;
  if (code) { rules_free(&b.rules) ; s6rules_free(&b.s6) ; return code ; }
  n = rules_n(&b.rules) ;
  b.valoff = calloc(n + 1, sizeof(uint32_t)) ;
  b.vallen = calloc(n + 1, sizeof(uint32_t)) ;
  if (!b.valoff || !b.vallen) { code = 111 ; strerr_warnwu("build: out of memory") ; goto end ; }

  b.dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (b.dirfd == -1)
  {
    if (errno != ENOENT) { code = 111 ; strerr_warnwusys("open relay directory ", conf.dir) ; goto end ; }
    strerr_warnw("relay directory ", conf.dir, " is missing: no grants") ;
  }
  if (!listing && !cdbout_start(&b.out, conf.cdb))
  {
    code = 111 ;
    strerr_warnwusys("create ", cdbout_what(&b.out)) ;
    goto end ;
  }

  if (b.dirfd >= 0)
  {
    stralloc cachefile = STRALLOC_ZERO ;
    memset(&s, 0, sizeof s) ;
    if (!stralloc_cats(&cachefile, conf.cache) || !stralloc_cats(&cachefile, "/scan") || !stralloc_0(&cachefile)) r = -1 ;
    else
    {
      /* a listing changes nothing, the cache included (it may not exist
         before the first build) */
      s.cachedir = listing ? 0 : cachefile.s ;
      s.full = full ;
      s.now = b.now ;
      s.who = conf.usermax > 0 ;
      s.stamps = &onbucket ;
      s.other = listing ? 0 : &onother ;
      s.ctx = &b ;
      r = scan_relay(&s, b.dirfd) ;
      if (!r && conf.usermax) r = applycap(&b) ;
      if (!r && !listing) scan_topjunk(b.dirfd, &ontopjunk, 0) ;
    }
    stralloc_free(&cachefile) ;
    if (r)
    {
      code = 111 ;
      errno = r > 0 ? r : errno ;
      strerr_warnwusys(r > 0 ? "write " : "read relay directory ", r > 0 ? cdbout_what(&b.out) : conf.dir) ;
      if (!listing) cdbout_abort(&b.out) ;
      goto end ;
    }
  }

  if (listing)
  {
    if (!buffer_flush(buffer_1)) strerr_diefusys(111, "write to stdout") ;
    goto end ;
  }

  if (conf.keys == KEYS_S6 && !s6statics(&b))
  {
    code = 111 ;
    strerr_warnwusys("write ", cdbout_what(&b.out)) ;
    goto end ;
  }
  for (size_t i = 0 ; i < (conf.keys == KEYS_S6 ? 0 : n) ; i++)
  {
    rule_t const *rec = rules_rec(&b.rules, i) ;
    if (!cdbout_add(&b.out, rules_key(&b.rules, rec), rec->keylen, rules_data(&b.rules, rec), rec->datalen))
    {
      code = 111 ;
      strerr_warnwusys("write ", cdbout_what(&b.out)) ;
      goto end ;
    }
  }
  if (!cdbout_finish(&b.out))
  {
    code = 111 ;
    strerr_warnwusys("write ", cdbout_what(&b.out), " and rename it to ", conf.cdb) ;
    goto end ;
  }
  if (verbose)
  {
    char g[ULONG_FMT], st[ULONG_FMT], ex[ULONG_FMT], rr[UINT_FMT], ms[UINT64_FMT] ;
    g[ulong_fmt(g, b.counts[V_GRANT])] = 0 ;
    st[ulong_fmt(st, (unsigned long)n)] = 0 ;
    ex[ulong_fmt(ex, b.counts[V_EXPIRED] + b.counts[V_FUTURE])] = 0 ;
    rr[uint_fmt(rr, b.dirfd >= 0 ? s.st.reread : 0)] = 0 ;
    ms[uint64_fmt(ms, (uint64_t)((stamp_now() - b.now) / 1000000))] = 0 ;
    strerr_warni("built ", conf.cdb, ": ", g, " grants, ", st, " static records, ", ex, " stale stamps; read ", rr, " of 256 buckets; ", ms, " ms") ;
  }
  *nextexpiry = b.nextexpiry ;

 end:
  if (!listing) cdbout_free(&b.out) ;
  if (b.dirfd >= 0) close(b.dirfd) ;
  rules_free(&b.rules) ;
  s6rules_free(&b.s6) ;
  stralloc_free(&b.conv) ;
  stralloc_free(&b.values) ;
  genalloc_free(held_t, &b.held) ;
  stralloc_free(&b.line) ;
  free(b.valoff) ;
  free(b.vallen) ;
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
  char const *const paths[] = { conf.cdb, conf.rules, conf.dir } ;
  uint64_t h = 14695981039346656037ull ;
  for (unsigned int i = 0 ; i < 3 ; i++)
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
  for (unsigned int i = 0 ; i < 16 ; i++) s[i] = "0123456789abcdef"[id >> (60 - 4 * i) & 15] ;
  s[16] = 0 ;
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

/* Takes the build lock, waiting at most LOCKWAIT_MS, less if the service
   is asked to stop. Returns 1, or 0 with errno. */
static int lockbuild (int fd)
{
  unsigned int waited = 0, step = 1 ;
  while (flock(fd, LOCK_EX | LOCK_NB) == -1)
  {
    struct timespec ts ;
    if (errno != EWOULDBLOCK && errno != EINTR) return 0 ;
    if (waited >= LOCKWAIT_MS || stop) { errno = ETIMEDOUT ; return 0 ; }
    ts.tv_sec = 0 ; ts.tv_nsec = (long)step * 1000000 ;
    nanosleep(&ts, 0) ;
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
    code = build(0, nextexpiry) ;
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

static void onterm (int sig)
{
  (void)sig ;
  stop = 1 ;
}

/* While builds fail (a full disk, an unreadable rules file), the old cdb
   stays, with grants that expire meanwhile: the service tries again every
   second, and says so once a minute, not once a second. */
#define FAILRETRY_MS 1000
#define FAILSHOUT ((int64_t)60 * 1000000000)

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
      s[uint64_fmt(s, (uint64_t)((now - failing) / 1000000000))] = 0 ;
      strerr_warni("built ", conf.cdb, " again, after ", s, " seconds of failed builds") ;
    }
    failing = 0 ;
    return 1 ;
  }
  if (!failing) failing = shouted = now ;
  else if (!hush)
  {
    char s[UINT64_FMT] ;
    s[uint64_fmt(s, (uint64_t)((now - failing) / 1000000000))] = 0 ;
    strerr_warnw("no build of ", conf.cdb, " has succeeded for ", s, " seconds: grants that expired meanwhile still relay until one does") ;
    shouted = now ;
  }
  return 0 ;
}

/* -w: build now, then at each poke and at each grant's expiry. The fifo
   is named after the build's inputs, so that a service restarted with the
   same settings takes back its own, and two services for two cdbs each
   get every poke. */
static int service (void)
{
  struct sigaction sa ;
  char name[11 + 16 + 1] = "relay-open." ;
  int dirfd, fifo ;
  memset(&sa, 0, sizeof sa) ;
  sa.sa_handler = &onterm ;
  sigemptyset(&sa.sa_mask) ;
  sigaction(SIGTERM, &sa, 0) ;
  sigaction(SIGINT, &sa, 0) ;
  sigaction(SIGHUP, &sa, 0) ;

  hexid(name + 11, buildid()) ;
  dirfd = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (dirfd == -1) strerr_diefusys(111, "open relay directory ", conf.dir) ;
  fifo = trigger_listen(dirfd, name) ;
  if (fifo == -1) strerr_diefusys(111, "listen on ", conf.dir, "/" TRIGGER_DIR "/", name) ;
  if (verbose) strerr_warni("listening on ", conf.dir, "/" TRIGGER_DIR "/", name) ;

  while (!stop)
  {
    int64_t next = 0 ;
    int timeout = 300000 ;   /* a rebuild at least every 5 minutes, in case the clock jumped */
    struct pollfd p = { .fd = fifo, .events = POLLIN, .revents = 0 } ;
    trigger_drain(fifo) ;
    if (!attempt(&next)) timeout = FAILRETRY_MS ;
    if (next)
    {
      int64_t wait = (next - stamp_now()) / 1000000 + 10 ;
      if (wait < timeout) timeout = wait < 0 ? 0 : (int)wait ;
    }
    if (stop) break ;
    if (poll(&p, 1, timeout) == -1 && errno != EINTR) strerr_diefusys(111, "poll") ;
  }
  trigger_unlisten(dirfd, name, fifo) ;
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
    int opt = subgetopt_r(argc, argv, "vfwld:c:r:o:t:k:n:e:T:m:L:", &l) ;
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
  if (mode == 'l')
  {
    int64_t next ;
    return build(1, &next) ;
  }
  {
    int64_t next ;
    return request(&next) ;
  }
}
