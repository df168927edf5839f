/* sources.c: the relay directories of a build, merged; see sources.h. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <skalibs/djbunix.h>
#include <skalibs/strerr.h>
#include "sources.h"
#include "stamp.h"

/* what each source hands the scan as its ctx */
typedef struct asidectx_s asidectx_t ;
struct asidectx_s
{
  source_t *src ;
  sources_aside_fn *fn ;
} ;

static void trampoline (unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why, void *ctx)
{
  asidectx_t *a = ctx ;
  (*a->fn)(a->src, bucket, fd, name, kind, mtime, why) ;
}

/* a host's name: letters, digits, dots, dashes, hyphens, not starting
   with a dot; at most 63 bytes */
static int hostname_ok (char const *s)
{
  size_t n = 0 ;
  if (s[0] == '.' || s[0] == '-') return 0 ;
  for ( ; s[n] ; n++)
    if (n >= 63 || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '.' || s[n] == '-' || s[n] == '_'))
      return 0 ;
  return n > 0 ;
}

static int add (sources_t *s, char const *label, char const *dir, char const *name)
{
  source_t src ;
  memset(&src, 0, sizeof src) ;
  src.dirfd = -1 ;
  if (label) strcpy(src.label, label) ;
  if (!stralloc_cats(&src.path, dir) || (name && (!stralloc_catb(&src.path, "/", 1) || !stralloc_cats(&src.path, name))) || !stralloc_0(&src.path))
    return 0 ;
  src.dirfd = open(src.path.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC) ;
  if (src.dirfd == -1)
  {
    int e = errno ;
    stralloc_free(&src.path) ;
    errno = e ;
    return 0 ;
  }
  if (!genalloc_append(source_t, &s->list, &src))
  {
    fd_close(src.dirfd) ;
    stralloc_free(&src.path) ;
    return 0 ;
  }
  return 1 ;
}

static int byname (void const *a, void const *b)
{
  return strcmp(((source_t const *)a)->label, ((source_t const *)b)->label) ;
}

/* every host's directory in hosts, in the order of their names */
static void openhosts (sources_t *s, char const *hosts)
{
  DIR *d = opendir(hosts) ;
  struct dirent *de ;
  size_t first = sources_n(s) ;
  if (!d) { strerr_warnwusys("read the hosts' directory ", hosts) ; return ; }
  while ((de = readdir(d)))
  {
    struct stat st ;
    if (de->d_name[0] == '.') continue ;
    if (!hostname_ok(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISDIR(st.st_mode))
    {
      stralloc sa = STRALLOC_ZERO ;
      if (stamp_where(&sa, hosts, 0, de->d_name)) strerr_warnw("skipping ", sa.s, ": not a host's relay directory") ;
      stralloc_free(&sa) ;
      continue ;
    }
    if (st.st_mode & 022)
    {
      strerr_warnw("skipping ", hosts, "/", de->d_name, ": others may write in it, so its stamps could be anyone's") ;
      continue ;
    }
    if (!add(s, de->d_name, hosts, de->d_name)) strerr_warnwusys("open ", hosts, "/", de->d_name) ;
  }
  closedir(d) ;
  if (sources_n(s) > first + 1)
    qsort(sources_get(s, first), sources_n(s) - first, sizeof(source_t), &byname) ;
}

int sources_open (sources_t *s, char const *dir, char const *hosts, int needlocal)
{
  s->hosts = hosts ;
  if (!add(s, "", dir, 0))
  {
    if (errno != ENOENT || needlocal) return 0 ;
    strerr_warnw("relay directory ", dir, " is missing: no grants") ;
  }
  if (hosts) openhosts(s, hosts) ;
  return 1 ;
}

/* the scan of one source: its cache, its aside */
static void howfor (source_t *src, scan_t const *how, char const *cache, sources_aside_fn *aside, scan_t *out)
{
  *out = *how ;
  out->cachedir = 0 ;
  if (cache)
  {
    src->cachedir.len = 0 ;
    if (stralloc_cats(&src->cachedir, cache) && stralloc_cats(&src->cachedir, src->label[0] ? "/scan.h." : "/scan")
     && stralloc_cats(&src->cachedir, src->label) && stralloc_0(&src->cachedir))
      out->cachedir = src->cachedir.s ;
  }
  if (aside)
  {
    asidectx_t *a = src->ctx ;
    if (!a) a = src->ctx = malloc(sizeof *a) ;
    if (a) { a->src = src ; a->fn = aside ; out->aside = &trampoline ; out->ctx = a ; }
  }
}

int sources_start (sources_t *s, scan_t const *how, char const *cache, sources_aside_fn *aside)
{
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    scan_t h ;
    if (src->watching)
    {
      /* what a build asks of the stamps (who) was asked when watching began */
      if (!watch_events(src->w) || !watch_update(src->w, how->now, src->w->ttl, src->w->skew)) return 0 ;
      continue ;
    }
    howfor(src, how, cache, aside, &h) ;
    if (!scan_start(&src->scanner, &h, src->dirfd)) return 0 ;
  }
  return 1 ;
}

int sources_changed (sources_t *s, int64_t now, unsigned int ttl, unsigned int skew)
{
  int changed = 0 ;
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    if (!src->watching) continue ;
    src->w->changed = 0 ;
    if (!watch_events(src->w) || !watch_update(src->w, now, ttl, skew)) return -1 ;
    changed |= src->w->changed ;
  }
  return changed ;
}

int sources_scan (source_t *src, scan_t const *how, char const *cache, sources_aside_fn *aside, scanner_t *s)
{
  scan_t h ;
  howfor(src, how, cache, aside, &h) ;
  return scan_start(s, &h, src->dirfd) ;
}

/* the stamps of bucket b of source i, sorted by address */
static int stampsof (source_t *src, unsigned int b, scanent_t const **e, size_t *n)
{
  if (src->watching)
  {
    *e = watch_bucket(src->w, b) ;
    *n = watch_n(src->w, b) ;
    return 1 ;
  }
  if (!scan_bucket(&src->scanner, b, &src->ents)) return 0 ;
  *e = (scanent_t const *)src->ents.s ;
  *n = src->ents.len / sizeof(scanent_t) ;
  return 1 ;
}

/* by address, then the newest first, then the first source first */
static int newestfirst (void const *a, void const *b)
{
  merged_t const *x = a, *y = b ;
  int c = memcmp(x->e.ip.b, y->e.ip.b, 16) ;
  if (c) return c ;
  if (x->e.mtime != y->e.mtime) return x->e.mtime > y->e.mtime ? -1 : 1 ;
  return x->src < y->src ? -1 : x->src > y->src ;
}

int sources_bucket (sources_t *s, unsigned int b)
{
  size_t ns = sources_n(s) ;
  genalloc_setlen(merged_t, &s->merged, 0) ;
  for (size_t i = 0 ; i < ns ; i++)
  {
    scanent_t const *e ;
    size_t n ;
    if (!stampsof(sources_get(s, i), b, &e, &n)) return 0 ;
    for (size_t j = 0 ; j < n ; j++)
    {
      merged_t m = { .e = e[j], .src = (unsigned int)i } ;
      if (!genalloc_append(merged_t, &s->merged, &m)) return 0 ;
    }
  }
  if (ns > 1 && sources_nmerged(s) > 1)
  {
    /* the newest stamp of each address; of two as new, the first source's */
    merged_t *m = sources_merged(s) ;
    size_t n = sources_nmerged(s), k = 0 ;
    qsort(m, n, sizeof *m, &newestfirst) ;
    for (size_t i = 0 ; i < n ; i++)
      if (!k || memcmp(m[k - 1].e.ip.b, m[i].e.ip.b, 16)) m[k++] = m[i] ;
    genalloc_setlen(merged_t, &s->merged, k) ;
  }
  return 1 ;
}

int sources_drain (sources_t *s)
{
  int took = 0 ;
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    unsigned long before ;
    if (!src->watching) continue ;
    before = src->w->events ;
    if (!watch_events(src->w)) { }   /* the next poll tries again */
    if (src->w->events != before) took = 1 ;
  }
  return took ;
}

int sources_gen (sources_t const *s, unsigned int b, uint64_t *gen)
{
  source_t const *src = sources_get(s, 0) ;
  if (sources_n(s) != 1 || !src->watching) return 0 ;
  *gen = watch_gen(src->w, b) ;
  return 1 ;
}

unsigned int sources_end (sources_t *s, unsigned long *looked)
{
  unsigned int reread = 0 ;
  if (looked) *looked = 0 ;
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    scanstats_t st ;
    if (src->watching)
    {
      /* since the last build: between builds too (sources_changed) */
      reread += (unsigned int)(src->w->reread - src->reread0) ;
      if (looked) *looked += src->w->looked - src->looked0 ;
      src->reread0 = src->w->reread ;
      src->looked0 = src->w->looked ;
      continue ;
    }
    scan_end(&src->scanner, &st) ;
    reread += st.reread ;
  }
  return reread ;
}

unsigned int sources_watch (sources_t *s, scan_t const *how, char const *cache, sources_aside_fn *aside)
{
  unsigned int n = 0 ;
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    scan_t h ;
    howfor(src, how, cache, aside, &h) ;
    src->w = malloc(sizeof *src->w) ;
    watch_why = 0 ;
    if (src->w && watch_start(src->w, &h, src->dirfd))
    {
      src->watching = 1 ;
      n++ ;
      continue ;
    }
    if (watch_why) strerr_warni("reading ", src->path.s, " again at each build, through the scan cache: ", watch_why) ;
    else strerr_warnwusys("watch ", src->path.s, " (reading it again at each build, through the scan cache)") ;
    free(src->w) ;
    src->w = 0 ;
  }
  return n ;
}

void sources_free (sources_t *s)
{
  for (size_t i = 0 ; i < sources_n(s) ; i++)
  {
    source_t *src = sources_get(s, i) ;
    if (src->w) { watch_free(src->w) ; free(src->w) ; }
    if (src->dirfd >= 0) fd_close(src->dirfd) ;
    stralloc_free(&src->path) ;
    stralloc_free(&src->ents) ;
    stralloc_free(&src->cachedir) ;
    free(src->ctx) ;
  }
  genalloc_free(source_t, &s->list) ;
  genalloc_free(merged_t, &s->merged) ;
}
