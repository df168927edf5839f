/* scan.c: the relay directory, bucket by bucket, with a cache; see scan.h. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <skalibs/allreadwrite.h>
#include <skalibs/djbunix.h>
#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "relaydir.h"
#include "scan.h"
#include "stamp.h"

static char const magic[8] = "poprlyS2" ;

struct cachehdr
{
  char magic[8] ;
  uint32_t buckets ;
  uint32_t entsize ;
} ;

/* what the cache records of a bucket */
struct section
{
  uint64_t dev ;
  uint64_t ino ;
  int64_t mtime ;
  int64_t ctime ;
  int64_t oldesttemp ;
  uint32_t n ;
  uint32_t flags ;
  uint32_t temps ;
  uint32_t junk ;
  uint64_t sum ;
} ;
#define SEC_VALID 1
#define SEC_WHO 2   /* the entries have their who */

/* How long after its last change a bucket is not recorded (see scan.h):
   a second, unless the time itself shows a file system that keeps less
   than a millisecond (its nanoseconds are not a round millisecond), where
   a change is seen within a tick of the kernel's coarse clock (10 ms at
   worst, HZ=100): then 50 ms, which still covers five ticks. */
#define RACY STAMP_SECOND
#define RACY_FINE (STAMP_SECOND / 20)

/* how many times a bucket that changes while it is read is read again */
#define REREADS 3

/* A cache file killed while written leaves BB.tmp.PID behind; one that
   old is no longer being written. */
#define CACHE_TMPAGE (600 * STAMP_SECOND)

static int settled (int64_t t, int64_t now)
{
  return t < now - (t % 1000000 ? RACY_FINE : RACY) ;
}

int scan_settled (int64_t t, int64_t now)
{
  return settled(t, now) ;
}

static uint64_t checksum (struct section const *sec, scanent_t const *e, size_t n)
{
  uint64_t h = 0x6a09e667f3bcc908ull ;
  struct section s = *sec ;
  s.sum = 0 ;
  unsigned char const *parts[2] = { (unsigned char const *)&s, (unsigned char const *)e } ;
  size_t lens[2] = { sizeof s, n * sizeof *e } ;
  for (unsigned int p = 0 ; p < 2 ; p++)
    for (size_t i = 0 ; i + 8 <= lens[p] ; i += 8)
    {
      uint64_t w ;
      memcpy(&w, parts[p] + i, 8) ;
      h = (h ^ w) * 0x9e3779b97f4a7c15ull ;
      h ^= h >> 29 ;
    }
  return h ;
}

static int entcmp (void const *a, void const *b)
{
  return memcmp(((scanent_t const *)a)->ip.b, ((scanent_t const *)b)->ip.b, 16) ;
}

/* --- the cache: one file per bucket, SCANDIR/BB: a header, the section,
   the entries; only the buckets read again are written, so that a rebuild
   after one login writes one small file --- */

static int cache_path (stralloc *sa, char const *dir, char const *bname, char const *suffix)
{
  sa->len = 0 ;
  return stralloc_cats(sa, dir) && stralloc_cats(sa, "/") && stralloc_cats(sa, bname)
      && (!suffix || stralloc_cats(sa, suffix)) && stralloc_0(sa) ;
}

/* 1 and the section and entries in sa if the bucket's cache file is whole */
static int cache_read (scanner_t *s, char const *bname, struct section *sec, stralloc *sa)
{
  struct cachehdr h ;
  struct stat st ;
  struct iovec v[3] ;
  size_t want ;
  ssize_t r ;
  int fd ;
  if (!cache_path(&s->path, s->how.cachedir, bname, 0)) return 0 ;
  fd = open(s->path.s, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return 0 ;
  /* the whole file in one read: header, section, entries */
  if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size < (off_t)(sizeof h + sizeof *sec)
   || st.st_size > (off_t)(sizeof h + sizeof *sec + ((size_t)1 << 26) * sizeof(scanent_t)))
    goto no ;
  want = (size_t)st.st_size - sizeof h - sizeof *sec ;
  if (!stralloc_ready(sa, want)) goto no ;
  v[0].iov_base = &h ; v[0].iov_len = sizeof h ;
  v[1].iov_base = sec ; v[1].iov_len = sizeof *sec ;
  v[2].iov_base = sa->s ; v[2].iov_len = want ;
  r = readv(fd, v, 3) ;
  /* a short read is a cache miss, like any other mismatch */
  if (r != (ssize_t)st.st_size
   || memcmp(h.magic, magic, 8) || h.buckets != STAMP_BUCKETS || h.entsize != sizeof(scanent_t)
   || (size_t)sec->n * sizeof(scanent_t) != want || checksum(sec, (scanent_t const *)sa->s, sec->n) != sec->sum)
    goto no ;
  sa->len = want ;
  fd_close(fd) ;
  return 1 ;
 no:
  fd_close(fd) ;
  return 0 ;
}

/* A cache that cannot be written costs speed, not correctness: one
   warning per scan, then none. */
static void cache_write (scanner_t *s, char const *bname, struct section *sec, scanent_t const *e)
{
  struct cachehdr h ;
  char pid[PID_FMT] ;
  int fd ;
  if (!(sec->flags & SEC_VALID))
  {
    if (cache_path(&s->path, s->how.cachedir, bname, 0)) unlink(s->path.s) ;
    return ;
  }
  memcpy(h.magic, magic, 8) ;
  h.buckets = STAMP_BUCKETS ;
  h.entsize = sizeof(scanent_t) ;
  sec->sum = checksum(sec, e, sec->n) ;
  pid[pid_fmt(pid, getpid())] = 0 ;
  if (!cache_path(&s->path, s->how.cachedir, bname, 0) || !stralloc_copyb(&s->tmp, s->path.s, s->path.len - 1)
   || !stralloc_cats(&s->tmp, ".tmp.") || !stralloc_cats(&s->tmp, pid) || !stralloc_0(&s->tmp)) return ;
  fd = open(s->tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) ;
  if (fd == -1) goto err ;
  {
    struct iovec v[3] = {
      { .iov_base = &h, .iov_len = sizeof h },
      { .iov_base = sec, .iov_len = sizeof *sec },
      { .iov_base = (void *)e, .iov_len = (size_t)sec->n * sizeof *e } } ;
    size_t total = v[0].iov_len + v[1].iov_len + v[2].iov_len ;
    if (allwritev(fd, v, 3) != total) { fd_close(fd) ; unlink(s->tmp.s) ; goto err ; }
  }
  if (close(fd) == -1 || rename(s->tmp.s, s->path.s) == -1) { unlink(s->tmp.s) ; goto err ; }
  return ;
 err:
  if (!s->warned) strerr_warnwusys("write the scan cache ", s->tmp.s) ;
  s->warned = 1 ;
}

static void cache_sweep (char const *dir, int64_t now)
{
  DIR *d = opendir(dir) ;
  struct dirent *de ;
  if (!d) return ;
  while ((de = readdir(d)))
  {
    struct stat st ;
    if (!strstr(de->d_name, ".tmp.")) continue ;
    if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) && stamp_ns(&st.st_mtim) < now - CACHE_TMPAGE)
      unlinkat(dirfd(d), de->d_name, 0) ;
  }
  closedir(d) ;
}

/* makes dir, and its parent (CACHE of CACHE/scan) if that is missing,
   mode 0700; 1 if it is there, or 0 with errno */
static int mkcache (char const *dir)
{
  if (!mkdir(dir, 0700) || errno == EEXIST) return 1 ;
  if (errno == ENOENT)
  {
    stralloc parent = STRALLOC_ZERO ;
    char const *slash = strrchr(dir, '/') ;
    int ok = slash && slash != dir && stralloc_catb(&parent, dir, (size_t)(slash - dir)) && stralloc_0(&parent)
          && (!mkdir(parent.s, 0700) || errno == EEXIST) ;
    stralloc_free(&parent) ;
    if (ok) return !mkdir(dir, 0700) || errno == EEXIST ;
  }
  return 0 ;
}

/* What the cache says is granted: nobody else may write it. */
static void cache_open (scanner_t *s)
{
  struct stat st ;
  if (!mkcache(s->how.cachedir))
  {
    strerr_warnwusys("create the scan cache ", s->how.cachedir) ;
    s->how.cachedir = 0 ;
    s->warned = 1 ;
    return ;
  }
  if (lstat(s->how.cachedir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || st.st_mode & 022)
  {
    strerr_warnw("not using the scan cache ", s->how.cachedir, ": it must be a directory of this user that no one else can write") ;
    s->how.cachedir = 0 ;
    s->warned = 1 ;
    return ;
  }
  cache_sweep(s->how.cachedir, s->how.now) ;
}

/* --- one name, one bucket --- */

/* Whether we may read the file: what faccessat(AT_EACCESS) says, asked
   only when the mode bits do not already say yes to us as root or owner
   (the usual case, and one system call less per stamp). */
static int readable (int bfd, char const *name, struct stat const *st)
{
  static uid_t euid = (uid_t)-1 ;   /* the programs never change it: asked once */
  if (euid == (uid_t)-1) euid = geteuid() ;
  if (!euid || (st->st_uid == euid && st->st_mode & S_IRUSR)) return 1 ;
  return !faccessat(bfd, name, R_OK, AT_EACCESS) ;
}

/* stamp_who of the stamp name in the bucket bfd, 0 if it cannot be read;
   never blocks (a fifo put in a stamp's place) */
static uint64_t whoof (int bfd, char const *name)
{
  char buf[STAMP_SIZEMAX + 1] ;
  stampinfo_t si ;
  ssize_t r = -1 ;
  int fd = openat(bfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) ;
  if (fd >= 0) { r = read(fd, buf, sizeof buf) ; fd_close(fd) ; }
  return r >= 0 && stamp_parse(&si, buf, (size_t)r) ? stamp_who(&si) : 0 ;
}

int scan_name (int bfd, unsigned int b, char const *name, int who, scanent_t *e, char const **why)
{
  struct stat st ;
  size_t len = strlen(name) ;
  int temp = len > STAMP_TMPPREFIXLEN && !memcmp(name, STAMP_TMPPREFIX, STAMP_TMPPREFIXLEN) ;
  if (!temp && !stamp_scanname(&e->ip, name, len, b)) { *why = "not the name of a stamp in this bucket" ; return SCAN_JUNK ; }
  if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) return errno == ENOENT ? SCAN_GONE : -1 ;
  e->mtime = stamp_ns(&st.st_mtim) ;
  if (temp) return SCAN_TEMP ;
  if (S_ISLNK(st.st_mode)) *why = "a symbolic link" ;
  else if (S_ISDIR(st.st_mode)) *why = "a directory" ;
  else if (!S_ISREG(st.st_mode)) *why = "not a regular file" ;
  else if (!readable(bfd, name, &st)) *why = "unreadable" ;
  else
  {
    e->who = who ? whoof(bfd, name) : 0 ;
    return SCAN_STAMP ;
  }
  return SCAN_JUNK ;
}

/* What is not a stamp, noted during a pass and reported after the last
   one, so that a pass repeated because the bucket changed reports it
   once. */
typedef struct aside_s aside_t ;
struct aside_s
{
  int kind ;
  int64_t mtime ;
  char const *why ;
  size_t name ;     /* offset in the names */
} ;

/* one pass over the open bucket: ents, the asides, and the section's
   counts. Returns 1, or 0 with errno. */
static int onepass (scanner_t *s, int bfd, unsigned int b, struct section *sec, stralloc *ents, genalloc *asides, stralloc *names)
{
  int fd = dup(bfd) ;
  DIR *d = fd >= 0 ? fdopendir(fd) : 0 ;
  if (!d) { if (fd >= 0) fd_close(fd) ; return 0 ; }
  /* the dup shares bfd's offset, which a previous pass left at the end */
  rewinddir(d) ;
  ents->len = names->len = 0 ;
  genalloc_setlen(aside_t, asides, 0) ;
  sec->temps = sec->junk = 0 ;
  sec->oldesttemp = 0 ;
  for (;;)
  {
    struct dirent *de ;
    scanent_t e ;
    char const *why = 0 ;
    int kind ;
    errno = 0 ;
    de = readdir(d) ;
    if (!de) break ;
    if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue ;
    kind = scan_name(bfd, b, de->d_name, s->how.who, &e, &why) ;
    if (kind < 0) goto err ;
    if (kind == SCAN_GONE) continue ;
    if (kind == SCAN_STAMP) { if (!stralloc_catb(ents, (char *)&e, sizeof e)) goto err ; continue ; }
    if (kind == SCAN_TEMP)
    {
      if (!sec->temps || e.mtime < sec->oldesttemp) sec->oldesttemp = e.mtime ;
      sec->temps++ ;
    }
    else sec->junk++ ;
    if (s->how.aside)
    {
      aside_t a = { .kind = kind, .mtime = e.mtime, .why = why, .name = names->len } ;
      if (!stralloc_catb(names, de->d_name, strlen(de->d_name) + 1) || !genalloc_append(aside_t, asides, &a)) goto err ;
    }
  }
  if (errno) goto err ;
  closedir(d) ;
  return 1 ;
 err:
  {
    int e = errno ;
    closedir(d) ;
    errno = e ;
  }
  return 0 ;
}

/* Reads bucket b into ents (sorted); sec records its state. Passes are
   repeated while the bucket changes under them. Returns 1, or 0 with
   errno. */
static int reread (scanner_t *s, unsigned int b, int bfd, struct section *sec, stralloc *ents)
{
  struct stat before, after ;
  genalloc asides = GENALLOC_ZERO ;
  stralloc names = STRALLOC_ZERO ;
  int ok = 0 ;
  for (unsigned int tries = 0 ; ; tries++)
  {
    if (fstat(bfd, &before) == -1 || !onepass(s, bfd, b, sec, ents, &asides, &names) || fstat(bfd, &after) == -1) goto end ;
    if ((stamp_ns(&after.st_mtim) == stamp_ns(&before.st_mtim) && stamp_ns(&after.st_ctim) == stamp_ns(&before.st_ctim)) || tries + 1 >= REREADS) break ;
  }
  for (size_t i = 0 ; i < genalloc_len(aside_t, &asides) ; i++)
  {
    aside_t const *a = genalloc_s(aside_t, &asides) + i ;
    (*s->how.aside)(b, bfd, names.s + a->name, a->kind, a->mtime, a->why, s->how.ctx) ;
  }
  /* an empty bucket has no buffer yet, and qsort wants one even for none */
  if (ents->len) qsort(ents->s, ents->len / sizeof(scanent_t), sizeof(scanent_t), &entcmp) ;
  sec->dev = before.st_dev ;
  sec->ino = before.st_ino ;
  sec->mtime = stamp_ns(&before.st_mtim) ;
  sec->ctime = stamp_ns(&before.st_ctim) ;
  sec->n = (uint32_t)(ents->len / sizeof(scanent_t)) ;
  sec->flags = 0 ;
  if (stamp_ns(&after.st_mtim) == sec->mtime && stamp_ns(&after.st_ctim) == sec->ctime
   && settled(sec->mtime, s->how.now) && settled(sec->ctime, s->how.now))
    sec->flags = SEC_VALID | (s->how.who ? SEC_WHO : 0) ;
  ok = 1 ;
 end:
  genalloc_free(aside_t, &asides) ;
  stralloc_free(&names) ;
  return ok ;
}

/* the cache's record of bucket b, if it still says what the bucket holds */
static int fromcache (scanner_t *s, char const *bname, struct stat const *st, struct section *sec)
{
  return s->how.cachedir && !s->how.full && cache_read(s, bname, sec, &s->cached)
      && (sec->flags & SEC_VALID) && sec->dev == (uint64_t)st->st_dev && sec->ino == (uint64_t)st->st_ino
      && sec->mtime == stamp_ns(&st->st_mtim) && sec->ctime == stamp_ns(&st->st_ctim)
      && !(s->how.tempsbefore && sec->temps && sec->oldesttemp < s->how.tempsbefore)
      && !(s->how.rereadjunk && sec->junk)
      && !(s->how.who && !(sec->flags & SEC_WHO)) ;
}

int scan_start (scanner_t *s, scan_t const *how, int dirfd)
{
  memset(s, 0, sizeof *s) ;
  s->how = *how ;
  s->dirfd = dirfd ;
  if (fstat(dirfd, &s->dir) == -1) return 0 ;
  if (s->how.cachedir) cache_open(s) ;
  return 1 ;
}

/* 1 if bucket b is a bucket we may read stamps from; otherwise it is
   reported and holds nothing */
static int trusted (scanner_t *s, unsigned int b, char const *bname, struct stat *st)
{
  char const *why ;
  if (fstatat(s->dirfd, bname, st, AT_SYMLINK_NOFOLLOW) == -1)
  {
    if (errno != ENOENT) return -1 ;
    if (s->how.aside) (*s->how.aside)(b, s->dirfd, 0, SCAN_MISSING, 0, 0, s->how.ctx) ;
    return 0 ;
  }
  if (!S_ISDIR(st->st_mode)) why = S_ISLNK(st->st_mode) ? "a symbolic link" : "not a directory" ;
  /* a user could have made it, or changed it: what it holds may be
     anyone's (see relaydir.h) */
  else if (!relaydir_right(st, &s->dir)) why = "a bucket whose owner or mode is not the relay directory's: its stamps grant nothing" ;
  else return 1 ;
  s->st.junk++ ;
  if (s->how.aside) (*s->how.aside)(b, s->dirfd, 0, SCAN_JUNK, 0, why, s->how.ctx) ;
  return 0 ;
}

int scan_bucket (scanner_t *s, unsigned int b, stralloc *ents)
{
  char bname[3] ;
  struct stat st ;
  struct section sec ;
  int t ;
  ents->len = 0 ;
  stamp_bucketname(bname, b) ;
  t = trusted(s, b, bname, &st) ;
  if (t < 0) return 0 ;
  if (!t) return 1 ;
  if (fromcache(s, bname, &st, &sec))
  {
    if (!stralloc_copyb(ents, s->cached.s, s->cached.len)) return 0 ;
    s->st.cached++ ;
  }
  else
  {
    if (!scan_readbucket(s, b, -1, ents)) return 0 ;
    return 1 ;
  }
  s->st.temps += sec.temps ;
  s->st.junk += sec.junk ;
  s->st.stamps += sec.n ;
  return 1 ;
}

int scan_readbucket (scanner_t *s, unsigned int b, int bfd, stralloc *ents)
{
  char bname[3] ;
  struct section sec ;
  int fd = bfd, ok ;
  memset(&sec, 0, sizeof sec) ;
  stamp_bucketname(bname, b) ;
  if (fd < 0) fd = openat(s->dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd < 0) return 0 ;
  ok = reread(s, b, fd, &sec, ents) ;
  if (bfd < 0) fd_close(fd) ;
  if (!ok) return 0 ;
  s->st.reread++ ;
  s->st.temps += sec.temps ;
  s->st.junk += sec.junk ;
  s->st.stamps += sec.n ;
  if (s->how.cachedir) cache_write(s, bname, &sec, (scanent_t const *)ents->s) ;
  return 1 ;
}

void scan_end (scanner_t *s, scanstats_t *st)
{
  if (st) *st = s->st ;
  stralloc_free(&s->cached) ;
  stralloc_free(&s->path) ;
  stralloc_free(&s->tmp) ;
}

long scan_topjunk (int dirfd, scan_top_fn *fn, void *ctx)
{
  long n = 0 ;
  int fd = dup(dirfd) ;
  DIR *d = fd >= 0 ? fdopendir(fd) : 0 ;
  struct dirent *de ;
  if (!d)
  {
    if (fd >= 0) fd_close(fd) ;
    return -1 ;
  }
  while ((de = readdir(d)))
  {
    struct stat st ;
    int kind = relaydir_kind(de->d_name) ;
    if (kind == RELAYDIR_BUCKET || kind == RELAYDIR_FIFODIR || kind == RELAYDIR_INCOMING || kind == RELAYDIR_DOTS) continue ;
    /* gone since readdir: a temp directory that relaydir_make renamed
       into a bucket meanwhile is neither temp nor junk */
    if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
    {
      if (errno == ENOENT) continue ;
      st.st_mode = 0 ;
    }
    n++ ;
    if (kind == RELAYDIR_TEMP && S_ISDIR(st.st_mode))
      (*fn)(de->d_name, SCAN_TEMP, stamp_ns(&st.st_mtim), ctx) ;
    else (*fn)(de->d_name, SCAN_JUNK, 0, ctx) ;
  }
  closedir(d) ;
  return n ;
}
