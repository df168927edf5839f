/* conf.c: POPRELAY_* variables and their defaults; see conf.h. */

#include <stdlib.h>
#include <string.h>
#include <skalibs/strerr.h>
#include "conf.h"
#include "rules.h"

void conf_defaults (conf_t *c)
{
  c->dir = CONF_DIR ;
  c->cache = CONF_CACHE ;
  c->rules = CONF_RULES ;
  c->cdb = CONF_CDB ;
  c->hosts = 0 ;
  c->ttl = CONF_TTL ;
  c->skew = CONF_SKEW ;
  c->grace = CONF_GRACE ;
  c->keys = KEYS_UCSPI_TCP ;
  c->nnever = 0 ;
  c->env = stralloc_zero ;
  c->usermax = 0 ;
  c->linklocal = 0 ;
  c->hold = 0 ;
}

int conf_uint (char const *s, unsigned int min, unsigned int max, unsigned int *u)
{
  unsigned long v = 0 ;
  size_t i = 0 ;
  if (!s[0] || (s[0] == '0' && s[1])) return 0 ;
  for ( ; s[i] ; i++)
  {
    if (s[i] < '0' || s[i] > '9' || i >= 10) return 0 ;
    v = v * 10 + (unsigned long)(s[i] - '0') ;
  }
  if (v < min || v > max) return 0 ;
  *u = (unsigned int)v ;
  return 1 ;
}

static int path (char const **field, char const *value, char const **why)
{
  if (value[0] != '/') { *why = "not an absolute path" ; return 0 ; }
  if (strlen(value) > 4000) { *why = "too long" ; return 0 ; }
  /* a path is named in messages: a newline there would forge a line */
  for (char const *p = value ; *p ; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) { *why = "holds a control character" ; return 0 ; }
  *field = value ;
  return 1 ;
}

int conf_set (conf_t *c, char const *name, char const *value, char const **why)
{
  if (!strcmp(name, "POPRELAY_DIR")) return path(&c->dir, value, why) ;
  if (!strcmp(name, "POPRELAY_CACHE")) return path(&c->cache, value, why) ;
  if (!strcmp(name, "POPRELAY_RULES")) return path(&c->rules, value, why) ;
  if (!strcmp(name, "POPRELAY_CDB")) return path(&c->cdb, value, why) ;
  if (!strcmp(name, "POPRELAY_HOSTS")) return path(&c->hosts, value, why) ;
  if (!strcmp(name, "POPRELAY_TTL"))
  {
    if (conf_uint(value, 1, CONF_TTLMAX, &c->ttl)) return 1 ;
    *why = "not a number of seconds from 1 to 31536000" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_SKEW"))
  {
    if (conf_uint(value, 0, 3600, &c->skew)) return 1 ;
    *why = "not a number of seconds from 0 to 3600" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_GRACE"))
  {
    if (conf_uint(value, 1, CONF_TTLMAX, &c->grace)) return 1 ;
    *why = "not a number of seconds from 1 to 31536000" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_TCPRULES"))
  {
    if (!strcmp(value, "ucspi-tcp")) c->keys = KEYS_UCSPI_TCP ;
    else if (!strcmp(value, "ucspi-tcp-ipv6")) c->keys = KEYS_UCSPI_TCP_IPV6 ;
    else if (!strcmp(value, "s6-networking")) c->keys = KEYS_S6 ;
    else { *why = "not ucspi-tcp, ucspi-tcp-ipv6 or s6-networking" ; return 0 ; }
    return 1 ;
  }
  if (!strcmp(name, "POPRELAY_NEVER"))
  {
    char const *bad ;
    size_t badlen ;
    int n = ipnets_scan(c->never, IPNETS_MAX, value, &bad, &badlen) ;
    if (n < 0)
    {
      static char msg[160] ;
      size_t k = 0 ;
      char const *head = "this entry is not an address, or an address/bits with no bits set after the prefix (256 entries at most): " ;
      strcpy(msg, head) ;
      k = strlen(msg) ;
      for (size_t i = 0 ; i < badlen && k < sizeof msg - 4 ; i++)
        msg[k++] = bad[i] > 0x20 && bad[i] < 0x7f ? bad[i] : '?' ;
      if (badlen && k >= sizeof msg - 4) { msg[k++] = '.' ; msg[k++] = '.' ; msg[k++] = '.' ; }
      msg[k] = 0 ;
      *why = msg ;
      return 0 ;
    }
    c->nnever = (unsigned int)n ;
    return 1 ;
  }
  if (!strcmp(name, "POPRELAY_ENV"))
  {
    c->env.len = 0 ;
    if (rules_scanvars(&c->env, value, strlen(value), why)) return 1 ;
    if (!*why) *why = "out of memory" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_USERMAX"))
  {
    if (conf_uint(value, 0, 65535, &c->usermax)) return 1 ;
    *why = "not a number of grants from 0 (no cap) to 65535" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_LINKLOCAL"))
  {
    if (!strcmp(value, "0") || !strcmp(value, "1")) { c->linklocal = value[0] == '1' ; return 1 ; }
    *why = "neither 0 (never grant link-local addresses) nor 1" ;
    return 0 ;
  }
  if (!strcmp(name, "POPRELAY_HOLD"))
  {
    if (conf_uint(value, 0, CONF_HOLDMAX, &c->hold)) return 1 ;
    *why = "not a number of seconds from 0 (no hold) to 604800" ;
    return 0 ;
  }
  *why = "not a poprelay variable" ;
  return 0 ;
}

char const *conf_optvar (int opt)
{
  switch (opt)
  {
    case 'd' : return "POPRELAY_DIR" ;
    case 'c' : return "POPRELAY_CACHE" ;
    case 'r' : return "POPRELAY_RULES" ;
    case 'o' : return "POPRELAY_CDB" ;
    case 't' : return "POPRELAY_TTL" ;
    case 'k' : return "POPRELAY_SKEW" ;
    case 'n' : return "POPRELAY_NEVER" ;
    case 'e' : return "POPRELAY_ENV" ;
    case 'T' : return "POPRELAY_TCPRULES" ;
    case 'g' : return "POPRELAY_GRACE" ;
    case 'm' : return "POPRELAY_USERMAX" ;
    case 'L' : return "POPRELAY_LINKLOCAL" ;
    case 'H' : return "POPRELAY_HOSTS" ;
    case 'h' : return "POPRELAY_HOLD" ;
    default : return 0 ;
  }
}

int conf_setopt (conf_t *c, int opt, char const *arg, char const **why)
{
  char const *name = conf_optvar(opt) ;
  return name ? conf_set(c, name, arg, why) : -1 ;
}

void conf_option (conf_t *c, int opt, char const *arg, char const *usage)
{
  char const *why ;
  int r = conf_setopt(c, opt, arg, &why) ;
  if (r < 0) strerr_dieusage(100, usage) ;
  if (!r)
  {
    char o[3] = { '-', (char)opt, 0 }, q[80] ;
    conf_quote(q, sizeof q, arg) ;
    strerr_dief(100, "bad ", o, " ", q, ": ", why) ;
  }
}

void conf_quote (char *buf, size_t size, char const *s)
{
  size_t k = 0 ;
  for ( ; *s && k + 4 < size ; s++) buf[k++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?' ;
  if (*s) { buf[k++] = '.' ; buf[k++] = '.' ; buf[k++] = '.' ; }
  buf[k] = 0 ;
}

int conf_env (conf_t *c, char const *const *names, char const **bad, char const **why)
{
  for ( ; *names ; names++)
  {
    char const *v = getenv(*names) ;
    if (v && !conf_set(c, *names, v, why)) { *bad = *names ; return 0 ; }
  }
  return 1 ;
}
