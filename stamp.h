/* stamp.h: stamp files in the relay directory, and when a grant is live.

   A grant is one regular file, DIR/BB/ADDR: ADDR is the client address in
   canonical text (ip_fmt), BB the address's bucket in two hex digits.
   Its modification time is the time of the grant; its contents say who and
   how, for the administrator. pop3-wrapper writes it, relay-open compiles
   it, relay-clean removes it, and all three judge its age with stamp_state.

   Buckets keep each directory small, so that a rebuild only re-reads the
   buckets whose directory changed (see scan.h). Names starting with a dot
   are never stamps: ".tmp.*" are files being written. */

#ifndef POPRELAY_STAMP_H
#define POPRELAY_STAMP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <skalibs/stralloc.h>
#include "ip.h"

#define STAMP_BUCKETS 256
#define STAMP_TMPPREFIX ".tmp."
#define STAMP_TMPPREFIXLEN 5

extern unsigned int stamp_bucket (ip_t const *) ;
extern void stamp_bucketname (char *s, unsigned int bucket) ;  /* 3 bytes */
/* 1 and the bucket if name is a bucket's name (two lowercase hex digits) */
extern int stamp_scanbucketname (char const *name, unsigned int *bucket) ;
/* 1 if name[0..len) is the canonical stamp name of an address in bucket */
extern int stamp_scanname (ip_t *, char const *name, size_t len, unsigned int bucket) ;

/* The age rule. Times are nanoseconds since the epoch.
   LIVE: now < mtime + ttl, and mtime is at most skew seconds ahead of now.
   EXPIRED: now >= mtime + ttl.
   FUTURE: mtime is more than skew seconds ahead of now (the clock went
   back, or the file was touched by hand): never trusted, removed like an
   expired stamp. */
#define STAMP_LIVE 0
#define STAMP_EXPIRED 1
#define STAMP_FUTURE 2
extern int stamp_state (int64_t mtime, int64_t now, unsigned int ttl, unsigned int skew) ;
#define STAMP_SECOND ((int64_t)1000000000)
#define stamp_expiry(mtime, ttl) ((mtime) + (int64_t)(ttl) * STAMP_SECOND)

/* The wall clock, and a file time, in nanoseconds since the epoch. */
extern int64_t stamp_now (void) ;
extern int64_t stamp_ns (struct timespec const *) ;

/* What a stamp says, besides its name and time. Fields are NUL-terminated
   and hold any byte but NUL; in the file they are escaped (\xHH). */
#define STAMP_FIELDMAX 256
typedef struct stampinfo_s stampinfo_t ;
struct stampinfo_s
{
  char user[STAMP_FIELDMAX] ;     /* login name, from the authenticator */
  char uid[24] ;                  /* real uid pop3-wrapper ran as */
  char time[24] ;                 /* seconds since the epoch at login */
  char service[STAMP_FIELDMAX] ;  /* pop3, imap, or the next program */
  char local[IP_FMT + 8] ;        /* server address and port */
  char via[STAMP_FIELDMAX] ;      /* where the address was read */
  char holder[32] ;               /* "PID:START" of the process holding it (hold.h) */
} ;

/* "name value\n" lines. stamp_parse accepts exactly what stamp_fmt can
   write: known names in any order, each once, values escaped; returns 1
   or 0. */
extern int stamp_fmt (stralloc *, stampinfo_t const *) ;
/* Appends the first max bytes of the string v, escaped as in a stamp. */
extern int stamp_escape (stralloc *, char const *v, size_t max) ;
extern int stamp_parse (stampinfo_t *, char const *s, size_t len) ;

/* Who a grant is for, to count a user's grants: a hash of the login
   name, or of the uid when there is none; never 0. */
extern uint64_t stamp_who (stampinfo_t const *) ;

/* A place in the relay directory, for a message: dir, "/" bname when
   bname is not 0, "/" name when name is not 0, and a NUL; name, which
   comes from the file system, escaped as stamp_escape does, so that no
   file name can forge a log line. Returns 1, or 0 on ENOMEM. */
extern int stamp_where (stralloc *, char const *dir, char const *bname, char const *name) ;
/* The fields by number, 0 to STAMP_NFIELDS - 1, in the order stamp_fmt
   writes them: the name, and the buffer with its size in *max. */
#define STAMP_NFIELDS 7
extern char const *const stamp_fieldnames[STAMP_NFIELDS] ;
extern char *stamp_field (stampinfo_t *, unsigned int i, size_t *max) ;
/* Room for the longest stamp stamp_fmt writes: every field full and every
   byte escaped is about 3.6 KB. */
#define STAMP_SIZEMAX 4096

/* The bucket lock: pop3-wrapper holds it while it writes a stamp, and
   relay-clean while it reads a stamp's time again and removes it, so that
   a grant refreshed meanwhile is never removed. A mail user can stop
   their own pop3-wrapper while it holds the lock, so nobody waits for it
   long: stamp_lock tries for at most ms milliseconds. Returns 1, or 0
   with errno (ETIMEDOUT: still held by someone else). */
extern int stamp_lock (int bucketfd, unsigned int ms) ;
extern void stamp_unlock (int bucketfd) ;

/* Writes a stamp atomically: DIR/BB/.tmp.PID.RANDOM, mode 0640 whatever
   the umask, then renamed onto name. Never follows a symlink, never leaves
   the temp file behind. Returns 1, or 0 with errno. */
extern int stamp_write (int bucketfd, char const *name, char const *s, size_t len) ;

#endif
