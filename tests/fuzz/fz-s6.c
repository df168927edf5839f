/* fz-s6: the cdb relay-open writes for s6-tcpserver-access, against s6's
   own lookup (libs6, the very functions s6-tcpserver-access calls).

   The first byte picks what the rest is. Bit 0 clear: a client address
   (its text, or 16 raw bytes when it is not one). Each key
   s6rules_grantkeys writes for it
   - is the first key libs6's keycheck tries for that address (ip4 for
     IPv4; ip6 for IPv6, and for IPv4 in its v4-mapped form),
   - ends in the full length, which keycheck only tries with the whole
     address, and its address text reads back to that address,
   - is tried for no address one bit away, in either family:
   so a grant opens its one address and no other.

   Bit 0 set: a rules text (bit 1: with POPRELAY_ENV variables). Then
   - rules_parse with KEYS_S6 gives the records that KEYS_UCSPI_TCP_IPV6
     gives once the lines without a colon are blanked, and the records
     KEYS_UCSPI_TCP gives whenever that accepts the text;
   - if s6rules_make accepts it, its records, after one grant (for an
     address drawn from the rules, carrying its static record's variables,
     as relay-open makes it), go into a cdb (skalibs' cdbmake); no key is
     written twice; and for addresses drawn from the keys of the rules
     (each address, the network address of each prefix, their neighbours
     one bit away on both sides of every prefix boundary, IPv4 also as
     v4-mapped IPv6), libs6's
     lookup over that cdb decides what tcpserver decides from the rules:
     the record rules_pick picks for the text ucspi-tcp-ipv6 writes (the
     grant's value for the granted address), read as tcpserver reads it (a
     "D" entry denies; "+NAME=value" entries set, the last one wins;
     nothing picked allows with nothing set). Same allow or deny, same
     variables, no program; never "no key found". */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <skalibs/cdb.h>
#include <skalibs/cdbmake.h>
#include <skalibs/ip46.h>
#include <s6/accessrules.h>
#include "ip.h"
#include "rules.h"
#include "s6rules.h"
#include "fz.h"

static uint8_t const *data ;
static size_t size ;
static char dir[64], cdbfile[96] ;

static void cleanup (void)
{
  unlink(cdbfile) ;
  rmdir(dir) ;
}

static void setup (void)
{
  char const *shm = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm" ;
  snprintf(dir, sizeof dir, "%s/poprelay-fz6.XXXXXX", shm) ;
  if (!mkdtemp(dir)) { perror("mkdtemp") ; exit(111) ; }
  snprintf(cdbfile, sizeof cdbfile, "%s/rules.cdb", dir) ;
  atexit(&cleanup) ;
}

/* --- the keys libs6 tries for an address --- */

#define MAXKEYS 130
typedef struct tried_s tried_t ;
struct tried_s
{
  unsigned int n ;
  char key[MAXKEYS][S6RULES_KEYMAX] ;
  size_t len[MAXKEYS] ;
} ;

static s6_accessrules_result_t record (char const *key, size_t len, void const *arg, s6_accessrules_params_t *params)
{
  tried_t *t = (tried_t *)arg ;
  (void)params ;
  if (t->n < MAXKEYS && len < S6RULES_KEYMAX) { memcpy(t->key[t->n], key, len) ; t->len[t->n++] = len ; }
  return S6_ACCESSRULES_NOTFOUND ;
}

/* six: the ip6 lookup of the 16 bytes; else the ip4 lookup of the last 4 */
static void tried (tried_t *t, ip_t const *ip, int six)
{
  s6_accessrules_params_t params = S6_ACCESSRULES_PARAMS_ZERO ;
  t->n = 0 ;
  if (six) s6_accessrules_keycheck_ip6(ip->b, t, &params, &record) ;
  else s6_accessrules_keycheck_ip4(ip->b + 12, t, &params, &record) ;
  s6_accessrules_params_free(&params) ;
}

static int intried (tried_t const *t, char const *key, size_t len)
{
  for (unsigned int i = 0 ; i < t->n ; i++) if (t->len[i] == len && !memcmp(t->key[i], key, len)) return 1 ;
  return 0 ;
}

static void flip (ip_t *x, ip_t const *ip, unsigned int bit)
{
  *x = *ip ;
  x->b[bit >> 3] ^= (unsigned char)(0x80 >> (bit & 7)) ;
}

static void check_grantkeys (ip_t const *ip)
{
  char key[2][S6RULES_KEYMAX] ;
  size_t len[2] ;
  unsigned int n = s6rules_grantkeys(key, len, ip) ;
  int is4 = ip_is4(ip) ;
  FZ_CHECK(n == (is4 ? 2u : 1u), "%u grant keys", n) ;
  for (unsigned int k = 0 ; k < n ; k++)
  {
    int six = !is4 || k == 1 ;
    tried_t t ;
    ip_t back ;
    char const *us = memchr(key[k], '_', len[k]) ;
    tried(&t, ip, six) ;
    FZ_CHECK(t.n && t.len[0] == len[k] && !memcmp(t.key[0], key[k], len[k]), "grant key \"%.*s\" is not the first key s6 tries (\"%.*s\")", (int)len[k], key[k], (int)t.len[0], t.key[0]) ;
    FZ_CHECK(us && !memcmp(us, six ? "_128" : "_32", len[k] - (size_t)(us - key[k])) && len[k] - (size_t)(us - key[k]) == (six ? 4u : 3u), "grant key \"%.*s\" is not a whole address", (int)len[k], key[k]) ;
    FZ_CHECK(!memcmp(key[k], six ? "ip6/" : "ip4/", 4) && ip_scan(&back, key[k] + 4, (size_t)(us - key[k]) - 4) && ip_equal(&back, ip), "grant key \"%.*s\" does not read back to the address", (int)len[k], key[k]) ;
    for (unsigned int i = 1 ; i < t.n ; i++)
      FZ_CHECK(t.len[i] != len[k] || memcmp(t.key[i], key[k], len[k]), "s6 tries grant key \"%.*s\" again at step %u", (int)len[k], key[k], i) ;
    for (unsigned int bit = six ? 0 : 96 ; bit < 128 ; bit++)
    {
      ip_t x ;
      flip(&x, ip, bit) ;
      tried(&t, &x, six) ;
      FZ_CHECK(!intried(&t, key[k], len[k]), "grant key \"%.*s\" is tried for the address one bit (%u) away", (int)len[k], key[k], bit) ;
      if (!six)
      {
        tried(&t, &x, 1) ;
        FZ_CHECK(!intried(&t, key[k], len[k]), "grant key \"%.*s\" is tried for an IPv6 address", (int)len[k], key[k]) ;
      }
    }
  }
}

/* --- decisions --- */

#define MAXV 64
typedef struct decision_s decision_t ;
struct decision_s
{
  int kind ;                  /* 'A', 'D', or 'N' (no key), 'E' (error) */
  unsigned int n ;
  char const *var[MAXV] ;     /* "NAME=value", each name once */
  size_t len[MAXV] ;
  int overflow ;
  int exec ;
} ;

static size_t namelen (char const *s, size_t len)
{
  char const *eq = memchr(s, '=', len) ;
  return eq ? (size_t)(eq - s) : len ;
}

/* NAME=value sets, NAME alone unsets; the last one wins */
static void setv (decision_t *d, char const *s, size_t len)
{
  size_t nl = namelen(s, len) ;
  for (unsigned int i = 0 ; i < d->n ; i++)
    if (namelen(d->var[i], d->len[i]) == nl && !memcmp(d->var[i], s, nl))
    {
      d->n-- ;
      d->var[i] = d->var[d->n] ; d->len[i] = d->len[d->n] ;
      break ;
    }
  if (nl == len) return ;
  if (d->n == MAXV) { d->overflow = 1 ; return ; }
  d->var[d->n] = s ; d->len[d->n++] = len ;
}

/* a tcprules record as tcpserver reads it */
static void tcpdecide (decision_t *d, char const *v, size_t len)
{
  memset(d, 0, sizeof *d) ;
  d->kind = 'A' ;
  for (;;)
  {
    char const *z = memchr(v, 0, len) ;
    size_t elen ;
    if (!z) break ;
    elen = (size_t)(z - v) ;
    if (elen && v[0] == 'D') d->kind = 'D' ;
    else if (elen && v[0] == '+' && memchr(v + 1, '=', elen - 1)) setv(d, v + 1, elen - 1) ;
    v += elen + 1 ; len -= elen + 1 ;
  }
  if (d->kind == 'D') d->n = 0 ;
}

static void s6decide (decision_t *d, s6_accessrules_result_t r, s6_accessrules_params_t const *p)
{
  memset(d, 0, sizeof *d) ;
  d->kind = r == S6_ACCESSRULES_ALLOW ? 'A' : r == S6_ACCESSRULES_DENY ? 'D' : r == S6_ACCESSRULES_NOTFOUND ? 'N' : 'E' ;
  if (r != S6_ACCESSRULES_ALLOW) return ;
  for (size_t i = 0 ; i < p->env.len ; i += strlen(p->env.s + i) + 1) setv(d, p->env.s + i, strlen(p->env.s + i)) ;
  d->exec = p->exec.len > 0 ;
}

static int same (decision_t const *a, decision_t const *b)
{
  if (a->kind != b->kind || a->n != b->n || a->overflow || b->overflow || a->exec || b->exec) return 0 ;
  for (unsigned int i = 0 ; i < a->n ; i++)
  {
    unsigned int j = 0 ;
    while (j < b->n && (b->len[j] != a->len[i] || memcmp(b->var[j], a->var[i], a->len[i]))) j++ ;
    if (j == b->n) return 0 ;
  }
  return 1 ;
}

/* --- a rules text --- */

/* KEYS_S6 against the two tcprules flavours */
static void check_parse (char const *text, size_t len)
{
  rules_t a = RULES_ZERO, b = RULES_ZERO ;
  uint32_t la, lb ;
  char const *wa, *wb ;
  char *blanked = malloc(len + 1) ;
  size_t pos = 0 ;
  int oka, okb ;
  if (!blanked) abort() ;
  while (pos < len)
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    size_t end = nl ? (size_t)(nl - text) + 1 : len ;
    if (memchr(text + pos, ':', end - pos)) memcpy(blanked + pos, text + pos, end - pos) ;
    else { memset(blanked + pos, ' ', end - pos) ; if (nl) blanked[end - 1] = '\n' ; }
    pos = end ;
  }
  oka = rules_parse(&a, text, len, KEYS_S6, &la, &wa) ;
  for (int flavour = 0 ; flavour < 2 ; flavour++)
  {
    okb = flavour ? rules_parse(&b, blanked, len, KEYS_UCSPI_TCP_IPV6, &lb, &wb) : rules_parse(&b, text, len, KEYS_UCSPI_TCP, &lb, &wb) ;
    if (flavour || okb)
    {
      FZ_CHECK(oka == okb, "KEYS_S6 %s, %s %s", oka ? "accepts" : "refuses", flavour ? "ucspi-tcp-ipv6 (no colonless lines)" : "ucspi-tcp", okb ? "accepts" : "refuses") ;
      if (!oka) FZ_CHECK(la == lb && !strcmp(wa, wb), "KEYS_S6 refuses line %u, ucspi-tcp-ipv6 line %u", la, lb) ;
      else
      {
        FZ_CHECK(rules_n(&a) == rules_n(&b), "KEYS_S6 makes %zu records, %s %zu", rules_n(&a), flavour ? "ucspi-tcp-ipv6" : "ucspi-tcp", rules_n(&b)) ;
        for (size_t i = 0 ; i < rules_n(&a) ; i++)
        {
          rule_t const *x = RREC(&a, i), *y = RREC(&b, i) ;
          FZ_CHECK(x->keylen == y->keylen && !memcmp(RKEY(&a, x), RKEY(&b, y), x->keylen)
                && x->datalen == y->datalen && !memcmp(RDATA(&a, x), RDATA(&b, y), x->datalen) && x->line == y->line,
                   "record %zu differs from the other flavour's", i) ;
        }
      }
    }
    rules_free(&b) ;
    b = (rules_t)RULES_ZERO ;
  }
  rules_free(&a) ;
  free(blanked) ;
}

#define MAXADDR 600
static ip_t addrs[MAXADDR] ;
static unsigned int naddrs ;

static void addaddr (ip_t const *ip)
{
  if (naddrs < MAXADDR) addrs[naddrs++] = *ip ;
}

/* the address key stands for, completed into a network address */
static void fromkey (char const *k, size_t len)
{
  static char const *const tails[] = { "", "0", "0.0", "0.0.0", ":", "1", ":1", "::1", 0 } ;
  char t[IP_TEXTMAX + 8] ;
  for (unsigned int i = 0 ; tails[i] ; i++)
  {
    size_t tl = strlen(tails[i]) ;
    ip_t ip ;
    if (len + tl > IP_TEXTMAX) break ;
    memcpy(t, k, len) ;
    memcpy(t + len, tails[i], tl) ;
    if (!ip_scan(&ip, t, len + tl)) continue ;
    addaddr(&ip) ;
    /* on both sides of every boundary a key can have (each 8 bits of
       IPv4, each 16 of IPv6), and the first and last bits */
    for (unsigned int bit = ip_is4(&ip) ? 96 : 0, step = ip_is4(&ip) ? 8 : 16 ; bit < 128 ; bit += step)
    {
      ip_t x ;
      flip(&x, &ip, bit) ; addaddr(&x) ;
      flip(&x, &ip, bit + step - 1) ; addaddr(&x) ;
    }
  }
}

typedef struct keyref_s keyref_t ;
struct keyref_s { char const *s ; size_t len ; } ;

static int keycmp (void const *a, void const *b)
{
  keyref_t const *x = a, *y = b ;
  int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len) ;
  return c ? c : x->len < y->len ? -1 : x->len > y->len ;
}

/* the grant's records, then the static ones relay-open writes; no key
   twice, neither two static ones nor a grant's and a static one */
static void writecdb (s6rules_t const *s, char const *gkey[2], size_t const gklen[2], unsigned int ng, char const *gval, size_t gvlen)
{
  cdbmaker c = CDBMAKER_ZERO ;
  size_t n = 0 ;
  keyref_t *keys = malloc((s6rules_n(s) + 2) * sizeof *keys) ;
  int fd = open(cdbfile, O_WRONLY | O_CREAT | O_TRUNC, 0600) ;
  if (!keys || fd == -1 || !cdbmake_start(&c, fd)) { perror(cdbfile) ; abort() ; }
  for (unsigned int k = 0 ; k < ng ; k++)
  {
    if (!cdbmake_add(&c, gkey[k], (unsigned int)gklen[k], gval, (unsigned int)gvlen)) { perror("cdbmake_add") ; abort() ; }
    keys[n].s = gkey[k] ; keys[n++].len = gklen[k] ;
  }
  for (size_t i = 0 ; i < s6rules_n(s) ; i++)
  {
    char const *k, *d ;
    size_t kl, dl ;
    if (!s6rules_get(s, i, &k, &kl, &d, &dl)) continue ;
    if (!cdbmake_add(&c, k, (unsigned int)kl, d, (unsigned int)dl)) { perror("cdbmake_add") ; abort() ; }
    keys[n].s = k ; keys[n++].len = kl ;
  }
  if (!cdbmake_finish(&c) || close(fd) == -1) { perror("cdbmake_finish") ; abort() ; }
  qsort(keys, n, sizeof *keys, &keycmp) ;
  for (size_t i = 1 ; i < n ; i++)
    FZ_CHECK(keycmp(keys + i - 1, keys + i), "key \"%.*s\" written twice", (int)keys[i].len, keys[i].s) ;
  free(keys) ;
}

static void decide_tcp (decision_t *d, rules_t const *r, ip_t const *ip, ip_t const *granted, char const *gtcp, size_t gtcplen)
{
  char text[IP_FMT] ;
  size_t tl = ip_fmt_tcpserver(text, ip) ;
  long rec = rules_pick(r, text, tl) ;
  if (granted && ip_equal(ip, granted)) { tcpdecide(d, gtcp, gtcplen) ; return ; }
  if (rec < 0) tcpdecide(d, "", 0) ;
  else tcpdecide(d, RDATA(r, RREC(r, rec)), RREC(r, rec)->datalen) ;
}

static void decide_s6 (decision_t *d, cdb const *c, ip_t const *ip, int six)
{
  s6_accessrules_params_t params = S6_ACCESSRULES_PARAMS_ZERO ;
  ip46 x ;
  if (six) ip46_from_ip6(&x, (char const *)ip->b) ;
  else ip46_from_ip4(&x, (char const *)ip->b + 12) ;
  s6decide(d, s6_accessrules_ip46_cdb(&x, c, &params), &params) ;
  /* the strings stay in params: copied out before it is freed */
  {
    static char keep[MAXV][8200] ;
    for (unsigned int i = 0 ; i < d->n ; i++)
    {
      size_t l = d->len[i] < sizeof keep[i] ? d->len[i] : sizeof keep[i] ;
      memcpy(keep[i], d->var[i], l) ;
      d->var[i] = keep[i] ;
    }
  }
  s6_accessrules_params_free(&params) ;
}

static void check_rules (char const *text, size_t len, int withextra)
{
  static char const extratext[] = ",RBLSMTPD=\"-x\",A=\"extra\"" ;
  rules_t r = RULES_ZERO ;
  s6rules_t s = S6RULES_ZERO ;
  stralloc extra = STRALLOC_ZERO, gtcp = STRALLOC_ZERO, gs6 = STRALLOC_ZERO ;
  uint32_t line ;
  char const *what ;
  ip_t const *granted = 0 ;
  char gk[2][S6RULES_KEYMAX] ;
  char const *gkey[2] = { gk[0], gk[1] } ;
  size_t gklen[2] ;
  unsigned int ng = 0 ;
  cdb c = CDB_ZERO ;

  check_parse(text, len) ;
  if (!rules_parse(&r, text, len, KEYS_S6, &line, &what)) { rules_free(&r) ; return ; }
  if (withextra && !rules_scanvars(&extra, extratext, sizeof extratext - 1, &what)) abort() ;
  if (!s6rules_make(&s, &r, extra.s, extra.len, 0, 0, &line, &what))
  {
    FZ_CHECK(what, "s6rules_make: %s", strerror(errno)) ;
    FZ_CHECK(line >= 1, "a refusal (%s) names no line", what) ;
    goto end ;
  }

  naddrs = 0 ;
  for (size_t i = 0 ; i < rules_n(&r) && i < 12 ; i++)
  {
    rule_t const *rec = RREC(&r, i) ;
    fromkey(RKEY(&r, rec), rec->keylen) ;
  }
  {
    static char const *const fixed[] = { "127.0.0.1", "::1", "2001:db8::1", "9.9.9.9", 0 } ;
    for (unsigned int i = 0 ; fixed[i] ; i++) fromkey(fixed[i], strlen(fixed[i])) ;
  }

  /* a grant for the first address its rules do not deny, as relay-open makes it */
  for (unsigned int i = 0 ; i < naddrs && !granted ; i++)
  {
    char t[IP_FMT] ;
    size_t tl = ip_fmt_tcpserver(t, addrs + i) ;
    long rec = rules_pick(&r, t, tl) ;
    char const *d = rec >= 0 ? RDATA(&r, RREC(&r, rec)) : 0 ;
    size_t dl = rec >= 0 ? RREC(&r, rec)->datalen : 0 ;
    if (rec >= 0 && rules_denies(d, dl)) continue ;
    if (!rules_grantvalue(&gtcp, d, dl, extra.s, extra.len)) abort() ;
    FZ_CHECK(s6rules_value(&gs6, gtcp.s, gtcp.len, &what), "the grant for record %ld does not fit: %s", rec, what ? what : "out of memory") ;
    granted = addrs + i ;
    ng = s6rules_grantkeys(gk, gklen, granted) ;
    s6rules_replace(&s, rec) ;
  }
  writecdb(&s, gkey, gklen, ng, gs6.s, gs6.len) ;
  if (!cdb_init(&c, cdbfile)) { perror(cdbfile) ; abort() ; }

  for (unsigned int i = 0 ; i < naddrs ; i++)
  {
    decision_t want, got ;
    char a[IP_FMT] ;
    ip_fmt(a, addrs + i) ;
    decide_tcp(&want, &r, addrs + i, granted, gtcp.s, gtcp.len) ;
    for (int six = !ip_is4(addrs + i) ; six < 2 ; six++)
    {
      decide_s6(&got, &c, addrs + i, six) ;
      FZ_CHECK(same(&want, &got), "%s (as %s): tcpserver %c with %u variables, s6 %c with %u", a, six ? "ip6" : "ip4", want.kind, want.n, got.kind, got.n) ;
    }
  }
  cdb_free(&c) ;
 end:
  s6rules_free(&s) ;
  rules_free(&r) ;
  stralloc_free(&extra) ;
  stralloc_free(&gtcp) ;
  stralloc_free(&gs6) ;
}

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  if (!dir[0]) setup() ;
  data = d ; size = s ;
  if (!s || s > 1 << 16) return 0 ;
  if (!(d[0] & 1))
  {
    ip_t ip ;
    if (!ip_scan(&ip, (char const *)d + 1, s - 1))
    {
      if (s < 17) return 0 ;
      memcpy(ip.b, d + 1, 16) ;
    }
    check_grantkeys(&ip) ;
    return 0 ;
  }
  check_rules((char const *)d + 1, s - 1, d[0] & 2) ;
  return 0 ;
}
