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
#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "relaydir.h"
#include "scan.h"
#include "stamp.h"
#include "trigger.h"

static char const magic[8] = "poprlyS1" ;

struct cachehdr
{
  char magic[8] ;
  uint32_t buckets ;
  uint32_t entsize ;
} ;

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

#define NS(ts) ((int64_t)(ts).tv_sec * 1000000000 + (ts).tv_nsec)
/* How long after its last change a bucket is not recorded (see scan.h):
   a second, unless the time itself shows a file system that keeps less
   than a millisecond (its nanoseconds are not a round millisecond), where
   a change is seen within a tick of the kernel's coarse clock (10 ms at
   worst, HZ=100): then 50 ms, which still covers five ticks. */
#define RACY 1000000000
#define RACY_FINE 50000000

static int settled (int64_t t, int64_t now)
{
  return t < now - (t % 1000000 ? RACY_FINE : RACY) ;
}

/* Whether we may read the file: what faccessat(AT_EACCESS) says, asked
   only when the mode bits do not already say yes to us as root or owner
   (the usual case, and one system call less per stamp). */
static int readable (int bfd, char const *name, struct stat const *st, uid_t euid)
{
  if (!euid || (st->st_uid == euid && st->st_mode & S_IRUSR)) return 1 ;
  return !faccessat(bfd, name, R_OK, AT_EACCESS) ;
}
/* how many times a bucket that changes while it is read is read again */
#define REREADS 3

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

/* One cache file per bucket, SCANDIR/BB: a header, the section, the
   entries. Only the buckets read again are written, so that a rebuild
   after one login writes one small file. */

static int cache_path (stralloc *sa, char const *dir, char const *bname, char const *suffix)
{
  sa->len = 0 ;
  return stralloc_cats(sa, dir) && stralloc_cats(sa, "/") && stralloc_cats(sa, bname)
      && (!suffix || stralloc_cats(sa, suffix)) && stralloc_0(sa) ;
}

/* 1 and the section and entries in sa if the bucket's cache file is whole */
static int cache_read (char const *dir, char const *bname, struct section *sec, stralloc *sa, stralloc *path)
{
  struct cachehdr h ;
  struct stat st ;
  struct iovec v[3] ;
  size_t want ;
  ssize_t r ;
  int fd ;
  if (!cache_path(path, dir, bname, 0)) return 0 ;
  fd = open(path->s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) ;
  if (fd == -1) return 0 ;
  /* the whole file in one read: header, section, entries */
  if (fstat(fd, &st) == -1 || st.st_size < (off_t)(sizeof h + sizeof *sec)
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
  close(fd) ;
  return 1 ;
 no:
  close(fd) ;
  return 0 ;
}

/* A cache that cannot be written costs speed, not correctness: one warning
   per scan, then none. */
static void cache_write (scan_t *s, char const *dir, char const *bname, struct section *sec, scanent_t const *e, stralloc *path, stralloc *tmp)
{
  struct cachehdr h ;
  char pid[PID_FMT] ;
  int fd ;
  if (!(sec->flags & SEC_VALID))
  {
    if (cache_path(path, dir, bname, 0)) unlink(path->s) ;
    return ;
  }
  memcpy(h.magic, magic, 8) ;
  h.buckets = STAMP_BUCKETS ;
  h.entsize = sizeof(scanent_t) ;
  sec->sum = checksum(sec, e, sec->n) ;
  pid[pid_fmt(pid, getpid())] = 0 ;
  if (!cache_path(path, dir, bname, 0) || !stralloc_copyb(tmp, path->s, path->len - 1)
   || !stralloc_cats(tmp, ".tmp.") || !stralloc_cats(tmp, pid) || !stralloc_0(tmp)) return ;
  fd = open(tmp->s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) ;
  if (fd == -1) goto err ;
  {
    struct iovec v[3] = {
      { .iov_base = &h, .iov_len = sizeof h },
      { .iov_base = sec, .iov_len = sizeof *sec },
      { .iov_base = (void *)e, .iov_len = (size_t)sec->n * sizeof *e } } ;
    size_t total = v[0].iov_len + v[1].iov_len + v[2].iov_len ;
    if (allwritev(fd, v, 3) != total) { close(fd) ; unlink(tmp->s) ; goto err ; }
  }
  if (close(fd) == -1 || rename(tmp->s, path->s) == -1) { unlink(tmp->s) ; goto err ; }
  return ;
 err:
  if (!s->cachewarned) strerr_warnwusys("write the scan cache ", tmp->s) ;
  s->cachewarned = 1 ;
}

static char const *junkwhy (mode_t m)
{
  if (S_ISLNK(m)) return "a symbolic link" ;
  if (S_ISDIR(m)) return "a directory" ;
  return "not a regular file" ;
}

/* Reads one bucket directory into ents; the section records its state.
   Returns 1, or 0 with errno. */
/* What is not a stamp is noted during a pass and reported after the last
   one, so that a pass repeated because the bucket changed reports it once:
   kind, mtime, why (an index in whys), name, NUL. */
static char const *const whys[] = { 0, "not the name of a stamp in this bucket", "unreadable", "a symbolic link", "a directory", "not a regular file" } ;

static int note (stralloc *others, int kind, int64_t mtime, unsigned char why, char const *name)
{
  char k = (char)kind ;
  return stralloc_catb(others, &k, 1) && stralloc_catb(others, (char *)&mtime, sizeof mtime)
      && stralloc_catb(others, (char *)&why, 1) && stralloc_catb(others, name, strlen(name) + 1) ;
}

static unsigned char junkwhyn (mode_t m)
{
  return S_ISLNK(m) ? 3 : S_ISDIR(m) ? 4 : 5 ;
}

/* stamp_who of the stamp name in the bucket bfd, 0 if it cannot be read;
   never blocks (a fifo put in a stamp's place) */
static uint64_t whoof (int bfd, char const *name)
{
  char buf[STAMP_SIZEMAX + 1] ;
  stampinfo_t si ;
  ssize_t r = -1 ;
  int fd = openat(bfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) ;
  if (fd >= 0) { r = read(fd, buf, sizeof buf) ; close(fd) ; }
  return r >= 0 && stamp_parse(&si, buf, (size_t)r) ? stamp_who(&si) : 0 ;
}

static int reread (scan_t *s, int dirfd, char const *bname, unsigned int b, struct section *sec, stralloc *ents)
{
  int bfd = openat(dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  struct stat before, after ;
  unsigned int tries = 0 ;
  uid_t const euid = geteuid() ;
  stralloc others = STRALLOC_ZERO ;
  if (bfd == -1) return 0 ;
  for (;;)
  {
    DIR *d ;
    int fd2 ;
    if (fstat(bfd, &before) == -1) goto err ;
    fd2 = dup(bfd) ;
    if (fd2 == -1) goto err ;
    d = fdopendir(fd2) ;
    if (!d) { close(fd2) ; goto err ; }
    /* the dup shares bfd's offset, which a previous pass left at the end */
    rewinddir(d) ;
    ents->len = 0 ;
    others.len = 0 ;
    sec->temps = sec->junk = 0 ;
    sec->oldesttemp = 0 ;
    for (;;)
    {
      struct dirent *de ;
      struct stat st ;
      char const *name ;
      size_t len ;
      scanent_t e ;
      errno = 0 ;
      de = readdir(d) ;
      if (!de) break ;
      name = de->d_name ;
      if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue ;
      len = strlen(name) ;
      if (len > STAMP_TMPPREFIXLEN && !memcmp(name, STAMP_TMPPREFIX, STAMP_TMPPREFIXLEN))
      {
        if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) continue ;
        if (!sec->temps || NS(st.st_mtim) < sec->oldesttemp) sec->oldesttemp = NS(st.st_mtim) ;
        sec->temps++ ;
        if (s->other && !note(&others, SCAN_TEMP, NS(st.st_mtim), 0, name)) goto errd ;
        continue ;
      }
      if (!stamp_scanname(&e.ip, name, len, b))
      {
        sec->junk++ ;
        if (s->other && !note(&others, SCAN_JUNK, 0, 1, name)) goto errd ;
        continue ;
      }
      if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
      {
        if (errno == ENOENT) continue ;
        goto errd ;
      }
      if (!S_ISREG(st.st_mode) || !readable(bfd, name, &st, euid))
      {
        sec->junk++ ;
        if (s->other && !note(&others, SCAN_JUNK, 0, S_ISREG(st.st_mode) ? 2 : junkwhyn(st.st_mode), name)) goto errd ;
        continue ;
      }
      e.mtime = NS(st.st_mtim) ;
      e.who = s->who ? whoof(bfd, name) : 0 ;
      if (!stralloc_catb(ents, (char *)&e, sizeof e)) goto errd ;
    }
    if (errno) goto errd ;
    closedir(d) ;
    if (fstat(bfd, &after) == -1) goto err ;
    if ((NS(after.st_mtim) == NS(before.st_mtim) && NS(after.st_ctim) == NS(before.st_ctim)) || ++tries >= REREADS) break ;
    continue ;
   errd:
    {
      int e = errno ;
      closedir(d) ;
      errno = e ;
      goto err ;
    }
  }
  for (size_t i = 0 ; i < others.len ; )
  {
    int64_t mtime ;
    char const *name = others.s + i + 10 ;
    memcpy(&mtime, others.s + i + 1, sizeof mtime) ;
    (*s->other)(b, bfd, name, others.s[i], mtime, whys[(unsigned char)others.s[i + 9]], s->ctx) ;
    i += 10 + strlen(name) + 1 ;
  }
  stralloc_free(&others) ;
  close(bfd) ;
  /* an empty bucket has no buffer yet, and qsort wants one even for none */
  if (ents->len) qsort(ents->s, ents->len / sizeof(scanent_t), sizeof(scanent_t), &entcmp) ;
  sec->dev = before.st_dev ;
  sec->ino = before.st_ino ;
  sec->mtime = NS(before.st_mtim) ;
  sec->ctime = NS(before.st_ctim) ;
  sec->n = (uint32_t)(ents->len / sizeof(scanent_t)) ;
  sec->flags = 0 ;
  if (NS(after.st_mtim) == sec->mtime && NS(after.st_ctim) == sec->ctime
   && settled(sec->mtime, s->now) && settled(sec->ctime, s->now))
    sec->flags = SEC_VALID | (s->who ? SEC_WHO : 0) ;
  return 1 ;

 err:
  {
    int e = errno ;
    close(bfd) ;
    stralloc_free(&others) ;
    errno = e ;
  }
  return 0 ;
}

/* A run killed while it wrote a cache file leaves BB.tmp.PID behind; one
   that old is no longer being written. */
#define CACHE_TMPAGE ((int64_t)600 * 1000000000)

static void cache_sweep (char const *dir, int64_t now)
{
  DIR *d = opendir(dir) ;
  struct dirent *de ;
  if (!d) return ;
  while ((de = readdir(d)))
  {
    struct stat st ;
    if (!strstr(de->d_name, ".tmp.")) continue ;
    if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) && NS(st.st_mtim) < now - CACHE_TMPAGE)
      unlinkat(dirfd(d), de->d_name, 0) ;
  }
  closedir(d) ;
}

int scan_relay (scan_t *s, int dirfd)
{
  stralloc cached = STRALLOC_ZERO, fresh = STRALLOC_ZERO, path = STRALLOC_ZERO, tmp = STRALLOC_ZERO ;
  struct stat dirst ;
  int ret = 0 ;
  memset(&s->st, 0, sizeof s->st) ;
  if (fstat(dirfd, &dirst) == -1) return -1 ;
  s->cachewarned = 0 ;
  if (s->cachedir && mkdir(s->cachedir, 0700) == -1 && errno != EEXIST)
  {
    strerr_warnwusys("create the scan cache ", s->cachedir) ;
    s->cachewarned = 1 ;
  }
  if (s->cachedir)
  {
    /* What the cache says is granted: nobody else may write it. */
    struct stat st ;
    if (lstat(s->cachedir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || st.st_mode & 022)
    {
      if (!s->cachewarned) strerr_warnw("not using the scan cache ", s->cachedir, ": it must be a directory of this user that no one else can write") ;
      s->cachewarned = 1 ;
      s->cachedir = 0 ;
    }
    else cache_sweep(s->cachedir, s->now) ;
  }

  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    char bname[3] ;
    struct stat st ;
    struct section old, sec ;
    stralloc *use = &fresh ;
    memset(&sec, 0, sizeof sec) ;
    stamp_bucketname(bname, b) ;
    if (fstatat(dirfd, bname, &st, AT_SYMLINK_NOFOLLOW) == -1)
    {
      if (errno != ENOENT) { ret = -1 ; break ; }
      if (s->other) (*s->other)(b, dirfd, 0, SCAN_MISSING, 0, 0, s->ctx) ;
      fresh.len = 0 ;
    }
    else if (!S_ISDIR(st.st_mode))
    {
      s->st.junk++ ;
      if (s->other) (*s->other)(b, dirfd, 0, SCAN_JUNK, 0, junkwhy(st.st_mode), s->ctx) ;
      fresh.len = 0 ;
    }
    else if (!relaydir_right(&st, &dirst))
    {
      /* a user could have made it, or changed it: what it holds may be
         anyone's (see relaydir.h) */
      s->st.junk++ ;
      if (s->other) (*s->other)(b, dirfd, 0, SCAN_JUNK, 0, "a bucket whose owner or mode is not the relay directory's: its stamps grant nothing", s->ctx) ;
      fresh.len = 0 ;
    }
    else if (s->cachedir && !s->full && cache_read(s->cachedir, bname, &old, &cached, &path)
          && (old.flags & SEC_VALID) && old.dev == (uint64_t)st.st_dev && old.ino == (uint64_t)st.st_ino
          && old.mtime == NS(st.st_mtim) && old.ctime == NS(st.st_ctim)
          && !(s->tempsbefore && old.temps && old.oldesttemp < s->tempsbefore)
          && !(s->rereadjunk && old.junk)
          && !(s->who && !(old.flags & SEC_WHO)))
    {
      sec = old ;
      use = &cached ;
      s->st.cached++ ;
    }
    else
    {
      if (!reread(s, dirfd, bname, b, &sec, &fresh)) { ret = -1 ; break ; }
      s->st.reread++ ;
      if (s->cachedir) cache_write(s, s->cachedir, bname, &sec, (scanent_t const *)fresh.s, &path, &tmp) ;
    }
    s->st.temps += sec.temps ;
    s->st.junk += sec.junk ;
    sec.n = (uint32_t)(use->len / sizeof(scanent_t)) ;
    s->st.stamps += sec.n ;
    ret = (*s->stamps)(b, (scanent_t const *)use->s, sec.n, s->ctx) ;
    if (ret) break ;
  }

  {
    int e = errno ;
    stralloc_free(&cached) ;
    stralloc_free(&fresh) ;
    stralloc_free(&path) ;
    stralloc_free(&tmp) ;
    errno = e ;
  }
  return ret ;
}

long scan_topjunk (int dirfd, scan_top_fn *fn, void *ctx)
{
  static char const hex[] = "0123456789abcdef" ;
  long n = 0 ;
  int fd = dup(dirfd) ;
  DIR *d = fd >= 0 ? fdopendir(fd) : 0 ;
  struct dirent *de ;
  if (!d)
  {
    if (fd >= 0) close(fd) ;
    return -1 ;
  }
  while ((de = readdir(d)))
  {
    char const *s = de->d_name ;
    struct stat st ;
    if (s[0] && s[1] && !s[2] && strchr(hex, s[0]) && strchr(hex, s[1])) continue ;
    if (!strcmp(s, ".") || !strcmp(s, "..") || !strcmp(s, TRIGGER_DIR)) continue ;
    n++ ;
    if (!strncmp(s, RELAYDIR_TMPPREFIX, RELAYDIR_TMPPREFIXLEN) && !fstatat(dirfd, s, &st, AT_SYMLINK_NOFOLLOW) && S_ISDIR(st.st_mode))
      (*fn)(s, SCAN_TEMP, NS(st.st_mtim), ctx) ;
    else (*fn)(s, SCAN_JUNK, 0, ctx) ;
  }
  closedir(d) ;
  return n ;
}
