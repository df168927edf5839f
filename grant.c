/* grant.c: a stamp's verdict and its records; see grant.h. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <skalibs/strerr.h>
#include <skalibs/types.h>
#include "grant.h"
#include "memo.h"
#include "stamp.h"

extern char const *PROG ;

/* "FILE:LINE: what", fatal or a warning */
static void badline (grant_t const *g, uint32_t line, char const *what, int fatal)
{
  char num[UINT_FMT] ;
  num[uint_fmt(num, line)] = 0 ;
  strerr_warn(PROG, fatal ? ": fatal: " : ": warning: ", g->conf->rules, ":", num, ": ", what) ;
}

static void s6dead (uint32_t line, void *ctx)
{
  grant_t const *g = ctx ;
  char num[UINT_FMT] ;
  num[uint_fmt(num, line)] = 0 ;
  strerr_warnw(g->conf->rules, ":", num, ": this key matches no client address, under tcpserver or s6-tcpserver-access: left out") ;
}

/* the translation for s6-tcpserver-access: 0, or an exit code after a
   message */
static int loads6 (grant_t *g, int fatal)
{
  uint32_t line ;
  char const *what ;
  if (s6rules_make(&g->s6, &g->rules, g->conf->env.s, g->conf->env.len, &s6dead, g, &line, &what)) return 0 ;
  if (!what) { strerr_warnwusys("translate ", g->conf->rules, " for s6-tcpserver-access") ; return 111 ; }
  if (!line) { strerr_warn(PROG, fatal ? ": fatal: " : ": warning: ", "POPRELAY_ENV: ", what) ; return 100 ; }
  badline(g, line, what, fatal) ;
  return 100 ;
}

int grant_load (grant_t *g, conf_t const *conf, int64_t now, int listing, int fatal, int verbose)
{
  stralloc text = STRALLOC_ZERO ;
  uint32_t line ;
  char const *what ;
  size_t n ;
  memset(g, 0, sizeof *g) ;
  g->conf = conf ;
  g->now = now ;
  g->rules = (rules_t)RULES_ZERO ;
  g->s6 = (s6rules_t)S6RULES_ZERO ;
  if (!rules_read(&text, conf->rules))
  {
    if (errno == EAGAIN) strerr_warnw("unable to read ", conf->rules, ": it kept changing while it was read") ;
    else strerr_warnwusys("read ", conf->rules) ;
    stralloc_free(&text) ;
    return 111 ;
  }
  if (!rules_parse(&g->rules, text.s, text.len, conf->keys, &line, &what))
  {
    stralloc_free(&text) ;
    if (!what) { strerr_warnwusys("parse ", conf->rules) ; return 111 ; }
    badline(g, line, what, fatal) ;
    return 100 ;
  }
  g->text = text ;   /* for the memo (memo.h) */
  if (conf->keys == KEYS_S6 && !listing)
  {
    int code = loads6(g, fatal) ;
    if (code) return code ;
  }
  else if (conf->keys != KEYS_S6 && g->rules.hostrules && verbose)
    strerr_warni(conf->rules, " has host-name or TCPREMOTEINFO rules: tcpserver looks up an exact address before a host name, so a grant overrides =host rules for that address") ;
  n = rules_n(&g->rules) ;
  g->valoff = calloc(n + 1, sizeof(uint32_t)) ;
  g->vallen = calloc(n + 1, sizeof(uint32_t)) ;
  if (!g->valoff || !g->vallen) { strerr_warnwu("load the rules: out of memory") ; return 111 ; }
  return 0 ;
}

void grant_free (grant_t *g)
{
  rules_free(&g->rules) ;
  stralloc_free(&g->text) ;
  s6rules_free(&g->s6) ;
  stralloc_free(&g->values) ;
  stralloc_free(&g->conv) ;
  free(g->valoff) ;
  free(g->vallen) ;
  g->valoff = g->vallen = 0 ;
}

/* The keys of a live stamp for the target, each with its static record.
   A rule that names the address or a prefix of it and denies, in either
   of its texts, refuses the grant: it is the administrator's word on that
   address, whichever form tcpserver presents it in. A text that only the
   default rule denies (the ::ffff:a.b.c.d of rules written for IPv4)
   gets no key of its own. */
static int keysof (grant_t *g, scanent_t const *e, verdict_t *d)
{
  unsigned int kept = 0 ;
  long deflt = -1 ;
  if (g->conf->keys == KEYS_S6)
  {
    /* s6 keys match by bits, never as a prefix of text (see
       s6rules_grantkeys); the static record is the one ucspi-tcp-ipv6's
       tcpserver would pick, which s6rules_make translated to mean the
       same */
    d->keys.len[0] = ip_fmt_tcpserver(d->keys.s[0], &e->ip) ;
    d->nkeys = 1 ;
  }
  else if (!(d->nkeys = ip_keys(&d->keys, &e->ip, g->conf->keys, &d->why))) return GRANT_NOKEY ;
  for (unsigned int k = 0 ; k < d->nkeys ; k++)
  {
    long r = rules_pick(&g->rules, d->keys.s[k], d->keys.len[k]) ;
    if (rules_isdeny(&g->rules, r))
    {
      if (!rules_isdefault(&g->rules, r)) { d->rec[0] = r ; d->nkeys = 0 ; return GRANT_DENIED ; }
      deflt = r ;
      continue ;
    }
    if (kept != k)
    {
      memcpy(d->keys.s[kept], d->keys.s[k], d->keys.len[k] + 1) ;
      d->keys.len[kept] = d->keys.len[k] ;
    }
    d->rec[kept++] = r ;
  }
  d->nkeys = kept ;
  if (!kept) { d->rec[0] = deflt ; return GRANT_DENIED ; }
  return GRANT_GRANTED ;
}

void grant_judge_live (grant_t *g, scanent_t const *e, int over, verdict_t *d)
{
  d->nkeys = 0 ;
  d->why = 0 ;
  d->rec[0] = -1 ;
  if ((d->why = ip_never(&e->ip)) || (!g->conf->linklocal && (d->why = ip_linklocal(&e->ip)))) d->v = GRANT_NEVER ;
  else if (ipnets_match(g->conf->never, g->conf->nnever, &e->ip)) d->v = GRANT_LISTED ;
  else d->v = keysof(g, e, d) ;
  if (d->v == GRANT_GRANTED && over) d->v = GRANT_OVERCAP ;
}

void grant_judge (grant_t *g, scanent_t const *e, int over, verdict_t *d)
{
  int st = stamp_state(e->mtime, g->now, g->conf->ttl, g->conf->skew) ;
  if (st == STAMP_LIVE) { grant_judge_live(g, e, over, d) ; return ; }
  d->nkeys = 0 ;
  d->why = 0 ;
  d->rec[0] = -1 ;
  d->v = st == STAMP_EXPIRED ? GRANT_EXPIRED : GRANT_FUTURE ;
}

/* the value of a grant whose static record is rec, made once per record */
static int grantvalue (grant_t *g, long rec, char const **v, size_t *len)
{
  size_t i = (size_t)(rec + 1) ;
  if (!g->valoff[i])
  {
    size_t start = g->values.len, dlen ;
    char const *data = rules_data(&g->rules, rec, &dlen) ;
    if (g->conf->keys != KEYS_S6)
    {
      if (!rules_grantvalue(&g->values, data, dlen, g->conf->env.s, g->conf->env.len)) return 0 ;
    }
    else
    {
      char const *what ;   /* s6rules_make saw that every grant fits */
      g->conv.len = 0 ;
      if (!rules_grantvalue(&g->conv, data, dlen, g->conf->env.s, g->conf->env.len)
       || !s6rules_value(&g->values, g->conv.s, g->conv.len, &what)) return 0 ;
    }
    g->valoff[i] = (uint32_t)start + 1 ;
    g->vallen[i] = (uint32_t)(g->values.len - start) ;
  }
  *v = g->values.s + g->valoff[i] - 1 ;
  *len = g->vallen[i] ;
  return 1 ;
}

int grant_write (grant_t *g, cdbout_t *out, scanent_t const *e, verdict_t const *d, stralloc *memo)
{
  char const *val ;
  size_t vlen ;
  if (g->conf->keys == KEYS_S6)
  {
    /* s6's records replace the static ones keyed by that address */
    char key[2][S6RULES_KEYMAX] ;
    size_t len[2] ;
    unsigned int n = s6rules_grantkeys(key, len, &e->ip) ;
    if (!grantvalue(g, d->rec[0], &val, &vlen)) return 0 ;
    for (unsigned int k = 0 ; k < n ; k++)
      if (!cdbout_add(out, key[k], len[k], val, vlen)) return 0 ;
    s6rules_replace(&g->s6, d->rec[0]) ;
    return 1 ;
  }
  for (unsigned int k = 0 ; k < d->nkeys ; k++)
  {
    if (!grantvalue(g, d->rec[k], &val, &vlen)) return 0 ;
    if (memo ? !memo_record(memo, d->keys.s[k], d->keys.len[k], val, vlen) : !cdbout_add(out, d->keys.s[k], d->keys.len[k], val, vlen)) return 0 ;
  }
  return 1 ;
}

void grant_warn (grant_t const *g, scanent_t const *e, verdict_t const *d)
{
  char addr[IP_FMT] ;
  if (d->v == GRANT_GRANTED || d->v == GRANT_EXPIRED || d->v == GRANT_FUTURE) return ;
  ip_fmt(addr, &e->ip) ;
  switch (d->v)
  {
    case GRANT_NEVER : strerr_warnw("not granting ", addr, ": it is ", d->why) ; break ;
    case GRANT_LISTED : strerr_warnw("not granting ", addr, ": it is in POPRELAY_NEVER") ; break ;
    case GRANT_NOKEY : strerr_warnw("not granting ", addr, ": no key can grant it alone: ", d->why) ; break ;
    case GRANT_OVERCAP : strerr_warnw("not granting ", addr, ": its user has POPRELAY_USERMAX newer grants") ; break ;
    default :
    {
      char num[UINT_FMT] ;
      num[uint_fmt(num, rules_line(&g->rules, (size_t)d->rec[0]))] = 0 ;
      strerr_warnw("not granting ", addr, ": ", g->conf->rules, ":", num, " denies it") ;
    }
  }
}

int grant_statics (grant_t *g, cdbout_t *out)
{
  char const *key, *data ;
  size_t keylen, datalen ;
  if (g->conf->keys == KEYS_S6)
  {
    for (size_t i = 0 ; i < s6rules_n(&g->s6) ; i++)
      if (s6rules_get(&g->s6, i, &key, &keylen, &data, &datalen) && !cdbout_add(out, key, keylen, data, datalen)) return 0 ;
    return 1 ;
  }
  for (size_t i = 0 ; i < rules_n(&g->rules) ; i++)
  {
    key = rules_key(&g->rules, i, &keylen) ;
    data = rules_data(&g->rules, (long)i, &datalen) ;
    if (!cdbout_add(out, key, keylen, data, datalen)) return 0 ;
  }
  return 1 ;
}

size_t grant_nstatics (grant_t const *g)
{
  return rules_n(&g->rules) ;
}

/* the newest grants of each user first */
static int byuser (void const *a, void const *b)
{
  held_t const *x = *(held_t const *const *)a, *y = *(held_t const *const *)b ;
  if (x->e.who != y->e.who) return x->e.who < y->e.who ? -1 : 1 ;
  if (x->e.mtime != y->e.mtime) return x->e.mtime > y->e.mtime ? -1 : 1 ;
  return memcmp(x->e.ip.b, y->e.ip.b, 16) ;
}

int grant_cap (grant_t *g, held_t *h, size_t n, unsigned int usermax)
{
  held_t **p ;
  uint64_t who = 0 ;
  size_t run = 0 ;
  if (!n) return 1 ;
  p = malloc(n * sizeof *p) ;
  if (!p) return 0 ;
  for (size_t i = 0 ; i < n ; i++) p[i] = h + i ;
  qsort(p, n, sizeof *p, &byuser) ;
  for (size_t i = 0 ; i < n ; i++)
  {
    verdict_t d ;
    if (p[i]->e.who != who) { who = p[i]->e.who ; run = 0 ; }
    /* only what would be granted counts; a stamp whose user cannot be
       read counts as a user of its own */
    grant_judge(g, &p[i]->e, 0, &d) ;
    if (d.v == GRANT_GRANTED && who && ++run > usermax) p[i]->over = 1 ;
  }
  free(p) ;
  return 1 ;
}
