/* rules.h: the administrator's static rules, in tcprules syntax.

   rules_parse turns the text an administrator feeds tcprules into the
   records tcprules would write, in the same order, byte for byte; a line
   tcprules would refuse is refused with its line number. rules_pick finds
   the record tcpserver would use for a client address, so that a grant can
   carry what the static rules give that address. */

#ifndef POPRELAY_RULES_H
#define POPRELAY_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <skalibs/stralloc.h>
#include <skalibs/genalloc.h>

/* Which tcprules splits the lines (see ip.h for the key forms):
   KEYS_UCSPI_TCP: the address ends at the first colon, and a line without
   a colon is ignored. KEYS_UCSPI_TCP_IPV6: the address ends at the first
   colon followed by "allow" or "deny", so that IPv6 keys can hold colons.
   KEYS_S6 (for s6-tcpserver-access, see s6rules.h): split as
   KEYS_UCSPI_TCP_IPV6, and a line without any colon is ignored, so that a
   file either tcprules accepts reads the same; records are picked as
   ucspi-tcp-ipv6's tcpserver picks them. */
#define KEYS_S6 2

/* A record, and the rules: read them through the functions below. */
typedef struct rule_s rule_t ;
struct rule_s
{
  size_t key ;        /* offset in rules_t.store */
  size_t data ;       /* offset in rules_t.store: what goes into the cdb */
  uint32_t keylen ;
  uint32_t datalen ;
  uint32_t line ;     /* 1-based line of the text it came from */
} ;

typedef struct rules_s rules_t ;
struct rules_s
{
  stralloc store ;
  genalloc recs ;     /* rule_t, in the order tcprules adds them */
  uint32_t *index ;   /* open hash: 1 + first record with a given key */
  size_t indexsize ;
  uint64_t prefixlens[2] ; /* bit n set: some key of length n ends in . or : */
  uint64_t keylens[2] ;    /* bit n set: some key is n long (127: or longer) */
  long deflt ;             /* the record of the empty key, or -1 */
  unsigned int hostrules ; /* records keyed by =host or info@ */
  int keys ;
} ;
#define RULES_ZERO { .store = STRALLOC_ZERO, .recs = GENALLOC_ZERO, .index = 0, .indexsize = 0, .prefixlens = { 0, 0 }, .keylens = { 0, 0 }, .deflt = -1, .hostrules = 0, .keys = 0 }

/* Parses text[0..len). Returns 1, or 0 with *line and *what saying
   where and why (errno ENOMEM: out of memory, *what is 0). */
extern int rules_parse (rules_t *, char const *text, size_t len, int keys, uint32_t *line, char const **what) ;
extern void rules_free (rules_t *) ;

/* Reads the file path whole into text, as one version of it: a file
   rewritten in place while it is read is read again, and one modified
   less than a second ago is used once it has stayed as it was for that
   second (by its modification time: a file made ahead and dated back is
   used at once), so that an editor writing it in place is never caught
   half way. Returns 1, or 0 with errno (EAGAIN: it kept changing; EINVAL:
   not a regular file). */
extern int rules_read (stralloc *text, char const *path) ;

/* The records, 0 to rules_n - 1, in the order tcprules writes them: the
   key, the data (what goes into the cdb; for i -1, no record, 0 with
   length 0), the line they came from. */
#define rules_n(r) genalloc_len(rule_t, &(r)->recs)
extern char const *rules_key (rules_t const *, size_t i, size_t *len) ;
extern char const *rules_data (rules_t const *, long i, size_t *len) ;
extern uint32_t rules_line (rules_t const *, size_t i) ;

/* The record tcpserver picks for a client whose TCPREMOTEIP is key, when
   it knows neither TCPREMOTEINFO nor TCPREMOTEHOST: the exact key, then
   the prefixes ending in "." (and ":" for ucspi-tcp-ipv6), longest first,
   then the empty key. Returns its index, or -1 if no record applies. */
extern long rules_pick (rules_t const *, char const *key, size_t keylen) ;

/* 1 if record i is the default rule, the one of the empty key; 1 if it
   denies. Both 0 for i -1. */
extern int rules_isdefault (rules_t const *, long i) ;
extern int rules_isdeny (rules_t const *, long i) ;
/* 1 if the data of a record denies (tcpserver's reading of it) */
#define rules_denies(data, len) ((len) >= 1 && (data)[0] == 'D')

/* Parses a list of variables in tcprules syntax (",NAME=<q>value<q>..."),
   appending "+NAME=value\0" for each to sa. Returns 1, or 0 with *what. */
extern int rules_scanvars (stralloc *sa, char const *s, size_t len, char const **what) ;

/* Builds the value of a grant record from a static record's data (0 for
   none): the static variables, the variables in extra (as made by
   rules_scanvars) replacing those of the same name, and RELAYCLIENT=""
   unless one of them sets RELAYCLIENT. Appends to sa; returns 1, or 0 on
   ENOMEM. */
extern int rules_grantvalue (stralloc *sa, char const *data, size_t datalen, char const *extra, size_t extralen) ;

#endif
