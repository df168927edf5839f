/* stamp.c: stamp names, the age rule, contents, the bucket lock, atomic
   write; see stamp.h. flock is BSD's and Linux's. */

#define _DEFAULT_SOURCE  /* flock */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <skalibs/allreadwrite.h>
#include <skalibs/djbunix.h>
#include <skalibs/fmtscan.h>
#include <skalibs/random.h>
#include <skalibs/types.h>
#include "stamp.h"

unsigned int stamp_bucket (ip_t const *ip)
{
  uint32_t h = 2166136261u ;
  for (unsigned int i = 0 ; i < 16 ; i++) { h ^= ip->b[i] ; h *= 16777619u ; }
  return (h ^ h >> 8 ^ h >> 16 ^ h >> 24) & 0xff ;
}

void stamp_bucketname (char *s, unsigned int bucket)
{
  unsigned char c = (unsigned char)bucket ;
  s[ucharn_fmt(s, (char const *)&c, 1)] = 0 ;
}

int stamp_scanbucketname (char const *name, unsigned int *bucket)
{
  unsigned char c ;
  char canon[3] ;
  if (!name[0] || !name[1] || name[2] || ucharn_scan(name, (char *)&c, 1) != 2) return 0 ;
  stamp_bucketname(canon, c) ;
  if (memcmp(canon, name, 2)) return 0 ;   /* lowercase only */
  *bucket = c ;
  return 1 ;
}

int stamp_scanname (ip_t *ip, char const *name, size_t len, unsigned int bucket)
{
  char canon[IP_FMT] ;
  ip_t a ;
  if (!ip_scan(&a, name, len)) return 0 ;
  if (ip_fmt(canon, &a) != len || memcmp(canon, name, len)) return 0 ;
  if (stamp_bucket(&a) != bucket) return 0 ;
  *ip = a ;
  return 1 ;
}

int stamp_state (int64_t mtime, int64_t now, unsigned int ttl, unsigned int skew)
{
  if (mtime > now + (int64_t)skew * STAMP_SECOND) return STAMP_FUTURE ;
  if (now >= stamp_expiry(mtime, ttl)) return STAMP_EXPIRED ;
  return STAMP_LIVE ;
}

/* The wall clock, the one file times are written with: a grant's age is
   the difference between the two, so they must come from the same clock. */
int64_t stamp_now (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_REALTIME, &ts) ;
  return stamp_ns(&ts) ;
}

int64_t stamp_ns (struct timespec const *ts)
{
  return (int64_t)ts->tv_sec * STAMP_SECOND + ts->tv_nsec ;
}

char const *const stamp_fieldnames[STAMP_NFIELDS] = { "user", "uid", "time", "service", "local", "via", "holder" } ;

char *stamp_field (stampinfo_t *si, unsigned int i, size_t *max)
{
  switch (i)
  {
    case 0 : *max = sizeof si->user ; return si->user ;
    case 1 : *max = sizeof si->uid ; return si->uid ;
    case 2 : *max = sizeof si->time ; return si->time ;
    case 3 : *max = sizeof si->service ; return si->service ;
    case 4 : *max = sizeof si->local ; return si->local ;
    case 5 : *max = sizeof si->via ; return si->via ;
    default : *max = sizeof si->holder ; return si->holder ;
  }
}

static int plain (unsigned char c)
{
  return c > 0x20 && c < 0x7f && c != '\\' ;
}

int stamp_escape (stralloc *sa, char const *v, size_t max)
{
  for (size_t j = 0 ; j < max && v[j] ; j++)
  {
    if (plain((unsigned char)v[j])) { if (!stralloc_catb(sa, v + j, 1)) return 0 ; }
    else
    {
      char e[4] = { '\\', 'x' } ;
      ucharn_fmt(e + 2, v + j, 1) ;
      if (!stralloc_catb(sa, e, 4)) return 0 ;
    }
  }
  return 1 ;
}

uint64_t stamp_who (stampinfo_t const *si)
{
  char const *s = si->user[0] ? si->user : si->uid ;
  uint64_t h = si->user[0] ? 14695981039346656037ull : 1099511628211ull ;
  for ( ; *s ; s++) { h ^= (unsigned char)*s ; h *= 1099511628211ull ; }
  return h ? h : 1 ;
}

int stamp_where (stralloc *sa, char const *dir, char const *bname, char const *name)
{
  return stralloc_cats(sa, dir)
      && (!bname || (stralloc_catb(sa, "/", 1) && stralloc_cats(sa, bname)))
      && (!name || (stralloc_catb(sa, "/", 1) && stamp_escape(sa, name, strlen(name))))
      && stralloc_0(sa) ;
}

int stamp_fmt (stralloc *sa, stampinfo_t const *si)
{
  for (unsigned int i = 0 ; i < STAMP_NFIELDS ; i++)
  {
    size_t max ;
    char const *v = stamp_field((stampinfo_t *)si, i, &max) ;
    if (!v[0]) continue ;
    if (!stralloc_cats(sa, stamp_fieldnames[i]) || !stralloc_catb(sa, " ", 1)
     || !stamp_escape(sa, v, max) || !stralloc_catb(sa, "\n", 1)) return 0 ;
  }
  return 1 ;
}

/* the byte of \xHH at s, lowercase hex only, as stamp_escape writes it;
   1 or 0 */
static int unhex (char const *s, unsigned char *c)
{
  char canon[2] ;
  if (ucharn_scan(s, (char *)c, 1) != 2) return 0 ;
  ucharn_fmt(canon, (char const *)c, 1) ;
  return !memcmp(canon, s, 2) ;
}

int stamp_parse (stampinfo_t *si, char const *s, size_t len)
{
  unsigned int seen = 0 ;
  size_t pos = 0 ;
  memset(si, 0, sizeof *si) ;
  if (len > STAMP_SIZEMAX) return 0 ;
  while (pos < len)
  {
    char const *nl = memchr(s + pos, '\n', len - pos) ;
    char const *sp ;
    size_t end, max, n = 0 ;
    unsigned int i ;
    char *v ;
    if (!nl) return 0 ;
    end = (size_t)(nl - s) ;
    sp = memchr(s + pos, ' ', end - pos) ;
    if (!sp) return 0 ;
    for (i = 0 ; i < STAMP_NFIELDS ; i++)
      if (strlen(stamp_fieldnames[i]) == (size_t)(sp - s) - pos && !memcmp(stamp_fieldnames[i], s + pos, (size_t)(sp - s) - pos)) break ;
    if (i == STAMP_NFIELDS || seen & (1u << i)) return 0 ;
    seen |= 1u << i ;
    v = stamp_field(si, i, &max) ;
    for (size_t j = (size_t)(sp - s) + 1 ; j < end ; )
    {
      unsigned char c = (unsigned char)s[j] ;
      if (plain(c)) j++ ;
      else if (c == '\\' && end - j >= 4 && s[j+1] == 'x' && unhex(s + j + 2, &c))
      {
        if (!c || plain(c)) return 0 ;   /* only what stamp_fmt escapes */
        j += 4 ;
      }
      else return 0 ;
      if (n + 1 >= max) return 0 ;
      v[n++] = (char)c ;
    }
    if (!n) return 0 ;
    pos = end + 1 ;
  }
  return 1 ;
}

int stamp_lock (int bucketfd, unsigned int ms)
{
  struct timespec one = { 0, 1000000 } ;
  for (unsigned int i = 0 ; ; i++)
  {
    if (!flock(bucketfd, LOCK_EX | LOCK_NB)) return 1 ;
    if (errno != EWOULDBLOCK && errno != EINTR) return 0 ;
    if (i >= ms) break ;
    nanosleep(&one, 0) ;
  }
  errno = ETIMEDOUT ;
  return 0 ;
}

void stamp_unlock (int bucketfd)
{
  flock(bucketfd, LOCK_UN) ;
}

int stamp_write (int bucketfd, char const *name, char const *s, size_t len)
{
  char tmp[STAMP_TMPPREFIXLEN + PID_FMT + 1 + 16 + 1] ;
  size_t n = STAMP_TMPPREFIXLEN ;
  int fd, e ;
  memcpy(tmp, STAMP_TMPPREFIX, n) ;
  n += pid_fmt(tmp + n, getpid()) ;
  tmp[n++] = '.' ;
  {
    char r[8] ;
    random_buf(r, sizeof r) ;
    n += ucharn_fmt(tmp + n, r, sizeof r) ;
  }
  tmp[n] = 0 ;
  /* mode 0640 whatever the umask (relay-open and relay-clean read it),
     given at its making: a chmod after would be one more inotify event
     per login for relay-open -w to read */
  {
    mode_t um = umask(0) ;
    fd = openat(bucketfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640) ;
    umask(um) ;
  }
  if (fd == -1) return 0 ;
  if (allwrite(fd, s, len) < len) goto err ;
  /* a default ACL on the bucket decides the mode instead: then a chmod */
  {
    struct stat st ;
    if (fstat(fd, &st) == -1 || ((st.st_mode & 07777) != 0640 && fchmod(fd, 0640) == -1)) goto err ;
  }
  if (close(fd) == -1) { fd = -1 ; goto err ; }
  fd = -1 ;
  if (renameat(bucketfd, tmp, bucketfd, name) == -1) goto err ;
  return 1 ;

 err:
  e = errno ;
  if (fd >= 0) fd_close(fd) ;
  unlinkat(bucketfd, tmp, 0) ;
  errno = e ;
  return 0 ;
}
