/* grant.h: what a stamp grants, judged against the static rules, and the
   records it adds to the cdb.

   A grant_t is one build's view of the static rules (rules.h) and the
   settings, and for s6-tcpserver-access their translation (s6rules.h).
   grant_judge gives a stamp's verdict and, for a grant, its keys (ip.h),
   each with the static record tcpserver would use for that text without
   the grant; grant_write adds a grant's records to the cdb, carrying that
   record's variables; grant_statics adds the static records after the
   grants. grant_cap applies POPRELAY_USERMAX to stamps held until every
   one is known. */

#ifndef POPRELAY_GRANT_H
#define POPRELAY_GRANT_H

#include <stdint.h>
#include <skalibs/stralloc.h>
#include "cdbout.h"
#include "conf.h"
#include "ip.h"
#include "rules.h"
#include "s6rules.h"
#include "scan.h"

/* verdicts: what relay-open -l prints, and what a build does */
#define GRANT_GRANTED 0
#define GRANT_EXPIRED 1   /* relay-clean's business, no message */
#define GRANT_FUTURE 2    /* likewise */
#define GRANT_NEVER 3     /* not a client address (ip_never, ip_linklocal) */
#define GRANT_LISTED 4    /* in POPRELAY_NEVER */
#define GRANT_NOKEY 5     /* no key grants that address alone */
#define GRANT_DENIED 6    /* a static rule denies it */
#define GRANT_OVERCAP 7   /* its user has POPRELAY_USERMAX newer grants */
#define GRANT_N 8

typedef struct verdict_s verdict_t ;
struct verdict_s
{
  int v ;
  char const *why ;      /* GRANT_NEVER, GRANT_NOKEY: the reason */
  ipkeys_t keys ;        /* GRANT_GRANTED: its keys... */
  unsigned int nkeys ;
  long rec[IP_KEYS] ;    /* ...and their static records; GRANT_DENIED: rec[0] denies */
} ;

typedef struct grant_s grant_t ;
struct grant_s
{
  conf_t const *conf ;
  int64_t now ;
  rules_t rules ;
  stralloc text ;         /* the static rules as read */
  s6rules_t s6 ;
  stralloc values ;       /* grant values, one per static record picked */
  uint32_t *valoff ;      /* 1 + offset in values, per record; [0] is "no record" */
  uint32_t *vallen ;
  stralloc conv ;
} ;

/* Reads and parses conf's static rules (and translates them for
   s6-tcpserver-access, unless listing). A bad line is reported as
   "FILE:LINE: what", the word "fatal" when fatal is set, "warning"
   otherwise. Returns 0, or the exit code after a message (100 bad rules,
   111 a system call failed). */
extern int grant_load (grant_t *, conf_t const *, int64_t now, int listing, int fatal, int verbose) ;
extern void grant_free (grant_t *) ;

/* The verdict on one stamp; over: POPRELAY_USERMAX refuses it.
   grant_judge_live gives the verdict it has while live, whatever its
   time says (for the memo, memo.h). */
extern void grant_judge (grant_t *, scanent_t const *, int over, verdict_t *) ;
extern void grant_judge_live (grant_t *, scanent_t const *, int over, verdict_t *) ;
/* The records of a grant (verdict GRANT_GRANTED), added to the cdb, or,
   with memo, to the memo (memo_record) instead. 1, or 0 with errno. */
extern int grant_write (grant_t *, cdbout_t *, scanent_t const *, verdict_t const *, stralloc *memo) ;
/* The warning for a stamp that grants nothing, where one is due. */
extern void grant_warn (grant_t const *, scanent_t const *, verdict_t const *) ;
/* The static records, after the grants. 1, or 0 with errno. */
extern int grant_statics (grant_t *, cdbout_t *) ;
extern size_t grant_nstatics (grant_t const *) ;

/* A stamp held until the cap is known: POPRELAY_USERMAX counts every
   user's stamps across the whole relay directory. */
typedef struct held_s held_t ;
struct held_s
{
  scanent_t e ;
  unsigned int bucket ;
  int over ;
} ;
/* Sets over on each held stamp that would grant but whose user has
   usermax newer grants. Returns 1, or 0 on ENOMEM. */
extern int grant_cap (grant_t *, held_t *, size_t n, unsigned int usermax) ;

#endif
