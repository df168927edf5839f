/* relay-publish: send this host's grants to the SMTP hosts, with rsync
   over ssh.

   A supervised service on each POP host. It listens on its own fifo in
   DIR/.rebuild, so that every login that pop3-wrapper grants wakes it as
   it wakes relay-open, and it looks at the relay directory every few
   seconds besides (a refresh of a live grant pokes nobody: it travels at
   that look). Each time, it stats the 256 bucket directories and sends,
   to each SMTP host, the buckets whose directory changed since the last
   push that host took: rsync -R of DIR/./BB/ with --delete inside those
   buckets only, so that removals travel and a push costs what changed.
   The SMTP host's relay-open reads what arrives as that host's relay
   directory (POPRELAY_HOSTS/HOST), with the same strict rules as local
   stamps, and its inotify watch sees the renames at once.

   Each host has its own ssh connection, kept open (a control master,
   ssh -M, a child of this service) so that a push costs no new ssh
   handshake, and its own push, a child with a time limit: a host that is
   down, slow or full holds up nobody else, and a login never waits for
   any of this. After a push that failed, or a connection that ended, the
   next push is a full one (rsync sends only what differs), so that a host
   that was away catches up; the connection is made again, backing off.

   The receiving side needs nothing of ours: its key runs rrsync into
   that host's directory, and relay-open -w there sees each stamp renamed
   into a bucket through inotify, which is its poke. */

#define _GNU_SOURCE  /* prctl: a child dies with this service */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <skalibs/djbunix.h>
#include <skalibs/genalloc.h>
#include <skalibs/selfpipe.h>
#include <skalibs/sgetopt.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "chain.h"
#include "conf.h"
#include "relaydir.h"
#include "scan.h"
#include "stamp.h"
#include "trigger.h"

#define USAGE "relay-publish [ -v ] [ -d dir ] [ -c cachedir ] [ -F sshconfig ] [ -i interval ] [ -x timeout ] [ host[:path] ... ]"

char const *PROG = "relay-publish" ;

static char const *const vars[] = { "POPRELAY_DIR", "POPRELAY_CACHE", 0 } ;

/* what rsync is told: directories and stamps as the receiving side wants
   them (see relay-publish(8), "The receiving side"), times kept (a grant's
   time is this host's), no directory times (the SMTP host's scan cache
   goes by its own), our temp files left here, rsync's own written in the
   incoming directory rather than in a bucket */
#define RSYNC_OPTS "-qrtpRO", "--delete", "--chmod=D0750,F0640", "--exclude=" STAMP_TMPPREFIX "*", "--temp-dir=" RELAYDIR_RSYNC

#define SECOND STAMP_SECOND
#define BACKOFF_MAX 60          /* seconds between two connections at most */
#define SHOUT (60 * SECOND)     /* a failure said again once a minute */
#define SSH_CONNECT "10"        /* seconds to connect */
#define SSH_ALIVE "5"           /* seconds between keepalives; two lost and it ends */

/* a bucket directory as a push saw it */
typedef struct bstate_s bstate_t ;
struct bstate_s
{
  uint64_t ino ;
  int64_t mtime, ctime ;
  int known ;               /* 0: unknown (never pushed, or not settled) */
} ;

typedef struct host_s host_t ;
struct host_s
{
  char const *dest ;        /* [user@]host[:path], as given */
  char ssh[256] ;           /* the part before the colon */
  stralloc sock ;           /* the control master's socket */
  pid_t master, push ;      /* running children, or 0 */
  int ready ;               /* the master's socket is there: it is connected */
  int dropped ;             /* we ended the master, after a failed push */
  int want ;                /* look for changes for this host */
  int64_t masterat, masterstart ;   /* monotonic */
  unsigned int backoff ;    /* seconds before the next connection */
  int64_t pushstart, retryat ;
  int killed ;              /* the push went past the time limit */
  unsigned int fails ;      /* pushes failed in a row */
  int64_t failing, shouted ;   /* wall clock: since when, and last said */
  bstate_t sent[STAMP_BUCKETS] ;     /* what the host has */
  bstate_t inflight[STAMP_BUCKETS] ; /* what the push under way sends */
  unsigned char inpush[STAMP_BUCKETS] ;
  int64_t snapat ;          /* wall clock of the push's look */
  unsigned int nbuckets ;
} ;

static conf_t conf ;
static char const *sshconfig = 0 ;
static unsigned int interval = 5, timeout = 60 ;
static int verbose = 0 ;
static genalloc hosts = GENALLOC_ZERO ;   /* host_t */
static int dirfd_ = -1 ;
static int stop = 0 ;

#define nhosts() genalloc_len(host_t, &hosts)
#define host(i) (genalloc_s(host_t, &hosts) + (i))

static int64_t monotime (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return stamp_ns(&ts) ;
}

/* What goes into a command line that rsync splits at white space (its
   -e), or ssh reads as a destination: no white space, no quote, no
   backslash, no control character, not starting with "-". */
static int plainword (char const *s)
{
  if (!s[0] || s[0] == '-') return 0 ;
  for ( ; *s ; s++)
    if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '\'' || *s == '"' || *s == '\\') return 0 ;
  return 1 ;
}

/* [user@]host[:path]: the ssh destination is letters, digits, ".", "-",
   "_" and one "@"; the path, plainword */
static void adddest (char const *dest)
{
  host_t h ;
  size_t n = 0, at = 0 ;
  char q[80] ;
  memset(&h, 0, sizeof h) ;
  h.dest = dest ;
  for ( ; dest[n] && dest[n] != ':' ; n++)
  {
    char c = dest[n] ;
    if (c == '@') at++ ;
    else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) break ;
  }
  conf_quote(q, sizeof q, dest) ;
  if (!n || n >= sizeof h.ssh || at > 1 || dest[0] == '-' || dest[0] == '@' || (dest[n] && dest[n] != ':')
   || (dest[n] == ':' && dest[n + 1] && !plainword(dest + n + 1)))
    strerr_dief(100, "bad destination ", q, ": not [user@]host[:path] (letters, digits, dots, dashes)") ;
  memcpy(h.ssh, dest, n) ;
  h.ssh[n] = 0 ;
  if (!genalloc_append(host_t, &hosts, &h)) strerr_diefu(111, "allocate") ;
}

/* --- the children --- */

/* In a child: the signals as a new program expects them, and death with
   this service (a push or a connection must not outlive it). */
static pid_t self ;
static void childinit (int group)
{
  sigset_t none ;
  sigemptyset(&none) ;
  sigprocmask(SIG_SETMASK, &none, 0) ;
  prctl(PR_SET_PDEATHSIG, SIGKILL) ;
  if (getppid() != self) _exit(111) ;   /* it died before the prctl */
  if (group) setpgid(0, 0) ;
  {
    int fd = open("/dev/null", O_RDONLY) ;
    if (fd == -1 || dup2(fd, 0) == -1 || dup2(fd, 1) == -1) strerr_diefusys(111, "open /dev/null") ;
    if (fd > 1) fd_close(fd) ;
  }
}

/* ssh -M: the connection pushes go through, kept open, a child of ours */
static void startmaster (host_t *h, int64_t now)
{
  char const *argv[22] ;
  unsigned int n = 0 ;
  pid_t pid ;
  unlink(h->sock.s) ;   /* a socket left by a connection that was killed */
  argv[n++] = "ssh" ;
  if (sshconfig) { argv[n++] = "-F" ; argv[n++] = sshconfig ; }
  argv[n++] = "-MNn" ;
  argv[n++] = "-S" ; argv[n++] = h->sock.s ;
  argv[n++] = "-o" ; argv[n++] = "ControlPersist=no" ;
  argv[n++] = "-o" ; argv[n++] = "BatchMode=yes" ;
  /* a host that does not answer is given up on within seconds, here
     rather than in each site's ssh configuration (ssh takes the first
     value it is given: these win) */
  argv[n++] = "-o" ; argv[n++] = "ConnectTimeout=" SSH_CONNECT ;
  argv[n++] = "-o" ; argv[n++] = "ServerAliveInterval=" SSH_ALIVE ;
  argv[n++] = "-o" ; argv[n++] = "ServerAliveCountMax=2" ;
  argv[n++] = "--" ; argv[n++] = h->ssh ;
  argv[n] = 0 ;
  pid = fork() ;
  if (pid == -1) { strerr_warnwusys("fork to connect to ", h->dest) ; h->masterat = now + SECOND ; return ; }
  if (!pid) { childinit(0) ; chain_exec(argv) ; }
  h->master = pid ;
  h->masterstart = now ;
  h->ready = 0 ;
}

/* rsync of the marked buckets, through the host's connection; in the
   child, which may allocate at will: it execs or dies */
static void pushchild (host_t const *h)
{
  static char const *const opts[] = { RSYNC_OPTS } ;
  genalloc argv = GENALLOC_ZERO ;
  stralloc e = STRALLOC_ZERO, to = STRALLOC_ZERO, tmo = STRALLOC_ZERO ;
  stralloc paths = STRALLOC_ZERO ;
  size_t offs[STAMP_BUCKETS] ;
  unsigned int nb = 0 ;
  char num[UINT_FMT] ;
  char const *s ;
  num[uint_fmt(num, timeout)] = 0 ;
  if (!stralloc_cats(&e, "ssh ") || (sshconfig && (!stralloc_cats(&e, "-F ") || !stralloc_cats(&e, sshconfig) || !stralloc_cats(&e, " ")))
   || !stralloc_cats(&e, "-S ") || !stralloc_cats(&e, h->sock.s) || !stralloc_cats(&e, " -o ControlMaster=no -o BatchMode=yes") || !stralloc_0(&e)
   || !stralloc_cats(&to, h->dest) || (!strchr(h->dest, ':') && !stralloc_catb(&to, ":", 1)) || !stralloc_0(&to)
   || !stralloc_cats(&tmo, "--timeout=") || !stralloc_cats(&tmo, num) || !stralloc_0(&tmo))
    strerr_diefu(111, "allocate") ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    char bname[3] ;
    if (!h->inpush[b]) continue ;
    stamp_bucketname(bname, b) ;
    offs[nb++] = paths.len ;
    if (!stralloc_cats(&paths, conf.dir) || !stralloc_cats(&paths, "/./") || !stralloc_cats(&paths, bname) || !stralloc_catb(&paths, "/", 2))
      strerr_diefu(111, "allocate") ;
  }
  s = "rsync" ;
  if (!genalloc_append(char const *, &argv, &s)) strerr_diefu(111, "allocate") ;
  for (unsigned int i = 0 ; i < sizeof opts / sizeof *opts ; i++)
    if (!genalloc_append(char const *, &argv, &opts[i])) strerr_diefu(111, "allocate") ;
  {
    char const *more[] = { tmo.s, "-e", e.s, "--" } ;
    for (unsigned int i = 0 ; i < 4 ; i++)
      if (!genalloc_append(char const *, &argv, &more[i])) strerr_diefu(111, "allocate") ;
  }
  for (unsigned int i = 0 ; i < nb ; i++)
  {
    s = paths.s + offs[i] ;
    if (!genalloc_append(char const *, &argv, &s)) strerr_diefu(111, "allocate") ;
  }
  s = 0 ;
  if (!genalloc_append(char const *, &argv, &to.s) || !genalloc_append(char const *, &argv, &s)) strerr_diefu(111, "allocate") ;
  chain_exec(genalloc_s(char const *, &argv)) ;
}

static void startpush (host_t *h, int64_t now)
{
  pid_t pid = fork() ;
  if (pid == -1) { strerr_warnwusys("fork to push to ", h->dest) ; h->retryat = now + SECOND ; return ; }
  if (!pid) { childinit(1) ; pushchild(h) ; }
  /* in both, so that a kill of the group never misses the child */
  setpgid(pid, pid) ;
  h->push = pid ;
  h->pushstart = now ;
  h->killed = 0 ;
}

/* --- what changed --- */

/* the 256 bucket directories now; a bucket that is missing, or not as
   relaydir.h makes it (a user could have made it: what it holds may be
   anyone's), is not sent: cur[b].known is -1 */
static void look (bstate_t *cur)
{
  struct stat dir ;
  int ok = fstat(dirfd_, &dir) == 0 ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    char bname[3] ;
    struct stat st ;
    stamp_bucketname(bname, b) ;
    cur[b].known = -1 ;
    if (!ok || fstatat(dirfd_, bname, &st, AT_SYMLINK_NOFOLLOW) == -1 || !relaydir_right(&st, &dir)) continue ;
    cur[b].ino = (uint64_t)st.st_ino ;
    cur[b].mtime = stamp_ns(&st.st_mtim) ;
    cur[b].ctime = stamp_ns(&st.st_ctim) ;
    cur[b].known = 1 ;
  }
}

/* marks the buckets of cur that h does not have; returns how many */
static unsigned int mark (host_t *h, bstate_t const *cur, int64_t at)
{
  unsigned int n = 0 ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    bstate_t const *s = &h->sent[b] ;
    h->inpush[b] = cur[b].known == 1 && !(s->known == 1 && s->ino == cur[b].ino && s->mtime == cur[b].mtime && s->ctime == cur[b].ctime) ;
    if (!h->inpush[b]) continue ;
    h->inflight[b] = cur[b] ;
    n++ ;
  }
  h->snapat = at ;
  h->nbuckets = n ;
  return n ;
}

/* A push ended well: what it sent is what the host has, but for a bucket
   changed so shortly before the look that a later change could have kept
   its times (scan.h): that one goes again. */
static void sent (host_t *h)
{
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    bstate_t const *s = &h->inflight[b] ;
    if (!h->inpush[b]) continue ;
    h->sent[b] = *s ;
    h->sent[b].known = scan_settled(s->mtime, h->snapat) && scan_settled(s->ctime, h->snapat) ;
  }
}

/* Each host that wants a look and may push now: its changed buckets go. */
static void pushes (int64_t now)
{
  bstate_t cur[STAMP_BUCKETS] ;
  int64_t at = 0 ;
  for (size_t i = 0 ; i < nhosts() ; i++)
  {
    host_t *h = host(i) ;
    if (!h->want || !h->ready || h->push || now < h->retryat) continue ;
    if (!at) { at = stamp_now() ; look(cur) ; }
    h->want = 0 ;
    if (mark(h, cur, at)) startpush(h, now) ;
  }
}

/* --- children that ended --- */

static void say (host_t *h, char const *what, int64_t now)
{
  char s[UINT64_FMT] ;
  if (!h->failing) h->failing = now ;
  if (h->shouted && now < h->shouted + SHOUT) return ;
  h->shouted = now ;
  s[uint64_fmt(s, (uint64_t)((now - h->failing) / SECOND))] = 0 ;
  strerr_warnw("push to ", h->dest, " failed: ", what, "; its buckets go at the next push (failing for ", s, " s)") ;
}

static void pushended (host_t *h, int status, int64_t now)
{
  int64_t wall = stamp_now() ;
  h->push = 0 ;
  h->want = 1 ;
  /* 24: a stamp vanished while rsync sent its bucket (expired, or
     refreshed): the bucket changed, so it is marked again anyway */
  if (WIFEXITED(status) && (!WEXITSTATUS(status) || WEXITSTATUS(status) == 24))
  {
    sent(h) ;
    if (h->failing)
    {
      char s[UINT64_FMT] ;
      s[uint64_fmt(s, (uint64_t)((wall - h->failing) / SECOND))] = 0 ;
      strerr_warni("pushed to ", h->dest, " again, after ", s, " s of failed pushes") ;
    }
    else if (verbose)
    {
      char nb[UINT_FMT], ms[UINT64_FMT] ;
      nb[uint_fmt(nb, h->nbuckets)] = 0 ;
      ms[uint64_fmt(ms, (uint64_t)((now - h->pushstart) / 1000000))] = 0 ;
      strerr_warni("pushed ", nb, " buckets to ", h->dest, " in ", ms, " ms") ;
    }
    h->fails = 0 ; h->failing = 0 ; h->shouted = 0 ;
    return ;
  }
  {
    char what[64] = "rsync was killed" ;
    unsigned int wait = h->fails < 5 ? 1u << h->fails : 30 ;
    h->fails++ ;
    h->retryat = now + (int64_t)wait * SECOND ;
    if (h->killed) strcpy(what, "it took longer than the time limit (-x), and was killed") ;
    else if (WIFEXITED(status))
    {
      size_t n = strlen(strcpy(what, "rsync exit ")) ;
      what[n + uint_fmt(what + n, (unsigned int)WEXITSTATUS(status))] = 0 ;
    }
    say(h, what, wall) ;
    /* what the host holds is no longer known (a bucket half sent, a disk
       that filled, a directory restored from a backup): the next push,
       after the pause, is a full one, rsync sending only what differs */
    memset(h->sent, 0, sizeof h->sent) ;
    /* the connection may be what failed: a new one, without a word */
    if (h->master) { kill(h->master, SIGTERM) ; h->dropped = 1 ; }
  }
}

static void masterended (host_t *h, int status, int64_t now)
{
  char code[UINT_FMT], s[UINT_FMT] ;
  int dropped = h->dropped ;
  h->master = 0 ;
  h->ready = 0 ;
  h->dropped = 0 ;
  unlink(h->sock.s) ;
  if (stop) return ;
  /* the host may have been away for long: everything goes again */
  memset(h->sent, 0, sizeof h->sent) ;
  /* a connection that lasted starts the back-off again */
  if (now - h->masterstart > 60 * SECOND) h->backoff = 0 ;
  h->backoff = h->backoff ? (h->backoff * 2 < BACKOFF_MAX ? h->backoff * 2 : BACKOFF_MAX) : 1 ;
  h->masterat = now + (int64_t)h->backoff * SECOND ;
  code[uint_fmt(code, WIFEXITED(status) ? (unsigned int)WEXITSTATUS(status) : 128 + (unsigned int)WTERMSIG(status))] = 0 ;
  s[uint_fmt(s, h->backoff)] = 0 ;
  if (!dropped) strerr_warnw("connection to ", h->dest, " ended (ssh exit ", code, "): connecting again in ", s, " s") ;
}

static void reap (void)
{
  int64_t now = monotime() ;
  for (;;)
  {
    int status ;
    pid_t pid = waitpid(-1, &status, WNOHANG) ;
    if (pid <= 0) return ;
    for (size_t i = 0 ; i < nhosts() ; i++)
    {
      host_t *h = host(i) ;
      if (pid == h->push) pushended(h, status, now) ;
      else if (pid == h->master) masterended(h, status, now) ;
    }
  }
}

/* --- the service --- */

/* connections due, connections that came up, pushes past their time;
   returns the poll timeout in ms, until the next of these */
static int tend (int64_t now, int64_t nextlook)
{
  int64_t next = nextlook ;
  for (size_t i = 0 ; i < nhosts() ; i++)
  {
    host_t *h = host(i) ;
    struct stat st ;
    if (!h->master && now >= h->masterat) startmaster(h, now) ;
    if (h->master && !h->ready && !lstat(h->sock.s, &st) && S_ISSOCK(st.st_mode))
    {
      h->ready = h->want = 1 ;
      if (verbose) strerr_warni("connected to ", h->dest) ;
    }
    if (h->push && !h->killed && now >= h->pushstart + (int64_t)timeout * SECOND)
    {
      kill(-h->push, SIGKILL) ;
      h->killed = 1 ;
    }
    if (!h->master && h->masterat < next) next = h->masterat ;
    if (h->master && !h->ready && now + SECOND / 10 < next) next = now + SECOND / 10 ;
    if (h->push && !h->killed && h->pushstart + (int64_t)timeout * SECOND < next) next = h->pushstart + (int64_t)timeout * SECOND ;
    if (!h->push && h->want && h->ready && h->retryat > now && h->retryat < next) next = h->retryat ;
  }
  return next > now ? (int)((next - now) / 1000000) + 1 : 0 ;
}

static void wantall (int forget)
{
  for (size_t i = 0 ; i < nhosts() ; i++)
  {
    host(i)->want = 1 ;
    if (forget) memset(host(i)->sent, 0, sizeof host(i)->sent) ;
  }
}

/* SIGTERM: the pushes and connections stopped, and waited for (a push
   that does not stop within 5 s is killed) */
static void shutdown_ (void)
{
  for (unsigned int tries = 0 ; tries < 100 ; tries++)
  {
    int left = 0 ;
    for (size_t i = 0 ; i < nhosts() ; i++)
    {
      host_t *h = host(i) ;
      if (h->push) { kill(-h->push, tries < 50 ? SIGTERM : SIGKILL) ; left = 1 ; }
      if (h->master) { kill(h->master, tries < 50 ? SIGTERM : SIGKILL) ; left = 1 ; }
    }
    if (!left) break ;
    {
      struct timespec ts = { 0, 100000000 } ;
      nanosleep(&ts, 0) ;
    }
    reap() ;
  }
  for (size_t i = 0 ; i < nhosts() ; i++) unlink(host(i)->sock.s) ;
}

static void signals (void)
{
  int sig ;
  while ((sig = selfpipe_read()) > 0)
  {
    if (sig == SIGCHLD) reap() ;
    else if (sig == SIGHUP) wantall(1) ;
    else stop = 1 ;
  }
}

/* the fifo's name: relay-publish.ID, ID a hash of the destinations, so
   that two services for other hosts each get every poke, and one
   restarted takes back its own */
static void fifoname (char *name)
{
  uint64_t x = 14695981039346656037ull ;
  for (size_t i = 0 ; i < nhosts() ; i++)
    for (char const *s = host(i)->dest ; ; s++)
    {
      x ^= (unsigned char)*s ; x *= 1099511628211ull ;
      if (!*s) break ;
    }
  memcpy(name, "relay-publish.", 14) ;
  name[14 + uint640_xfmt(name + 14, x, 16)] = 0 ;
}

/* CACHE/publish, ours alone: the connections' sockets */
static void sockets (void)
{
  stralloc d = STRALLOC_ZERO ;
  struct stat st ;
  if (!stralloc_cats(&d, conf.cache) || !stralloc_cats(&d, "/publish") || !stralloc_0(&d)) strerr_diefu(111, "allocate") ;
  if (!plainword(d.s)) strerr_dief(100, "cache directory ", conf.cache, " has a space or a quote, which ssh's -S through rsync's -e cannot take") ;
  if (mkdir(conf.cache, 0700) == -1 && errno != EEXIST) strerr_diefusys(111, "create ", conf.cache) ;
  if (mkdir(d.s, 0700) == -1 && errno != EEXIST) strerr_diefusys(111, "create ", d.s) ;
  if (lstat(d.s, &st) == -1) strerr_diefusys(111, "stat ", d.s) ;
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || st.st_mode & 077) strerr_dief(100, d.s, " must be a directory of this user's that nobody else may enter") ;
  for (size_t i = 0 ; i < nhosts() ; i++)
  {
    char num[UINT_FMT] ;
    host_t *h = host(i) ;
    num[uint_fmt(num, (unsigned int)i)] = 0 ;
    if (!stralloc_copyb(&h->sock, d.s, d.len - 1) || !stralloc_cats(&h->sock, "/") || !stralloc_cats(&h->sock, num) || !stralloc_0(&h->sock))
      strerr_diefu(111, "allocate") ;
    /* a unix socket's path, and ssh's temp name beside it, must fit */
    if (h->sock.len > 80) strerr_dief(100, "cache directory ", conf.cache, " is too long a path for ssh's control sockets") ;
  }
  stralloc_free(&d) ;
}

static int service (void)
{
  char name[14 + 16 + 1] ;
  sigset_t set ;
  int sigfd, fifo ;
  int64_t nextlook = 0 ;
  sigfd = selfpipe_init() ;
  sigemptyset(&set) ;
  sigaddset(&set, SIGTERM) ; sigaddset(&set, SIGINT) ; sigaddset(&set, SIGHUP) ; sigaddset(&set, SIGCHLD) ;
  if (sigfd == -1 || !selfpipe_trapset(&set)) strerr_diefusys(111, "catch signals") ;
  sockets() ;
  dirfd_ = open(conf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (dirfd_ == -1) strerr_diefusys(111, "open relay directory ", conf.dir) ;
  fifoname(name) ;
  fifo = trigger_listen(dirfd_, name) ;
  if (fifo == -1) strerr_diefusys(111, "listen on ", conf.dir, "/" TRIGGER_DIR "/", name) ;
  if (verbose) strerr_warni("listening on ", conf.dir, "/" TRIGGER_DIR "/", name) ;
  while (!stop)
  {
    struct pollfd p[2] = { { .fd = fifo, .events = POLLIN, .revents = 0 }, { .fd = sigfd, .events = POLLIN, .revents = 0 } } ;
    int64_t now = monotime() ;
    int t ;
    if (now >= nextlook) { wantall(0) ; nextlook = now + (int64_t)interval * SECOND ; }
    tend(now, nextlook) ;
    pushes(now) ;
    t = tend(now, nextlook) ;
    if (poll(p, 2, t) == -1 && errno != EINTR) strerr_diefusys(111, "poll") ;
    if (p[1].revents & POLLIN) signals() ;
    if (p[0].revents & POLLIN) { trigger_drain(fifo) ; wantall(0) ; }
  }
  shutdown_() ;
  trigger_unlisten(dirfd_, name, fifo) ;
  if (verbose) strerr_warni("stopping") ;
  return 0 ;
}

/* POPRELAY_PUBLISH: the destinations, separated by white space */
static void destsfromenv (void)
{
  char const *v = getenv("POPRELAY_PUBLISH") ;
  char *s ;
  if (!v) return ;
  s = strdup(v) ;
  if (!s) strerr_diefu(111, "allocate") ;
  for (char *w = strtok(s, " \t\n") ; w ; w = strtok(0, " \t\n")) adddest(w) ;
}

static void number (char const *arg, unsigned int min, unsigned int max, unsigned int *u, char const *what)
{
  char q[40] ;
  if (conf_uint(arg, min, max, u)) return ;
  conf_quote(q, sizeof q, arg) ;
  strerr_dief(100, "bad ", what, " ", q, ": not a number of seconds from 1 to 3600") ;
}

int main (int argc, char const *const *argv)
{
  char const *bad, *why ;
  subgetopt l = SUBGETOPT_ZERO ;
  conf_defaults(&conf) ;
  if (!conf_env(&conf, vars, &bad, &why)) strerr_dief(100, "bad ", bad, ": ", why) ;
  sshconfig = getenv("POPRELAY_SSHCONFIG") ;
  for (;;)
  {
    int opt = subgetopt_r(argc, argv, "vd:c:F:i:x:", &l) ;
    if (opt == -1) break ;
    switch (opt)
    {
      case 'v' : verbose = 1 ; break ;
      case 'F' : sshconfig = l.arg ; break ;
      case 'i' : number(l.arg, 1, 3600, &interval, "-i") ; break ;
      case 'x' : number(l.arg, 1, 3600, &timeout, "-x") ; break ;
      default : conf_option(&conf, opt, l.arg, USAGE) ;
    }
  }
  if (sshconfig && (sshconfig[0] != '/' || !plainword(sshconfig)))
  {
    char q[80] ;
    conf_quote(q, sizeof q, sshconfig) ;
    strerr_dief(100, "bad ssh configuration ", q, ": not an absolute path without spaces or quotes") ;
  }
  if (l.ind < argc) for (int i = l.ind ; i < argc ; i++) adddest(argv[i]) ;
  else destsfromenv() ;
  if (!nhosts()) strerr_dieusage(100, USAGE) ;
  self = getpid() ;
  return service() ;
}
