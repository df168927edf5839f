/* hold.c: the holder, which keeps a grant while the session lives; see
   hold.h. pidfd_open (5.3), close_range (5.9), setsid's new session and
   /proc/PID/stat are Linux's; each has its fallback below. */

#define _GNU_SOURCE  /* syscall */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <skalibs/djbunix.h>
#include <skalibs/sig.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "hold.h"
#include "relaydir.h"

#ifndef SYS_pidfd_open
# define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
# define SYS_close_range 436
#endif

/* as long as a login waits for a bucket's lock (pop3-wrapper.c) */
#define LOCKWAIT_MS 200

typedef struct holder_s holder_t ;
struct holder_s
{
  conf_t const *c ;
  stampinfo_t si ;        /* the login's stamp, with the holder field */
  stralloc sa ;
  char addr[IP_FMT] ;
  char bname[3] ;
  pid_t session ;
  uint64_t start ;        /* the session's start time, without a pidfd */
  int pidfd ;             /* the session's, or -1 */
  int dropgid ;           /* set-gid: the group is taken only to write */
  gid_t gid, wgid ;       /* the real group, and the one that may write */
  int64_t begun, deadline, interval ;  /* monotonic, nanoseconds */
  unsigned int refreshes ;
  int quiet ;
} ;

void hold_grant (hold_t *h, ip_t const *ip, stampinfo_t const *si)
{
  h->ip = *ip ;
  h->si = *si ;
  h->granted = 1 ;
}

/* for the times between refreshes: the wall clock may be set meanwhile */
static int64_t monotonic (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return stamp_ns(&ts) ;
}

/* The state (field 3) and start time (field 22) of a process, from
   /proc/PID/stat. Field 2, the name, may hold spaces and ')': fields
   are counted from its last ')'. Returns 1, or 0. */
static int procstat (uint64_t pid, char *state, uint64_t *start)
{
  char path[6 + UINT64_FMT + 6], buf[1024] ;
  char *p ;
  size_t n = 6 ;
  ssize_t r ;
  int fd ;
  memcpy(path, "/proc/", 6) ;
  n += uint64_fmt(path + n, pid) ;
  memcpy(path + n, "/stat", 6) ;
  fd = open(path, O_RDONLY | O_CLOEXEC) ;
  if (fd == -1) return 0 ;
  r = read(fd, buf, sizeof buf - 1) ;
  fd_close(fd) ;
  if (r <= 0) return 0 ;
  buf[r] = 0 ;
  p = strrchr(buf, ')') ;
  if (!p || p[1] != ' ' || !p[2]) return 0 ;
  p += 2 ;
  *state = *p ;
  for (unsigned int field = 3 ; field < 22 ; field++)
  {
    p = strchr(p, ' ') ;
    if (!p) return 0 ;
    p++ ;
  }
  n = uint64_scan(p, start) ;
  return n && (p[n] == ' ' || p[n] == '\n' || !p[n]) ;
}

/* 1 if that process runs: not gone, not a zombie, and started when it
   did, so that another process given its pid is not taken for it */
static int running (uint64_t pid, uint64_t start)
{
  char state ;
  uint64_t now ;
  return procstat(pid, &state, &now) && now == start && state != 'Z' && state != 'X' ;
}

int hold_live (char const *holder, uint64_t *pid)
{
  uint64_t p, start ;
  size_t n = uint64_scan(holder, &p), m ;
  if (!n || holder[n] != ':' || !p) return 0 ;
  m = uint64_scan(holder + n + 1, &start) ;
  if (!m || holder[n + 1 + m]) return 0 ;
  *pid = p ;
  return running(p, start) ;
}

/* Waits at most ns for the session to end; 1 if it has. With a pidfd
   the end wakes the holder at once; without, it is seen at the time of
   the next refresh, so that the holder outlives the session by one
   interval at most and never refreshes after it. */
static int ended (holder_t const *x, int64_t ns)
{
  int ms = ns <= 0 ? 0 : ns / 1000000 >= INT_MAX ? INT_MAX : (int)((ns + 999999) / 1000000) ;
  if (x->pidfd >= 0)
  {
    struct pollfd p = { .fd = x->pidfd, .events = POLLIN } ;
    return poll(&p, 1, ms) > 0 ;
  }
  if (ms) poll(0, 0, ms) ;
  return !running((uint64_t)x->session, x->start) ;
}

/* Descriptor 2 stays the holder's only when it is the server's log and
   not the client: not the same file as descriptor 0 or 1 (inetd makes
   all three the socket; a chain may have made 2 a copy of 1, a pipe to
   sslserver), and no Internet socket. */
static int keepstderr (void)
{
  struct stat e, o ;
  struct sockaddr_storage ss ;
  socklen_t len = sizeof ss ;
  if (fstat(2, &e) == -1) return 0 ;
  for (int fd = 0 ; fd < 2 ; fd++)
    if (!fstat(fd, &o) && o.st_dev == e.st_dev && o.st_ino == e.st_ino) return 0 ;
  return !S_ISSOCK(e.st_mode) || getsockname(2, (struct sockaddr *)&ss, &len) == -1
      || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ;
}

/* Leaves the session behind: a session of the holder's own (no signal
   to the session's process group reaches it, no terminal), the signals
   as a new process has them, the root directory as its working
   directory (the user's home stays unmountable otherwise), and of the
   descriptors only the pidfd, on 3, and the log on 2 if keepstderr says
   so; 0 and 1, and 2 otherwise, are /dev/null. syslog, when
   pop3-wrapper's lines go there, opens its socket anew. */
static void detach (holder_t *x)
{
  int keep2 = keepstderr(), null, first = 3 ;
  setsid() ;
  sig_blocknone() ;
  sig_restore(SIGTERM) ; sig_restore(SIGINT) ; sig_restore(SIGHUP) ;
  sig_ignore(SIGPIPE) ;
  closelog() ;
  if (chdir("/") == -1) { }   /* nothing the holder does depends on it */
  if (x->pidfd >= 0)   /* never below 3: pop3-wrapper keeps 0, 1 and 2 open */
  {
    if (x->pidfd != 3 && dup2(x->pidfd, 3) == -1) x->pidfd = -1 ;
    else { x->pidfd = 3 ; first = 4 ; }
  }
  null = open("/dev/null", O_RDWR | O_CLOEXEC) ;
  if (null >= 0)
  {
    dup2(null, 0) ; dup2(null, 1) ;
    if (!keep2) dup2(null, 2) ;
  }
  else { close(0) ; close(1) ; if (!keep2) close(2) ; }
  if (syscall(SYS_close_range, (unsigned int)first, ~0u, 0) == -1)
  {
    struct rlimit rl ;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur ;
    for (int fd = first ; fd < max ; fd++) close(fd) ;
  }
}

static void warnwrite (holder_t const *x, char const *what)
{
  strerr_warnwusys(what, " ", x->c->dir, "/", x->bname, "/", x->addr) ;
}

/* The stamp, written anew as a login writes it, if it is still live.
   Returns 1 when it was, 0 when it is not (the grant is gone). */
static int rewrite (holder_t *x, int bfd)
{
  struct stat old ;
  int64_t now = stamp_now() ;
  if (fstatat(bfd, x->addr, &old, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(old.st_mode)
   || stamp_state(stamp_ns(&old.st_mtim), now, x->c->ttl, x->c->skew) != STAMP_LIVE)
    return 0 ;
  x->sa.len = 0 ;
  if (!stamp_fmt(&x->sa, &x->si) || !stamp_write(bfd, x->addr, x->sa.s, x->sa.len)) warnwrite(x, "refresh stamp") ;
  else x->refreshes++ ;
  return 1 ;
}

/* One refresh, with the checks and the lock of a login (pop3-wrapper's
   grant). Returns 0 when the grant is gone, 1 otherwise: refreshed, or
   failed this time, with a warning, and tried again at the next. */
static int refresh (holder_t *x)
{
  struct stat st ;
  int dirfd, bfd, r = 1 ;
  if (x->dropgid && setegid(x->wgid) == -1) { warnwrite(x, "take the group to refresh") ; return 1 ; }
  dirfd = open(x->c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (dirfd == -1)
  {
    if (errno == ENOENT) r = 0 ; else strerr_warnwusys("open relay directory ", x->c->dir) ;
    goto drop ;
  }
  if (fstat(dirfd, &st) == -1) { strerr_warnwusys("stat relay directory ", x->c->dir) ; goto closedir ; }
  /* the directory may have changed hands since the login */
  if (x->dropgid && (st.st_gid != x->wgid || st.st_mode & 07))
  {
    strerr_warnw("not refreshing ", x->addr, ": ", x->c->dir, " must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)") ;
    goto closedir ;
  }
  bfd = relaydir_openbucket(dirfd, x->bname, &st) ;
  if (bfd == -1)
  {
    struct stat bst ;
    if (errno == ENOENT || (fstatat(dirfd, x->bname, &bst, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)) r = 0 ;
    else warnwrite(x, "open the bucket of") ;
    goto closedir ;
  }
  if (!stamp_lock(bfd, LOCKWAIT_MS)) warnwrite(x, "lock the bucket (writing the stamp anyway) of") ;
  r = rewrite(x, bfd) ;
  fd_close(bfd) ;   /* and unlock */
 closedir:
  fd_close(dirfd) ;
 drop:
  if (x->dropgid && setegid(x->gid) == -1) { }   /* still only the group of the login */
  return r ;
}

/* Refreshes every interval from now on, until the session ends, the
   grant is gone, or the deadline; says which. No refresh is made at or
   after the deadline, nor once the session has ended. */
static char const *holdloop (holder_t *x)
{
  int64_t next = x->begun ;
  for (;;)
  {
    int64_t now = monotonic() ;
    int64_t until = next < x->deadline ? next : x->deadline ;
    if (now < until)
    {
      if (ended(x, until - now)) return "the session ended" ;
      continue ;   /* the time, or a signal: look at the clock again */
    }
    if (ended(x, 0)) return "the session ended" ;
    if (now >= x->deadline) return "POPRELAY_HOLD is reached" ;
    if (!refresh(x)) return "its stamp was removed or is no longer live" ;
    next += x->interval ;
    if (next <= now) next = now + x->interval ;   /* after a stop, no catching up */
  }
}

/* The holder itself, in the grandchild: never returns. */
static void holder (holder_t *x)
{
  char pid[PID_FMT], num[UINT64_FMT], n2[UINT_FMT] ;
  char const *why ;
  uint64_t start ;
  char state ;
  detach(x) ;
  if (x->dropgid && setegid(x->gid) == -1)
  {
    strerr_warnwusys("give up the group in the holder of ", x->addr) ;
    _exit(111) ;
  }
  if (procstat((uint64_t)getpid(), &state, &start))
  {
    size_t n = pid_fmt(x->si.holder, getpid()) ;
    x->si.holder[n++] = ':' ;
    x->si.holder[n + uint64_fmt(x->si.holder + n, start)] = 0 ;
  }
  pid[pid_fmt(pid, x->session)] = 0 ;
  num[uint_fmt(num, x->c->hold)] = 0 ;
  if (!x->quiet) strerr_warni("holding ", x->addr, " while the session, pid ", pid, ", runs, ", num, " s at most") ;
  why = holdloop(x) ;
  num[uint64_fmt(num, (uint64_t)((monotonic() - x->begun) / STAMP_SECOND))] = 0 ;
  n2[uint_fmt(n2, x->refreshes)] = 0 ;
  if (!x->quiet) strerr_warni("released ", x->addr, " after ", num, " s and ", n2, x->refreshes == 1 ? " refresh: " : " refreshes: ", why) ;
  stralloc_free(&x->sa) ;
  _exit(0) ;
}

/* The fork leaves a SIGCHLD pending when the session's mask blocks it:
   the session would find a signal for a child it never had. */
static void forget (sigset_t const *blocked, sigset_t const *before)
{
  sigset_t chld, now ;
  struct timespec zero = { 0, 0 } ;
  if (!sigismember(blocked, SIGCHLD) || sigismember(before, SIGCHLD)) return ;
  if (sigpending(&now) == -1 || !sigismember(&now, SIGCHLD)) return ;
  sigemptyset(&chld) ;
  sigaddset(&chld, SIGCHLD) ;
  sigtimedwait(&chld, 0, &zero) ;
}

int hold_start (hold_t const *h, conf_t const *c, int quiet)
{
  holder_t x = { .c = c, .si = h->si, .sa = STRALLOC_ZERO, .quiet = quiet } ;
  sigset_t blocked, before ;
  char state ;
  pid_t a ;
  int status = 0 ;
  if (!c->hold || !h->granted) return 0 ;
  ip_fmt(x.addr, &h->ip) ;
  stamp_bucketname(x.bname, stamp_bucket(&h->ip)) ;
  x.session = getpid() ;
  x.gid = getgid() ;
  x.wgid = getegid() ;
  x.dropgid = x.gid != x.wgid ;
  x.pidfd = (int)syscall(SYS_pidfd_open, x.session, 0) ;
  if (!procstat((uint64_t)x.session, &state, &x.start) && x.pidfd < 0)
  {
    strerr_warnw("unable to hold the grant of ", x.addr, ": neither pidfd_open (Linux 5.3) nor /proc/self/stat works here") ;
    return -1 ;
  }
  x.interval = (int64_t)c->ttl * STAMP_SECOND / 3 ;
  x.begun = monotonic() ;
  x.deadline = x.begun + (int64_t)c->hold * STAMP_SECOND ;
  sigprocmask(SIG_SETMASK, 0, &blocked) ;
  sigpending(&before) ;
  a = fork() ;
  if (!a)
  {
    /* the holder is a grandchild: the session, which never waits for
       it, must not have it as a child, nor a zombie of it */
    pid_t b = fork() ;
    if (!b) holder(&x) ;
    _exit(b == -1 ? 111 : 0) ;
  }
  if (x.pidfd >= 0) fd_close(x.pidfd) ;
  if (a == -1) { strerr_warnwusys("fork the holder of ", x.addr) ; return -1 ; }
  while (waitpid(a, &status, 0) == -1 && errno == EINTR) ;
  forget(&blocked, &before) ;
  if (WIFEXITED(status) && WEXITSTATUS(status))
  {
    strerr_warnw("unable to fork the holder of ", x.addr) ;
    return -1 ;
  }
  return 1 ;
}
