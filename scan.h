/* scan.h: reading a relay directory, re-reading only what changed.

   A bucket directory changes (mtime, ctime) whenever a stamp is created,
   replaced or removed in it, and a stamp's time is fixed when it is
   renamed in. So the stamps of a bucket whose directory still has the
   dev, inode, mtime and ctime recorded at the last scan are the ones
   recorded then. The cache holds, per bucket, that record and the stamps
   (address, mtime); a scan stats the bucket directories and reads again
   only those that changed, instead of stat'ing every stamp. The cache is
   a directory with one file per bucket, rewritten only when that bucket
   was read again.

   A bucket changed within the last second is not recorded, since a second
   change in the same clock tick would leave its mtime as it was; on a file
   system with sub-millisecond times (its time says so), within the last
   50 ms, five ticks of the kernel's coarsest clock. A cache that is
   missing, damaged (checksum) or of another format is ignored. Its one
   assumption: a stamp's time changes only when the file is replaced (a
   stamp touched by hand is seen by relay-open -w, or with -f).

   A bucket that is not a directory, or not as relaydir.h makes it, is
   junk: its stamps grant nothing. */

#ifndef POPRELAY_SCAN_H
#define POPRELAY_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <skalibs/stralloc.h>
#include "ip.h"

typedef struct scanent_s scanent_t ;
struct scanent_s
{
  ip_t ip ;
  int64_t mtime ;   /* nanoseconds since the epoch */
  uint64_t who ;    /* with scan_t.who: stamp_who of its contents; else 0 */
} ;

/* What a scan finds that is not a stamp, for the caller's aside: kind
   SCAN_TEMP (a ".tmp." file being written, with its mtime), SCAN_JUNK
   (anything else, with why), SCAN_MISSING (a bucket that is not there).
   fd is the open bucket; for a bucket that is itself junk or missing,
   name is 0 and fd the relay directory. */
#define SCAN_STAMP 0
#define SCAN_TEMP 1
#define SCAN_JUNK 2
#define SCAN_MISSING 3
#define SCAN_GONE 4     /* scan_name: no such name */
typedef void scan_aside_fn (unsigned int bucket, int fd, char const *name, int kind, int64_t mtime, char const *why, void *ctx) ;

/* What the caller asks for. */
typedef struct scan_s scan_t ;
struct scan_s
{
  char const *cachedir ;    /* the cache's directory, made if missing; 0: no cache */
  int full ;                /* re-read every bucket */
  int64_t now ;             /* stamp_now() at the start */
  int64_t tempsbefore ;     /* re-read buckets holding temps older than this (0: never) */
  int rereadjunk ;          /* re-read buckets holding junk, so that it is reported again */
  int who ;                 /* read each stamp's contents for scanent_t.who */
  scan_aside_fn *aside ;    /* may be 0 */
  void *ctx ;
} ;

typedef struct scanstats_s scanstats_t ;
struct scanstats_s
{
  unsigned long stamps ;    /* stamps found */
  unsigned int reread ;     /* buckets read from the directory */
  unsigned int cached ;     /* buckets taken from the cache */
  unsigned long temps ;     /* temp files */
  unsigned long junk ;      /* things that are neither */
} ;

/* A scan under way: scan.c's own. */
typedef struct scanner_s scanner_t ;
struct scanner_s
{
  scan_t how ;
  int dirfd ;
  struct stat dir ;
  int warned ;              /* the cache's trouble said once */
  stralloc cached, path, tmp ;
  scanstats_t st ;
} ;

/* Starts a scan of the relay directory open at dirfd: checks the cache
   (ours, nobody else's to write, or not used, with a warning). Returns
   1, or 0 with errno. */
extern int scan_start (scanner_t *, scan_t const *, int dirfd) ;

/* The stamps of bucket b, sorted by address, into ents (scanent_t),
   from the cache or read again. Returns 1, or 0 with errno when the
   bucket cannot be read. */
extern int scan_bucket (scanner_t *, unsigned int b, stralloc *ents) ;

/* Bucket b read again from the directory, whatever the cache says; bfd
   the open bucket, or -1 to open it. Returns 1, or 0 with errno. */
extern int scan_readbucket (scanner_t *, unsigned int b, int bfd, stralloc *ents) ;

/* Ends a scan: its figures, and what it holds freed. */
extern void scan_end (scanner_t *, scanstats_t *) ;

/* One name in the open bucket b, as a scan judges it: SCAN_STAMP with e
   filled, SCAN_TEMP with e->mtime, SCAN_JUNK with *why, SCAN_GONE, or
   -1 with errno. */
extern int scan_name (int bucketfd, unsigned int b, char const *name, int who, scanent_t *e, char const **why) ;

/* 1 if a directory time t is far enough behind now (both nanoseconds)
   that any later change in it will show as a later time: the rule above
   by which a bucket is recorded in the cache, for whoever else records
   buckets by their times (relay-publish). */
extern int scan_settled (int64_t t, int64_t now) ;

/* Calls fn for each name at the top of the relay directory that is
   neither a bucket, nor the fifo directory, nor a sending host's
   incoming directory: kind SCAN_TEMP for a directory
   relaydir.h was making (a ".tmp." name, with its mtime), SCAN_JUNK for
   anything else. Returns how many, or -1. */
typedef void scan_top_fn (char const *name, int kind, int64_t mtime, void *ctx) ;
extern long scan_topjunk (int dirfd, scan_top_fn *fn, void *ctx) ;

#endif
