/* pop3-wrapper: grant relaying to the address a user just logged in from,
   then run the mail session.

   It sits where an authenticator execs the session after a successful
   login (qmail-popup + checkpassword, mailfront's pop3front-auth and
   imapfront-auth, Dovecot's post-login script), writes or refreshes the
   stamp DIR/BB/ADDR, asks the relay-open service for a rebuild when the
   address was not granted yet, and execs the rest of its argv with every
   descriptor as it found it. Whatever goes wrong on the relay side is one
   warning line: the user always gets to read mail. */

#define _GNU_SOURCE  /* flock, setresuid */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <syslog.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <skalibs/buffer.h>
#include <skalibs/djbunix.h>
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "chain.h"
#include "conf.h"
#include "hold.h"
#include "peer.h"
#include "relaydir.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "pop3-wrapper [ -q ] [ -d dir ] [ -t ttl ] [ -k skew ] [ -n never ] [ -L 0|1 ] [ -h hold ] [ -s service ] prog..."

char const *PROG = "pop3-wrapper" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_NEVER", "POPRELAY_LINKLOCAL", "POPRELAY_HOLD", 0 } ;

/* How long a login waits for relay-clean to let go of a bucket before it
   writes without the lock: relay-clean holds it while it removes a
   bucket's stale stamps, under a millisecond. */
#define LOCKWAIT_MS 200

/* Under inetd, or xinetd with no run script in between, standard error
   is the client's connection itself: a line written there would reach
   the client before the session's greeting or answer. It is so when fd 2
   is the socket fd 0 or fd 1 is, or any Internet socket (no log is one). */
static int stderrisclient (void)
{
  struct stat e, o ;
  struct sockaddr_storage ss ;
  socklen_t len = sizeof ss ;
  if (fstat(2, &e) == -1 || !S_ISSOCK(e.st_mode)) return 0 ;
  for (int fd = 0 ; fd < 2 ; fd++)
    if (!fstat(fd, &o) && o.st_dev == e.st_dev && o.st_ino == e.st_ino) return 1 ;
  return !getsockname(2, (struct sockaddr *)&ss, &len)
      && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) ;
}

/* Then our lines go to syslog, facility mail, instead: buffer_2's write
   function is replaced, so that every message, the fatal ones too, takes
   that way. A line longer than the room here is cut. */
static char logline[1024] ;
static size_t loglen ;

static void syslogline (void)
{
  static char const me[] = "pop3-wrapper: " ;
  char const *s = logline ;
  int prio = LOG_INFO ;
  logline[loglen] = 0 ;
  loglen = 0 ;
  if (!strncmp(s, me, sizeof me - 1)) s += sizeof me - 1 ;
  if (!strncmp(s, "warning: ", 9)) prio = LOG_WARNING ;
  else if (!strncmp(s, "fatal: ", 7)) prio = LOG_ERR ;
  syslog(prio, "%s", s) ;
}

static ssize_t tosyslog (int fd, struct iovec const *v, unsigned int n)
{
  size_t total = 0 ;
  (void)fd ;
  for (unsigned int i = 0 ; i < n ; i++)
  {
    char const *p = v[i].iov_base ;
    for (size_t j = 0 ; j < v[i].iov_len ; j++)
      if (p[j] == '\n') syslogline() ;
      else if (loglen < sizeof logline - 1) logline[loglen++] = p[j] ;
    total += v[i].iov_len ;
  }
  return (ssize_t)total ;
}

static void copyfield (char *dst, size_t max, char const *src)
{
  size_t n = src ? strlen(src) : 0 ;
  if (n >= max) n = max - 1 ;
  if (n) memcpy(dst, src, n) ;
  dst[n] = 0 ;
}

static char const *basename_of (char const *s)
{
  char const *slash = strrchr(s, '/') ;
  return slash ? slash + 1 : s ;
}

/* Who logged in: the client's address, from the kernel when we run
   with privileges the invoker has not (set-gid), else from the
   environment; and whether it may be granted. Returns 1, or 0 after a
   line saying why not. */
static int whois (conf_t const *c, peer_t *p, int privileged, int quiet)
{
  char addr[IP_FMT] ;
  char const *why ;
  /* Dovecot's checkpassword passdb runs the chain for userdb lookups too,
     which are not logins */
  if (!privileged)
  {
    char const *authorized = getenv("AUTHORIZED") ;
    if (authorized && !strcmp(authorized, "1"))
    {
      if (!quiet) strerr_warni("not granting: AUTHORIZED=1 is a user lookup, not a login") ;
      return 0 ;
    }
  }
  if (!(privileged ? peer_fromsocket(p, &why) : peer_fromenv(p, &why)))
  {
    if (p->via) strerr_warnw("not granting relaying: ", p->via, ": ", why) ;
    else strerr_warnw("not granting relaying: ", why) ;
    return 0 ;
  }
  ip_fmt(addr, &p->ip) ;
  why = ip_never(&p->ip) ;
  if (!why && !c->linklocal) why = ip_linklocal(&p->ip) ;
  if (why) { strerr_warnw("not granting relaying to ", addr, ": it is ", why) ; return 0 ; }
  if (ipnets_match(c->never, c->nnever, &p->ip))
  {
    strerr_warnw("not granting relaying to ", addr, ": it is in POPRELAY_NEVER") ;
    return 0 ;
  }
  return 1 ;
}

/* The relay directory, open: set-gid, the environment is the user's, so
   it must be one of our group that gives others nothing, which the user
   cannot make. Returns the fd, or -1 after a line saying why. */
static int openrelay (conf_t const *c, int privileged, struct stat *st)
{
  int fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (fd == -1) { strerr_warnwusys("open relay directory ", c->dir) ; return -1 ; }
  if (fstat(fd, st) == -1) { strerr_warnwusys("stat relay directory ", c->dir) ; fd_close(fd) ; return -1 ; }
  if (privileged && (st->st_gid != getegid() || st->st_mode & 07))
  {
    strerr_warnw("not granting relaying: ", c->dir, " must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)") ;
    fd_close(fd) ;
    return -1 ;
  }
  return fd ;
}

/* What the stamp says of the login. */
static void describe (stampinfo_t *si, peer_t const *p, char const *service, char const *next, int64_t now)
{
  memset(si, 0, sizeof *si) ;
  copyfield(si->user, sizeof si->user, getenv("USER")) ;
  si->uid[uint_fmt(si->uid, (unsigned int)getuid())] = 0 ;
  si->time[uint64_fmt(si->time, (uint64_t)(now / STAMP_SECOND))] = 0 ;
  copyfield(si->service, sizeof si->service, service ? service : getenv("SERVICE") ? getenv("SERVICE") : basename_of(next)) ;
  copyfield(si->local, sizeof si->local, p->local) ;
  copyfield(si->via, sizeof si->via, p->via) ;
}

/* Writes the stamp of p under its bucket's lock. Returns 1 with
   *granted (the address had a live grant already), or 0 after a line
   saying why not. */
static int writestamp (conf_t const *c, int dirfd, struct stat const *dirst, peer_t const *p, stampinfo_t *si, char const *service, char const *next, int *granted)
{
  char addr[IP_FMT], bname[3] ;
  stralloc sa = STRALLOC_ZERO ;
  struct stat old ;
  int64_t now ;
  int bfd, ok ;
  ip_fmt(addr, &p->ip) ;
  stamp_bucketname(bname, stamp_bucket(&p->ip)) ;
  bfd = relaydir_openbucket(dirfd, bname, dirst) ;
  if (bfd == -1)
  {
    if (errno != EPERM) strerr_warnwusys("open ", c->dir, "/", bname) ;
    else if (fstatat(dirfd, bname, &old, AT_SYMLINK_NOFOLLOW) == -1)
      strerr_warnw("not granting relaying: ", c->dir, "/", bname, " is missing, and only relay-open, relay-clean or the relay directory's owner make buckets") ;
    else strerr_warnw("not granting relaying: ", c->dir, "/", bname, " has an owner, group or mode that relay-open does not give a bucket: relay-open or relay-clean makes it anew") ;
    return 0 ;
  }
  if (!stamp_lock(bfd, LOCKWAIT_MS)) strerr_warnwusys("lock ", c->dir, "/", bname, " (writing the stamp anyway)") ;
  now = stamp_now() ;
  *granted = !fstatat(bfd, addr, &old, AT_SYMLINK_NOFOLLOW) && S_ISREG(old.st_mode)
    && stamp_state(stamp_ns(&old.st_mtim), now, c->ttl, c->skew) == STAMP_LIVE ;
  describe(si, p, service, next, now) ;
  ok = stamp_fmt(&sa, si) && stamp_write(bfd, addr, sa.s, sa.len) ;
  if (!ok) strerr_warnwusys("write stamp ", c->dir, "/", bname, "/", addr) ;
  fd_close(bfd) ;   /* and unlock: the stamp is in place */
  stralloc_free(&sa) ;
  return ok ;
}

/* The log line of a grant or a refresh, and for a new grant the poke
   that has relay-open rebuild. The user name is escaped as in the stamp:
   a log line must never be forged from inside a field (log watchers have
   granted relaying on the strength of one). */
static void announce (conf_t const *c, int dirfd, peer_t const *p, stampinfo_t const *si, int granted, int quiet)
{
  char addr[IP_FMT] ;
  stralloc sa = STRALLOC_ZERO ;
  char const *user = si->user[0] && stamp_escape(&sa, si->user, sizeof si->user) && stralloc_0(&sa) ? sa.s : "?" ;
  ip_fmt(addr, &p->ip) ;
  if (granted) { if (!quiet) strerr_warni("refreshed ", addr, " for ", user, " uid ", si->uid) ; }
  else
  {
    unsigned int fifos, stale ;
    int r = trigger_poke(dirfd, &fifos, &stale) ;
    if (!quiet) strerr_warni("granted ", addr, " to ", user, " uid ", si->uid) ;
    /* No fifo at all: no relay-open -w was set up (cron builds), which is
       no fault. A fifo with no reader is a service that died. */
    if (r < 0) strerr_warnwusys("ask relay-open for a rebuild through ", c->dir, "/" TRIGGER_DIR) ;
    else if (!r && stale) strerr_warnw("no relay-open -w service listens on ", c->dir, "/" TRIGGER_DIR, ": the grant waits for the next rebuild") ;
    else if (!r && !quiet) strerr_warni("no relay-open -w service is set up: the grant takes effect at the next relay-open run") ;
  }
  stralloc_free(&sa) ;
}

/* The grant of a login: who, the stamp, the word. */
static void grant (conf_t const *c, char const *service, char const *next, int quiet, hold_t *hold)
{
  int privileged = peer_privileged() ;
  struct stat st ;
  stampinfo_t si ;
  peer_t p ;
  int dirfd, granted ;
  if (!whois(c, &p, privileged, quiet)) return ;
  dirfd = openrelay(c, privileged, &st) ;
  if (dirfd == -1) return ;
  if (writestamp(c, dirfd, &st, &p, &si, service, next, &granted))
  {
    hold_grant(hold, &p.ip, &si) ;   /* what a holder would refresh (hold.h) */
    announce(c, dirfd, &p, &si, granted, quiet) ;
  }
  fd_close(dirfd) ;
}

int main (int argc, char const *const *argv)
{
  conf_t c ;
  hold_t hold = HOLD_ZERO ;
  char const *service = 0 ;
  char const *bad, *why ;
  int ok = 1, quiet = 0 ;
  unsigned int closed = 0 ;
  subgetopt l = SUBGETOPT_ZERO ;

  /* A closed 0, 1 or 2 would let a file we open take its place and
     receive our messages: each is open on /dev/null for our time, and
     closed again just before the session runs, which gets its
     descriptors as it found them. */
  for (int fd = 0 ; fd < 3 ; fd++)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) closed |= 1u << fd ;
  if (!fd_sanitize()) strerr_diefusys(111, "open /dev/null") ;
  if (stderrisclient())
  {
    openlog(PROG, LOG_PID, LOG_MAIL) ;
    buffer_2->op = &tosyslog ;
  }

  conf_defaults(&c) ;
  if (!conf_env(&c, vars, &bad, &why))
  {
    strerr_warnw("not granting relaying: bad ", bad, ": ", why) ;
    ok = 0 ;
  }
  for (;;)
  {
    int opt = subgetopt_r(argc, argv, "+qd:t:k:n:s:L:h:", &l) ;
    if (opt == -1) break ;
    switch (opt)
    {
      case 's' : service = l.arg ; break ;
      case 'q' : quiet = 1 ; break ;
      default :
      {
        int r = conf_setopt(&c, opt, l.arg, &why) ;
        if (r < 0) strerr_dieusage(100, USAGE) ;
        if (!r)
        {
          char o[3] = { '-', (char)opt, 0 } ;
          strerr_warnw("not granting relaying: bad ", o, " ", conf_optvar(opt) + 9, ": ", why) ;
          ok = 0 ;
        }
      }
    }
  }
  argc -= l.ind ; argv += l.ind ;
  if (!argc) strerr_dieusage(100, USAGE) ;

  if (ok) grant(&c, service, argv[0], quiet, &hold) ;
  hold_start(&hold, &c, quiet) ;   /* with the group, before it goes (hold.h) */

  /* Set-gid, the session must not keep the group that may write the
     relay directory: a user running pop3-wrapper by hand could name a
     shell as the next program. */
  if (peer_privileged())
  {
    gid_t g = getgid() ;
    uid_t u = getuid() ;
    if (setresgid(g, g, g) == -1 || setresuid(u, u, u) == -1)
    {
      char q[80] ;
      conf_quote(q, sizeof q, argv[0]) ;
      strerr_diefusys(111, "drop privileges before running ", q) ;
    }
  }
  for (int fd = 0 ; fd < 3 ; fd++) if (closed & 1u << fd) close(fd) ;
  chain_exec(argv) ;
}
