/* conf.h: configuration, one set of POPRELAY_* variables for all three
   programs, so that "envdir /etc/poprelay prog" configures any of them.
   A command-line option sets the same field through the same parser as
   its variable. */

#ifndef POPRELAY_CONF_H
#define POPRELAY_CONF_H

#include <skalibs/stralloc.h>
#include "ip.h"

typedef struct conf_s conf_t ;
struct conf_s
{
  char const *dir ;      /* POPRELAY_DIR: the relay directory */
  char const *cache ;    /* POPRELAY_CACHE: relay-open's lock and scan cache */
  char const *rules ;    /* POPRELAY_RULES: static rules, tcprules syntax */
  char const *cdb ;      /* POPRELAY_CDB: the cdb tcpserver -x reads */
  char const *hosts ;    /* POPRELAY_HOSTS: relay directories pushed by other hosts, or 0 */
  unsigned int ttl ;     /* POPRELAY_TTL: seconds a grant lasts */
  unsigned int skew ;    /* POPRELAY_SKEW: seconds a stamp may be ahead */
  unsigned int grace ;   /* POPRELAY_GRACE: seconds before a temp file is abandoned */
  int keys ;             /* POPRELAY_TCPRULES: ucspi-tcp, ucspi-tcp-ipv6, s6-networking */
  ipnet_t never[IPNETS_MAX] ; /* POPRELAY_NEVER: prefixes never granted */
  unsigned int nnever ;
  stralloc env ;         /* POPRELAY_ENV: more variables for grants */
  unsigned int usermax ; /* POPRELAY_USERMAX: grants per user, 0 for no cap */
  int linklocal ;        /* POPRELAY_LINKLOCAL: 1 to grant link-local addresses */
  unsigned int hold ;    /* POPRELAY_HOLD: seconds a session may hold its grant, 0 for never (hold.h) */
} ;

#define CONF_DIR "/var/lib/poprelay"
#define CONF_CACHE "/var/cache/poprelay"
#define CONF_RULES "/etc/tcp.smtp"
#define CONF_CDB "/etc/tcp.smtp.cdb"
#define CONF_TTL 1800
#define CONF_SKEW 60
#define CONF_GRACE 600
#define CONF_TTLMAX 31536000
#define CONF_HOLDMAX 604800

extern void conf_defaults (conf_t *) ;

/* Sets the field named by a POPRELAY_* variable from its value.
   Returns 1, or 0 with *why saying what is wrong with the value. */
extern int conf_set (conf_t *, char const *name, char const *value, char const **why) ;

/* Reads each variable of names (0-terminated) that is set in the
   environment. Returns 1, or 0 with *bad the variable and *why. */
extern int conf_env (conf_t *, char const *const *names, char const **bad, char const **why) ;

/* The option that sets a variable has the same letter in every program:
   d dir, c cache, r rules, o cdb, t ttl, k skew, n never, e env,
   T tcprules, g grace, m usermax, L linklocal, H hosts, h hold. conf_setopt returns 1, 0 with *why for a bad
   value, or -1 if opt sets no variable. */
extern char const *conf_optvar (int opt) ;
extern int conf_setopt (conf_t *, int opt, char const *arg, char const **why) ;
/* conf_setopt for relay-open and relay-clean, which stop at a bad option:
   exit 100 with the usage for an unknown one, or "bad -X value: why". */
extern void conf_option (conf_t *, int opt, char const *arg, char const *usage) ;

/* A value as an error message shows it: printable bytes kept, others
   as "?", cut with "..." to fit size (at least 5) with its NUL, so that
   a message stays one short line whatever was given. Leaves errno alone. */
extern void conf_quote (char *buf, size_t size, char const *s) ;

/* Strict decimal: the whole of s, no sign, no leading zero, min..max. */
extern int conf_uint (char const *s, unsigned int min, unsigned int max, unsigned int *u) ;

#endif
