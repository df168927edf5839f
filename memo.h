/* memo.h: what each stamp of a bucket grants, kept by relay-open -w from
   one build to the next, so that a build judges only the stamps whose
   addresses are new.

   A bucket's memo holds, for each of its stamps in address order, the
   address, the verdict the stamp has while live and, for a grant, its
   cdb records (keys and values). It serves only while the static rules
   read the same, word for word (memo_rules drops every memo otherwise);
   relay-open's other settings are the service's own and never change.
   While the bucket holds the same addresses as when its memo was made
   (the watch's generation, watch.h), the memo serves stamp by stamp, by
   place; once they changed, the memo is made anew, taking each address it
   already had from the old one, judging only the new. Whether a stamp is
   live is decided at every build from its time, which a refresh moves:
   for a stamp the memo knows, that comparison is all a build does before
   copying its records. */

#ifndef POPRELAY_MEMO_H
#define POPRELAY_MEMO_H

#include <stddef.h>
#include <stdint.h>
#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include "cdbout.h"
#include "ip.h"
#include "stamp.h"

typedef struct memo_s memo_t ;
struct memo_s
{
  stralloc rules ;                /* the static rules' text they were made under */
  uint64_t gen[STAMP_BUCKETS] ;   /* the bucket's generation when made; 0: none */
  stralloc recs[STAMP_BUCKETS] ;  /* per stamp: address, verdict, records */
  genalloc at[STAMP_BUCKETS] ;    /* uint32_t: where each stamp's part starts */
  stralloc oldrecs ;              /* the memo being made anew: the old one */
  genalloc oldat ;
  size_t oldi ;                   /* the next of its stamps to look at */
} ;
#define MEMO_ZERO { .rules = STRALLOC_ZERO, .oldrecs = STRALLOC_ZERO, .oldat = GENALLOC_ZERO, .oldi = 0 }

/* Drops every memo unless they were made under this text of the static
   rules, which it keeps. Returns 1, or 0 with errno (no memo left). */
extern int memo_rules (memo_t *, char const *text, size_t len) ;

/* 1 if bucket b's memo is whole and made for generation gen, n stamps:
   it serves by place. */
extern int memo_valid (memo_t const *, unsigned int b, uint64_t gen, size_t n) ;

/* Making bucket b's memo anew: memo_start; then for each stamp, in
   address order, memo_again, which takes the stamp's part from the old
   memo if it had that address (1), or not (0); if not, memo_stamp with
   its verdict and memo_record (through grant_write) for each record;
   memo_done once every stamp is in, for the bucket's generation. Each
   returns 1, or 0 with errno, but memo_again -1 with errno. */
extern int memo_start (memo_t *, unsigned int b) ;
extern int memo_again (memo_t *, unsigned int b, ip_t const *) ;
extern int memo_stamp (memo_t *, unsigned int b, ip_t const *, int verdict) ;
extern stralloc *memo_of (memo_t *, unsigned int b) ;
extern int memo_record (stralloc *, char const *key, size_t klen, char const *val, size_t vlen) ;
extern void memo_done (memo_t *, unsigned int b, uint64_t gen) ;

/* Stamp i of bucket b: its verdict; memo_write adds its records to the
   cdb (1, or 0 with errno). */
extern int memo_verdict (memo_t const *, unsigned int b, size_t i) ;
extern int memo_write (memo_t const *, unsigned int b, size_t i, cdbout_t *) ;

extern void memo_free (memo_t *) ;

#endif
