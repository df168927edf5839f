/* sources.h: the relay directories a build reads, and their stamps
   merged bucket by bucket.

   The local relay directory (POPRELAY_DIR) comes first; then, with
   POPRELAY_HOSTS, one relay directory per sending host, each a
   subdirectory named after its host, pushed there by that host's
   relay-publish (rsync over ssh). A grant from any of them counts, read
   with the same rules as local stamps (scan.h): nothing but canonical
   address names in their buckets grants anything. When an address has a
   stamp in several, the newest counts.

   Each directory is read through the cache at each build, or, for
   relay-open -w where the kernel can tell, kept in memory (watch.h).
   Only the local directory's buckets are made by relay-open; a host's are
   that host's, and one not as relaydir.h makes it grants nothing. */

#ifndef POPRELAY_SOURCES_H
#define POPRELAY_SOURCES_H

#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include "scan.h"
#include "watch.h"

typedef struct source_s source_t ;
struct source_s
{
  char label[64] ;          /* "" for the local directory, else the host */
  stralloc path ;
  int dirfd ;
  int watching ;            /* w holds it in memory */
  watch_t *w ;
  scanner_t scanner ;       /* otherwise: this build's scan */
  stralloc ents ;           /* the bucket at hand, scanent_t */
  stralloc cachedir ;       /* its scan cache */
  unsigned long reread0, looked0 ;   /* w's counts when the build started */
  void *ctx ;               /* what its scan's aside gets */
} ;

/* A stamp of the merged buckets, with the directory it came from. */
typedef struct merged_s merged_t ;
struct merged_s
{
  scanent_t e ;
  unsigned int src ;        /* its index in the sources */
} ;

typedef struct sources_s sources_t ;
struct sources_s
{
  genalloc list ;           /* source_t */
  genalloc merged ;         /* merged_t: the bucket at hand */
  char const *hosts ;       /* POPRELAY_HOSTS, or 0 */
} ;
#define SOURCES_ZERO { .list = GENALLOC_ZERO, .merged = GENALLOC_ZERO, .hosts = 0 }

/* The aside of a source: what scan.h says is not a stamp, with the
   source it was found in. */
typedef void sources_aside_fn (source_t *, unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why) ;

/* Opens the local directory and each host's. A host directory that is
   missing or unreadable is warned about and left out; the local one
   missing is too, with a warning, unless needlocal. Returns 1, or 0 with
   errno (the local directory could not be opened). */
extern int sources_open (sources_t *, char const *dir, char const *hosts, int needlocal) ;

/* Starts reading each source for one build: watching sources only take
   in what their events marked; the others start a scan (see scan.h;
   how.cachedir is the local cache, "CACHE/scan", hosts get
   "CACHE/scan.HOST"). Returns 1, or 0 with errno. */

/* For the service, between builds: the watched sources take in their
   events. Returns 1 if what a build would write may have changed (see
   watch_update), 0 if not, -1 with errno. */
extern int sources_changed (sources_t *, int64_t now, unsigned int ttl, unsigned int skew) ;
extern int sources_start (sources_t *, scan_t const *how, char const *cache, sources_aside_fn *aside) ;

/* Bucket b of every source, merged (the newest stamp of each address).
   Returns 1, or 0 with errno. */
extern int sources_bucket (sources_t *, unsigned int b) ;
#define sources_merged(s) genalloc_s(merged_t, &(s)->merged)
#define sources_nmerged(s) genalloc_len(merged_t, &(s)->merged)
#define sources_n(s) genalloc_len(source_t, &(s)->list)
#define sources_get(s, i) (genalloc_s(source_t, &(s)->list) + (i))

/* Starts a scan of one source alone (relay-clean cleans each apart), as
   sources_start does. Returns 1, or 0 with errno. */
extern int sources_scan (source_t *, scan_t const *how, char const *cache, sources_aside_fn *aside, scanner_t *) ;

/* Moves the kernel's pending events of each watched source into its
   marks (watch_events), so that the kernel's queue, which overflows past
   16384 events by default, never holds more than what came during one
   bucket of a build. Returns 1 if it took in any event. Errors wait for
   the next time. */
extern int sources_drain (sources_t *) ;

/* For the memo of relay-open -w (memo.h): with a single source, watched,
   the generation of its bucket b (watch_gen) in gen, and 1; otherwise 0:
   a merge of several may change with the stamps' times alone. */
extern int sources_gen (sources_t const *, unsigned int b, uint64_t *gen) ;

/* Ends a build's reading: the buckets it read again, in all, and the
   names the watched sources looked at again. */
extern unsigned int sources_end (sources_t *, unsigned long *looked) ;

/* For relay-open -w: keeps each source in memory where the kernel can
   tell of changes (watch.h), saying once for each source that cannot be
   watched why, and that its builds go through the cache. Returns how
   many are watched. */
extern unsigned int sources_watch (sources_t *, scan_t const *how, char const *cache, sources_aside_fn *aside) ;

extern void sources_free (sources_t *) ;

#endif
