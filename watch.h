/* watch.h: a relay directory kept in memory, told of every change by the
   kernel (inotify), for relay-open -w.

   After a first scan (through the cache, see scan.h), the stamps of each
   bucket stay in memory. The relay directory and each bucket are
   watched: a stamp renamed in, removed, touched (its time changed in
   place) marks that one name; a bucket made, removed or replaced, or an
   event queue that overflowed, marks the whole bucket (or all of them).
   watch_update then stats the marked names and reads again the marked
   buckets, and nothing else: a rebuild after a busy second costs what
   changed, not a scan.

   A watch is added before its bucket is read, so that no change is ever
   missed between the two; an event for something already read only costs
   a second look. Where the kernel cannot tell (a network file system,
   whose other clients' writes raise no event here), watch_start refuses,
   and relay-open reads through the cache at each build instead. */

#ifndef POPRELAY_WATCH_H
#define POPRELAY_WATCH_H

#include <stdint.h>
#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include "scan.h"
#include "stamp.h"

typedef struct watch_s watch_t ;
struct watch_s
{
  int ifd ;                         /* the inotify descriptor */
  int dirwd ;                       /* the relay directory's watch */
  int wd[STAMP_BUCKETS] ;           /* each bucket's, or -1 */
  stralloc ents[STAMP_BUCKETS] ;    /* each bucket's stamps, scanent_t, by address */
  genalloc names[STAMP_BUCKETS] ;   /* names to look at again: ip_t */
  unsigned char again[STAMP_BUCKETS] ; /* the bucket to read again whole */
  uint64_t gen[STAMP_BUCKETS] ;     /* moves on whenever a bucket's addresses change */
  scanner_t scanner ;               /* for the first scan and the buckets read again */
  unsigned long events, looked, reread ;   /* since watch_start */
  int changed ;                     /* watch_update changed what grants */
  int64_t now ;                     /* what it judges liveness by: */
  unsigned int ttl, skew ;
} ;

/* Why watch_start refused, when it did for a reason other than errno. */
extern char const *watch_why ;

/* Starts watching the relay directory open at dirfd, and reads it (with
   how, see scan.h). Returns 1, or 0 with errno, or 0 with errno 0 and
   watch_why (a network file system). */
extern int watch_start (watch_t *, scan_t const *how, int dirfd) ;

/* The descriptor to poll for events. */
#define watch_fd(w) ((w)->ifd)

/* Reads the pending events and marks what they touch. Returns 1, or 0
   with errno. */
extern int watch_events (watch_t *) ;

/* Looks again at what is marked. Returns 1, or 0 with errno (a bucket
   that cannot be read stays marked). Sets changed when a stamp came or
   went, or its time moved it between live, expired and future (at now,
   with ttl and skew), or a bucket was read again: a refresh of a live
   grant changes nothing a build would write. */
extern int watch_update (watch_t *, int64_t now, unsigned int ttl, unsigned int skew) ;

/* Marks every bucket, to be read again whole (SIGHUP). */
extern void watch_all (watch_t *) ;

/* The stamps of bucket b, by address. Its generation moves on whenever
   a stamp comes into the bucket or leaves it, or the bucket is read again
   whole: while it stays, the bucket holds the same addresses, in the same
   order (their times may have changed). */
#define watch_gen(w, b) ((w)->gen[b])
#define watch_bucket(w, b) ((scanent_t const *)(w)->ents[b].s)
#define watch_n(w, b) ((w)->ents[b].len / sizeof(scanent_t))

extern void watch_free (watch_t *) ;

#endif
