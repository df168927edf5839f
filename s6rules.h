/* s6rules.h: the static rules and the grants, as s6-tcpserver-access
   reads them.

   s6-tcpserver-access -x reads a cdb of s6 access rules. A key is
   ip4/ADDR_BITS or ip6/ADDR_BITS (IPv6 written as skalibs' ip6_fmt does,
   RFC 5952); for a client it tries ADDR_32 (or _128), then each shorter
   prefix down to _0, and the first key found decides: "D" denies, "A"
   followed by a big-endian 16-bit length, NAME=value\0 entries (at most
   4096 bytes), and a big-endian 16-bit length of a program to run instead
   (always 0 here) allows. No key found denies.

   s6rules_make translates the records rules_parse made (KEYS_S6: read
   as ucspi-tcp-ipv6's tcpserver uses them with -H -R) into s6 records
   that decide the same for every client address, and refuses, naming
   the line, what cannot mean the same: host-name and TCPREMOTEINFO rules,
   IPv6 prefixes that are not whole groups, variables s6 cannot set or
   hold. Keys that match no address under tcpserver (a missing dot,
   leading zeros, uppercase) are dropped, each line reported. An IPv4 key
   is written twice, ip4/ and ip6/::ffff:, so that a server presenting IPv4
   clients as v4-mapped IPv6 gets the same answers. */

#ifndef POPRELAY_S6RULES_H
#define POPRELAY_S6RULES_H

#include <stddef.h>
#include <stdint.h>
#include <skalibs/genalloc.h>
#include <skalibs/stralloc.h>
#include "ip.h"
#include "rules.h"

typedef struct s6rules_s s6rules_t ;
struct s6rules_s
{
  stralloc store ;        /* keys and values */
  genalloc recs ;         /* the records, in s6rules.c's own type */
  unsigned char *from ;   /* per static record: what its key is, see s6rules.c */
  size_t nfrom ;
} ;
#define S6RULES_ZERO { .store = STRALLOC_ZERO, .recs = GENALLOC_ZERO, .from = 0, .nfrom = 0 }

/* The limit s6 sets on a record's variables. */
#define S6RULES_ENVMAX 4096

/* Translates the records of rules. extra holds POPRELAY_ENV as
   rules_scanvars made it: every grant a rule may give (its variables,
   extra's, RELAYCLIENT) must fit too. dead, if not 0, is called once for
   each line whose keys match no address. Returns 1, or 0 with *what and
   *line (0: the fault is extra's); errno ENOMEM if *what is 0. */
typedef void s6rules_dead_fn (uint32_t line, void *ctx) ;
extern int s6rules_make (s6rules_t *, rules_t const *, char const *extra, size_t extralen, s6rules_dead_fn *dead, void *ctx, uint32_t *line, char const **what) ;
extern void s6rules_free (s6rules_t *) ;

/* The records made: s6rules_get gives record i, or returns 0 when a grant
   replaces it. s6rules_replace says that a grant is written for a client
   whose static record (rules_pick) is rec: the records of rec are replaced
   when it is keyed by that one address, so that no key is written twice
   (s6's directory form, s6-accessrules-fs-from-cdb, cannot hold that). */
extern size_t s6rules_n (s6rules_t const *) ;
extern int s6rules_get (s6rules_t const *, size_t i, char const **key, size_t *keylen, char const **data, size_t *datalen) ;
extern void s6rules_replace (s6rules_t *, long rec) ;

/* The keys of a grant for ip, each matching that one address: ip4/A_32
   and ip6/::ffff:X:Y_128 for IPv4, ip6/A_128 for IPv6. Returns how many. */
#define S6RULES_KEYMAX 64
extern unsigned int s6rules_grantkeys (char key[2][S6RULES_KEYMAX], size_t len[2], ip_t const *) ;

/* Appends to sa the s6 value meaning what the tcprules value data means to
   tcpserver: "D" if an entry denies, else "A", the variables (the last
   value of each name), no program. Returns 1, or 0 with *what (errno
   ENOMEM if *what is 0), sa as it was. */
extern int s6rules_value (stralloc *sa, char const *data, size_t len, char const **what) ;

#endif
