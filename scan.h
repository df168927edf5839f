/* scan.h: reading the relay directory, re-reading only what changed.

   A bucket directory changes (mtime, ctime) whenever a stamp is created,
   replaced or removed in it, and a stamp's time is fixed when it is
   renamed in. So the stamps of a bucket whose directory still has the
   dev, inode, mtime and ctime recorded at the last scan are the ones
   recorded then. The cache file holds, per bucket, that record and the
   stamps (address, mtime); a scan stats the 256 bucket directories and
   reads again only those that changed, instead of stat'ing every stamp.
   The cache is a directory with one file per bucket, rewritten only when
   that bucket was read again.

   A bucket changed within the last second is not recorded, since a second
   change in the same clock tick would leave its mtime as it was; on a file
   system with sub-millisecond times (its time says so), within the last
   50 ms, five ticks of the kernel's coarsest clock. A cache
   that is missing, damaged (checksum) or of another format is ignored.
   The relay directory must be on a local file system. */

#ifndef POPRELAY_SCAN_H
#define POPRELAY_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include "ip.h"

typedef struct scanent_s scanent_t ;
struct scanent_s
{
  ip_t ip ;
  int64_t mtime ;   /* nanoseconds since the epoch */
  uint64_t who ;    /* with scan_t.who: stamp_who of its contents; else 0 */
} ;

/* Called once per bucket, in bucket order, with its stamps sorted by
   address. A non-zero return stops the scan and is returned. */
typedef int scan_stamps_fn (unsigned int bucket, scanent_t const *, size_t n, void *ctx) ;

/* Called for what is not a stamp in a bucket that is being re-read:
   kind SCAN_TEMP (a ".tmp." file, with its mtime) or SCAN_JUNK (with why).
   bucketfd is the open bucket directory. For a bucket that is itself
   junk (not a directory, or not as relaydir.h makes it), or missing
   (kind SCAN_MISSING), name is 0 and bucketfd the relay directory. */
#define SCAN_TEMP 1
#define SCAN_JUNK 2
#define SCAN_MISSING 3
typedef void scan_other_fn (unsigned int bucket, int bucketfd, char const *name, int kind, int64_t mtime, char const *why, void *ctx) ;

typedef struct scanstats_s scanstats_t ;
struct scanstats_s
{
  unsigned long stamps ;    /* stamps found */
  unsigned int reread ;     /* buckets read from the directory */
  unsigned int cached ;     /* buckets taken from the cache */
  unsigned long temps ;     /* temp files */
  unsigned long junk ;      /* things that are neither */
} ;

typedef struct scan_s scan_t ;
struct scan_s
{
  char const *cachedir ;    /* the cache's directory, made if missing; 0: no cache */
  int full ;                /* re-read every bucket */
  int64_t now ;             /* stamp_now() at the start */
  int64_t tempsbefore ;     /* re-read buckets holding temps older than this (0: never) */
  int rereadjunk ;          /* re-read buckets holding junk, so that it is reported again */
  int who ;                 /* read each stamp's contents for scanent_t.who */
  scan_stamps_fn *stamps ;
  scan_other_fn *other ;    /* may be 0 */
  void *ctx ;
  scanstats_t st ;
  int cachewarned ;
} ;

/* Scans the relay directory open at dirfd. Returns 0, the callback's
   non-zero value, or -1 with errno when a bucket cannot be read (the
   callbacks have then been called for the buckets before it only).
   A cache that cannot be written is reported by a warning, not an error. */
extern int scan_relay (scan_t *, int dirfd) ;

/* Calls fn for each name at the top of the relay directory that is
   neither a bucket nor the fifo directory: kind SCAN_TEMP for a directory
   relaydir.h was making (a ".tmp." name, with its mtime), SCAN_JUNK for
   anything else. Returns how many, or -1. */
typedef void scan_top_fn (char const *name, int kind, int64_t mtime, void *ctx) ;
extern long scan_topjunk (int dirfd, scan_top_fn *fn, void *ctx) ;

#endif
