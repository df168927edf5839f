/* watch.c: a relay directory in memory, kept up to date by inotify; see
   watch.h. inotify and fstatfs are Linux's. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <skalibs/djbunix.h>
#include <skalibs/stralloc.h>
#include <skalibs/types.h>
#include "relaydir.h"
#include "watch.h"

char const *watch_why = 0 ;

/* the generations of every watch of the process: never the same twice,
   so that a watch started anew never gives an old one's (watch_gen) */
static uint64_t lastgen = 0 ;

/* what a bucket's watch reports: stamps renamed in or out, made,
   removed, their time or mode changed in place */
#define BUCKETMASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE \
                    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
/* and the relay directory's: buckets made, removed, replaced, their
   owner or mode changed (which decides whether they are trusted); it is
   named by its /proc/self/fd link, which must be followed */
#define DIRMASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB \
                 | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* File systems where a change made by another client raises no event
   here: the cache is all relay-open can go by (statfs(2)'s f_type). */
static int remote (long type)
{
  static long const types[] = {
    0x6969,       /* NFS */
    0x517b,       /* SMB */
    0xff534d42,   /* CIFS */
    0xfe534d42,   /* SMB2 */
    0x65735546,   /* FUSE (sshfs and the like) */
    0x00c36400,   /* Ceph */
    0x5346414f,   /* AFS */
    0x6b414653,   /* kAFS */
    0x47504653,   /* GPFS */
    0x0bd00bd0,   /* Lustre */
    0x01021997,   /* 9p */
  } ;
  for (unsigned int i = 0 ; i < sizeof types / sizeof *types ; i++)
    if (type == types[i]) return 1 ;
  return 0 ;
}

/* the watch of bucket b, through /proc (inotify takes paths, not a
   directory and a name) */
static int watchbucket (watch_t *w, unsigned int b)
{
  char path[64] = "/proc/self/fd/" ;
  size_t n = 14 ;
  n += uint_fmt(path + n, (unsigned int)w->scanner.dirfd) ;
  path[n++] = '/' ;
  stamp_bucketname(path + n, b) ;
  w->wd[b] = inotify_add_watch(w->ifd, path, BUCKETMASK) ;
  return w->wd[b] >= 0 || errno == ENOENT || errno == ENOTDIR ;
}

int watch_start (watch_t *w, scan_t const *how, int dirfd)
{
  struct statfs fs ;
  char path[64] = "/proc/self/fd/" ;
  memset(w, 0, sizeof *w) ;
  w->ifd = -1 ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++) w->wd[b] = -1 ;
  if (fstatfs(dirfd, &fs) == -1) return 0 ;
  if (remote((long)fs.f_type))
  {
    watch_why = "it is on a network file system, where other hosts' writes raise no event here" ;
    errno = 0 ;
    return 0 ;
  }
  if (!scan_start(&w->scanner, how, dirfd)) return 0 ;
  w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC) ;
  if (w->ifd == -1) goto err ;
  path[14 + uint_fmt(path + 14, (unsigned int)dirfd)] = 0 ;
  w->dirwd = inotify_add_watch(w->ifd, path, DIRMASK) ;
  if (w->dirwd == -1) goto err ;
  /* each watch before its bucket is read: nothing is missed between */
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    w->gen[b] = ++lastgen ;
    if (!watchbucket(w, b) || !scan_bucket(&w->scanner, b, &w->ents[b])) goto err ;
  }
  return 1 ;
 err:
  watch_free(w) ;
  return 0 ;
}

void watch_all (watch_t *w)
{
  memset(w->again, 1, sizeof w->again) ;
}

static int bucketof (watch_t const *w, int wd)
{
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++) if (w->wd[b] == wd) return (int)b ;
  return -1 ;
}

/* one event: what it marks */
static int mark (watch_t *w, struct inotify_event const *ev)
{
  unsigned int b ;
  int k ;
  ip_t ip ;
  w->events++ ;
  if (ev->mask & IN_Q_OVERFLOW) { watch_all(w) ; return 1 ; }
  if (ev->wd == w->dirwd)
  {
    /* the relay directory's own mode or owner decides every bucket's
       trust; a bucket made, gone or changed is read again whole */
    if (!ev->len) { watch_all(w) ; return 1 ; }
    if (stamp_scanbucketname(ev->name, &b)) w->again[b] = 1 ;
    return 1 ;
  }
  k = bucketof(w, ev->wd) ;
  if (k < 0) return 1 ;   /* a watch already replaced */
  if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) || !ev->len)
  {
    if (ev->mask & IN_IGNORED) w->wd[k] = -1 ;
    w->again[k] = 1 ;
    return 1 ;
  }
  /* a temp file on its way in says nothing; the rename that ends it does */
  if (!strncmp(ev->name, STAMP_TMPPREFIX, STAMP_TMPPREFIXLEN)) return 1 ;
  /* junk is seen, and said, when the bucket is read again */
  if (!stamp_scanname(&ip, ev->name, strlen(ev->name), (unsigned int)k)) { w->again[k] = 1 ; return 1 ; }
  return genalloc_append(ip_t, &w->names[k], &ip) ;
}

int watch_events (watch_t *w)
{
  char buf[65536] __attribute__ ((aligned(__alignof__(struct inotify_event)))) ;
  for (;;)
  {
    ssize_t r = read(w->ifd, buf, sizeof buf) ;
    if (r == -1) return errno == EAGAIN || errno == EINTR ;
    for (char *p = buf ; p < buf + r ; )
    {
      struct inotify_event const *ev = (struct inotify_event const *)p ;
      /* out of memory for a name: every bucket is read again, so that
         the rest of this read, gone from the kernel, is not missed */
      if (!mark(w, ev)) { watch_all(w) ; return 0 ; }
      p += sizeof *ev + ev->len ;
    }
  }
}

/* the place of ip in the bucket's sorted stamps; 1 if it is there */
static int find (stralloc const *sa, ip_t const *ip, size_t *at)
{
  scanent_t const *e = (scanent_t const *)sa->s ;
  size_t lo = 0, hi = sa->len / sizeof *e ;
  while (lo < hi)
  {
    size_t mid = (lo + hi) / 2 ;
    int c = memcmp(e[mid].ip.b, ip->b, 16) ;
    if (!c) { *at = mid ; return 1 ; }
    if (c < 0) lo = mid + 1 ; else hi = mid ;
  }
  *at = lo ;
  return 0 ;
}

/* one marked name of bucket b looked at again: its stamp put in, changed
   or taken out */
static int lookagain (watch_t *w, unsigned int b, int bfd, ip_t const *ip)
{
  char name[IP_FMT] ;
  char const *why ;
  scanent_t e ;
  size_t at ;
  stralloc *sa = &w->ents[b] ;
  int there = find(sa, ip, &at), kind ;
  ip_fmt(name, ip) ;
  kind = scan_name(bfd, b, name, w->scanner.how.who, &e, &why) ;
  if (kind < 0) return 0 ;
  w->looked++ ;
  if (kind == SCAN_JUNK && w->scanner.how.aside) (*w->scanner.how.aside)(b, bfd, name, kind, 0, why, w->scanner.how.ctx) ;
  if (kind == SCAN_STAMP)
  {
    if (there)
    {
      scanent_t *old = (scanent_t *)(sa->s + at * sizeof e) ;
      if (stamp_state(old->mtime, w->now, w->ttl, w->skew) != stamp_state(e.mtime, w->now, w->ttl, w->skew) || old->who != e.who) w->changed = 1 ;
      *old = e ;
      return 1 ;
    }
    w->changed = 1 ;
    w->gen[b] = ++lastgen ;
    return stralloc_insertb(sa, at * sizeof e, (char const *)&e, sizeof e) ;
  }
  if (there)
  {
    memmove(sa->s + at * sizeof e, sa->s + (at + 1) * sizeof e, sa->len - (at + 1) * sizeof e) ;
    sa->len -= sizeof e ;
    w->changed = 1 ;
    w->gen[b] = ++lastgen ;
  }
  return 1 ;
}

/* bucket b read again whole, its watch made anew first */
static int readagain (watch_t *w, unsigned int b)
{
  int old = w->wd[b] ;
  if (!watchbucket(w, b)) return 0 ;
  if (old >= 0 && w->wd[b] != old) inotify_rm_watch(w->ifd, old) ;
  w->gen[b] = ++lastgen ;   /* before: a read that fails leaves what it read */
  if (!scan_bucket(&w->scanner, b, &w->ents[b])) return 0 ;
  w->reread++ ;
  w->changed = 1 ;
  w->again[b] = 0 ;
  genalloc_setlen(ip_t, &w->names[b], 0) ;
  return 1 ;
}

int watch_update (watch_t *w, int64_t now, unsigned int ttl, unsigned int skew)
{
  w->now = w->scanner.how.now = now ;
  w->ttl = ttl ;
  w->skew = skew ;
  w->scanner.how.full = 1 ;   /* what was marked changed: the cache cannot say */
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    size_t n = genalloc_len(ip_t, &w->names[b]) ;
    char bname[3] ;
    int bfd ;
    if (w->again[b]) { if (!readagain(w, b)) return 0 ; continue ; }
    if (!n) continue ;
    stamp_bucketname(bname, b) ;
    bfd = openat(w->scanner.dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
    if (bfd == -1) { w->again[b] = 1 ; if (!readagain(w, b)) return 0 ; continue ; }
    for (size_t i = 0 ; i < n ; i++)
      if (!lookagain(w, b, bfd, genalloc_s(ip_t, &w->names[b]) + i)) { fd_close(bfd) ; return 0 ; }
    fd_close(bfd) ;
    genalloc_setlen(ip_t, &w->names[b], 0) ;
  }
  return 1 ;
}

void watch_free (watch_t *w)
{
  if (w->ifd >= 0) fd_close(w->ifd) ;
  w->ifd = -1 ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    stralloc_free(&w->ents[b]) ;
    genalloc_free(ip_t, &w->names[b]) ;
  }
  scan_end(&w->scanner, 0) ;
}
