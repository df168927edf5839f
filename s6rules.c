/* s6rules.c: tcprules records into s6 access rules; see s6rules.h.

   Under tcpserver -H -R a key K matches the clients whose TCPREMOTEIP
   (for ucspi-tcp-ipv6, the text ip_fmt_tcpserver writes) is K, or starts with K
   when K ends in "." or ":", or everyone when K is empty; the exact key
   comes first, then longer prefixes, then the empty key. s6 tries the
   whole address, then shorter prefixes, then /0: the same order. So a key
   translates when the clients it matches are those of one prefix of bits:

     a.b.c.d          one client      ip4/a.b.c.d_32
     a.b.c.  a.b.  a. /24 /16 /8      ip4/a.b.c.0_24 ...
     an IPv6 address  one client      ip6/ADDR_128
     g1:...:gk:       /16k, k < 8, each group nonzero and written as
                      tcpserver writes it: a compressed run of zeros can
                      only come after them, so any text starting so is
                      in the prefix, and any address in it is written so
     (empty)          everyone        ip4/0.0.0.0_0 and ip6/::_0

   Other keys ending in ":" ("2001:db8::", "0:") match by where a run of
   zeros is compressed, which no prefix of bits does: refused. Keys that
   no address is written as are dropped. tests/fuzz/fz-s6 checks all this
   against s6's own lookup.

   Every prefix written is a whole number of bytes, IPv4 ones mirrored as
   ::ffff:a.b.c.d/104 to /128: s6 before 2.13.1.0 (Debian 12 has 2.11)
   clears the bits of an IPv6 address's last byte in the wrong order while
   it shortens the prefix, so that only the byte-aligned lengths are tried
   with the right address. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <skalibs/types.h>
#include <skalibs/uint16.h>
#include "s6rules.h"

typedef struct s6rec_s s6rec_t ;
struct s6rec_s
{
  size_t key ;       /* offsets in store */
  size_t data ;
  uint32_t keylen ;
  uint32_t datalen ;
  size_t from ;      /* the static record, or NOFROM */
} ;
#define NOFROM ((size_t)-1)

/* s6rules_t.from[i], for static record i */
#define F_UNUSED 0     /* not written: a shadowed duplicate, or no client */
#define F_PREFIX 1     /* written, keyed by a prefix or the default */
#define F_ONE 2        /* written, keyed by one address */
#define F_REPLACED 3   /* keyed by one address, which a grant replaces */

/* what a key is */
#define K_NET 0
#define K_ALL 1
#define K_DEAD 2
#define K_HOST 3
#define K_INFO 4
#define K_V6TEXT 5

static char const *const refusal[] =
{
  0, 0, 0,
  "a host-name rule (=host) has no equivalent in s6-tcpserver-access, which looks names up only when no address rule matches",
  "a TCPREMOTEINFO rule (info@) has no equivalent in s6-tcpserver-access",
  "an IPv6 prefix translates for s6-tcpserver-access only as 1 to 7 nonzero groups, each ending in a colon (2001:db8:)"
} ;

#define TOOBIG "its variables pass the 4096 bytes s6-tcpserver-access reads"
#define GRANTTOOBIG "with POPRELAY_ENV and RELAYCLIENT, a grant under this rule would pass the 4096 bytes of variables s6-tcpserver-access reads"

/* The one place that reads rules.h's record fields. */
typedef struct view_s view_t ;
struct view_s
{
  char const *key ;
  char const *data ;
  size_t keylen ;
  size_t datalen ;
  uint32_t line ;
} ;

static void view (rules_t const *r, size_t i, view_t *v)
{
  v->key = rules_key(r, i, &v->keylen) ;
  v->data = rules_data(r, (long)i, &v->datalen) ;
  v->line = rules_line(r, i) ;
}

/* 1 if tcpserver writes ip as a text that starts with k[0..len) */
static int written (ip_t const *ip, char const *k, size_t len)
{
  char t[IP_FMT] ;
  size_t n = ip_fmt_tcpserver(t, ip) ;
  return n >= len && !memcmp(t, k, len) ;
}

/* "a." "a.b." "a.b.c.": the network address, completed with zeros, must
   parse and be written starting so */
static int v4prefix (char const *k, size_t len, ipnet_t *net)
{
  char t[24] ;
  size_t dots = 0 ;
  for (size_t i = 0 ; i < len ; i++) dots += k[i] == '.' ;
  if (dots > 3 || len > 12) return 0 ;
  memcpy(t, k, len) ;
  memcpy(t + len, "0.0.0", 1 + 2 * (3 - dots)) ;
  if (!ip_scan(&net->ip, t, len + 1 + 2 * (3 - dots)) || !ip_is4(&net->ip) || !written(&net->ip, k, len)) return 0 ;
  net->bits = 96 + 8 * (unsigned int)dots ;
  return 1 ;
}

/* "g1:...:gk:": k groups, none of them zero */
static int v6prefix (char const *k, size_t len, ipnet_t *net)
{
  char t[IP_TEXTMAX + 1] ;
  unsigned int groups = 0 ;
  for (size_t i = 0 ; i < len ; i++) groups += k[i] == ':' ;
  if (len >= IP_TEXTMAX || groups > 7) return 0 ;
  memcpy(t, k, len) ;
  t[len] = ':' ;
  if (!ip_scan(&net->ip, t, len + 1) || ip_is4(&net->ip) || !written(&net->ip, k, len)) return 0 ;
  for (unsigned int g = 0 ; g < groups ; g++)
    if (!net->ip.b[2*g] && !net->ip.b[2*g+1]) return 0 ;
  net->bits = 16 * groups ;
  return 1 ;
}

static int classify (char const *k, size_t len, ipnet_t *net)
{
  if (!len) return K_ALL ;
  if (memchr(k, '@', len)) return K_INFO ;
  if (k[0] == '=') return K_HOST ;
  if (k[len - 1] == '.') return v4prefix(k, len, net) ? K_NET : K_DEAD ;
  if (k[len - 1] == ':')
  {
    if (v6prefix(k, len, net)) return K_NET ;
    for (size_t i = 0 ; i < len ; i++)
      if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f') || k[i] == ':')) return K_DEAD ;
    return K_V6TEXT ;
  }
  if (!ip_scan(&net->ip, k, len) || !written(&net->ip, k, len)) return K_DEAD ;
  {
    char t[IP_FMT] ;
    if (ip_fmt_tcpserver(t, &net->ip) != len) return K_DEAD ;   /* a longer text */
  }
  net->bits = 128 ;
  return K_NET ;
}

/* ip4/ADDR_BITS from a v4-mapped ip and its bits in the 128-bit space;
   or ip6/ADDR_BITS, a v4-mapped ADDR as hex groups (skalibs' ip6_fmt) */
static size_t fmtkey (char *s, ip_t const *ip, unsigned int bits, int six)
{
  size_t n = 4 ;
  if (!six)
  {
    memcpy(s, "ip4/", 4) ;
    n += ip_fmt(s + n, ip) ;
    bits -= 96 ;
  }
  else if (ip_is4(ip))
  {
    memcpy(s, "ip6/::ffff:", 11) ;
    n = 11 + uint16_xfmt(s + 11, (uint16_t)(ip->b[12] << 8 | ip->b[13])) ;
    s[n++] = ':' ;
    n += uint16_xfmt(s + n, (uint16_t)(ip->b[14] << 8 | ip->b[15])) ;
  }
  else
  {
    memcpy(s, "ip6/", 4) ;
    n += ip_fmt(s + n, ip) ;
  }
  s[n++] = '_' ;
  n += uint_fmt(s + n, bits) ;
  return n ;
}

unsigned int s6rules_grantkeys (char key[2][S6RULES_KEYMAX], size_t len[2], ip_t const *ip)
{
  if (!ip_is4(ip))
  {
    len[0] = fmtkey(key[0], ip, 128, 1) ;
    return 1 ;
  }
  len[0] = fmtkey(key[0], ip, 128, 0) ;
  len[1] = fmtkey(key[1], ip, 128, 1) ;
  return 2 ;
}

/* 1 if an entry after pos sets the variable name */
static int later (char const *data, size_t len, size_t pos, char const *name, size_t nlen)
{
  while (pos < len)
  {
    char const *e = data + pos ;
    size_t elen = strnlen(e, len - pos) ;
    if (pos + elen == len) return 0 ;
    pos += elen + 1 ;
    if (elen > nlen + 1 && e[0] == '+' && e[nlen + 1] == '=' && !memcmp(e + 1, name, nlen) && !memchr(e + 1, '=', nlen)) return 1 ;
  }
  return 0 ;
}

/* what s6-tcpserver-access sets after the rules' variables */
static int reserved (char const *name, size_t len)
{
  static char const *const names[] = { "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEHOST", "TCPREMOTEINFO", 0 } ;
  for (unsigned int i = 0 ; names[i] ; i++)
    if (strlen(names[i]) == len && !memcmp(names[i], name, len)) return 1 ;
  return 0 ;
}

/* tcpserver reads entries that end in a NUL: one starting with D denies,
   "+NAME=value" sets NAME (a later one wins), anything else is ignored */
int s6rules_value (stralloc *sa, char const *data, size_t len, char const **what)
{
  size_t start = sa->len, pos, envlen ;
  *what = 0 ;
  for (pos = 0 ; pos < len ; )
  {
    size_t elen = strnlen(data + pos, len - pos) ;
    if (pos + elen == len) break ;
    if (data[pos] == 'D') return stralloc_catb(sa, "D", 1) ;
    pos += elen + 1 ;
  }
  if (!stralloc_catb(sa, "A\0\0", 3)) return 0 ;
  for (pos = 0 ; pos < len ; )
  {
    char const *e = data + pos, *eq ;
    size_t elen = strnlen(e, len - pos), nlen ;
    if (pos + elen == len) break ;
    pos += elen + 1 ;
    if (e[0] != '+' || !(eq = memchr(e + 1, '=', elen - 1))) continue ;
    nlen = (size_t)(eq - (e + 1)) ;
    if (later(data, len, pos, e + 1, nlen)) continue ;
    if (!nlen) { *what = "a variable with an empty name (,=...) cannot be held in s6 access rules" ; goto refuse ; }
    if (reserved(e + 1, nlen)) { *what = "s6-tcpserver-access sets TCPLOCALIP, TCPLOCALPORT, TCPLOCALHOST, TCPREMOTEHOST and TCPREMOTEINFO itself, after the rules" ; goto refuse ; }
    if (!stralloc_catb(sa, e + 1, elen)) goto refuse ;   /* NAME=value and its NUL */
  }
  envlen = sa->len - start - 3 ;
  if (envlen > S6RULES_ENVMAX) { *what = TOOBIG ; goto refuse ; }
  uint16_pack_big(sa->s + start + 1, (uint16_t)envlen) ;
  if (stralloc_catb(sa, "\0\0", 2)) return 1 ;
 refuse:
  sa->len = start ;
  return 0 ;
}

static int addrec (s6rules_t *s, ip_t const *ip, unsigned int bits, int six, size_t data, size_t datalen, size_t from)
{
  char key[S6RULES_KEYMAX] ;
  s6rec_t rec = { .key = s->store.len, .data = data, .datalen = (uint32_t)datalen, .from = from } ;
  rec.keylen = (uint32_t)fmtkey(key, ip, bits, six) ;
  return stralloc_catb(&s->store, key, rec.keylen) && genalloc_append(s6rec_t, &s->recs, &rec) ;
}

/* the records of one key: an IPv4 one twice, the default for both */
static int addnet (s6rules_t *s, int kind, ipnet_t const *net, size_t data, size_t datalen, size_t from)
{
  static ipnet_t const all4 = { .ip = { .b = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff, 0,0,0,0 } }, .bits = 96 } ;
  static ipnet_t const all6 = { .ip = { .b = { 0 } }, .bits = 0 } ;
  if (kind == K_ALL)
    return addrec(s, &all4.ip, all4.bits, 0, data, datalen, from) && addrec(s, &all6.ip, all6.bits, 1, data, datalen, from) ;
  if (!ip_is4(&net->ip)) return addrec(s, &net->ip, net->bits, 1, data, datalen, from) ;
  return addrec(s, &net->ip, net->bits, 0, data, datalen, from) && addrec(s, &net->ip, net->bits, 1, data, datalen, from) ;
}

/* Whether a grant under a record whose s6 value is v fits: within bounds
   that need no work, or by making it in tmp[0] (tcprules' form) and
   tmp[1] (s6's). Returns 1, 0 with *what, or -1 (out of memory). */
static int grantfits (char const *v, char const *data, size_t datalen, char const *extra, size_t extralen, stralloc *tmp, char const **what)
{
  size_t envlen ;
  int r ;
  if (v[0] == 'D') return 1 ;
  envlen = (size_t)(unsigned char)v[1] << 8 | (unsigned char)v[2] ;
  if (envlen + extralen + sizeof "RELAYCLIENT=" <= S6RULES_ENVMAX) return 1 ;
  tmp[0].len = tmp[1].len = 0 ;
  if (!rules_grantvalue(tmp, data, datalen, extra, extralen)) return -1 ;
  r = s6rules_value(tmp + 1, tmp[0].s, tmp[0].len, what) ;
  if (!r && !*what) return -1 ;
  if (!r) *what = GRANTTOOBIG ;
  return r ;
}

static int one (s6rules_t *s, rules_t const *r, size_t i, char const *extra, size_t extralen, stralloc *tmp, s6rules_dead_fn *dead, void *ctx, uint32_t *lastdead, char const **what)
{
  view_t v ;
  ipnet_t net ;
  size_t data = s->store.len ;
  int kind, fits ;
  view(r, i, &v) ;
  if (rules_pick(r, v.key, v.keylen) != (long)i) return 1 ;   /* an earlier record has the key */
  kind = classify(v.key, v.keylen, &net) ;
  if (kind == K_DEAD)
  {
    if (dead && v.line != *lastdead) (*dead)(v.line, ctx) ;
    *lastdead = v.line ;
    return 1 ;
  }
  if (kind >= K_HOST) { *what = refusal[kind] ; return 0 ; }
  if (!s6rules_value(&s->store, v.data, v.datalen, what)) return 0 ;
  fits = grantfits(s->store.s + data, v.data, v.datalen, extra, extralen, tmp, what) ;
  if (fits <= 0) { if (fits < 0) *what = 0 ; return 0 ; }
  if (!addnet(s, kind, &net, data, s->store.len - data, i)) return 0 ;
  s->from[i] = kind == K_NET && net.bits == 128 ? F_ONE : F_PREFIX ;
  return 1 ;
}

int s6rules_make (s6rules_t *s, rules_t const *r, char const *extra, size_t extralen, s6rules_dead_fn *dead, void *ctx, uint32_t *line, char const **what)
{
  stralloc tmp[2] = { STRALLOC_ZERO, STRALLOC_ZERO } ;
  size_t n = rules_n(r), i ;
  uint32_t lastdead = 0 ;
  int ok = 0 ;
  *line = 0 ;
  *what = 0 ;
  s->from = calloc(n ? n : 1, 1) ;
  if (!s->from) return 0 ;
  s->nfrom = n ;
  /* a grant under no rule: POPRELAY_ENV and RELAYCLIENT alone */
  if (!rules_grantvalue(tmp, 0, 0, extra, extralen) || !s6rules_value(tmp + 1, tmp[0].s, tmp[0].len, what)) goto end ;
  for (i = 0 ; i < n ; i++)
    if (!one(s, r, i, extra, extralen, tmp, dead, ctx, &lastdead, what))
    {
      view_t v ;
      view(r, i, &v) ;
      *line = v.line ;
      goto end ;
    }
  /* no empty key: tcpserver lets everyone else in, s6 would not */
  if (rules_pick(r, "", 0) < 0)
  {
    size_t data = s->store.len ;
    if (!stralloc_catb(&s->store, "A\0\0\0\0", 5) || !addnet(s, K_ALL, 0, data, 5, NOFROM)) goto end ;
  }
  ok = 1 ;
 end:
  stralloc_free(tmp) ;
  stralloc_free(tmp + 1) ;
  if (!ok && !*what) errno = ENOMEM ;
  return ok ;
}

void s6rules_free (s6rules_t *s)
{
  stralloc_free(&s->store) ;
  genalloc_free(s6rec_t, &s->recs) ;
  free(s->from) ;
  s->from = 0 ;
  s->nfrom = 0 ;
}

size_t s6rules_n (s6rules_t const *s)
{
  return genalloc_len(s6rec_t, &s->recs) ;
}

int s6rules_get (s6rules_t const *s, size_t i, char const **key, size_t *keylen, char const **data, size_t *datalen)
{
  s6rec_t const *rec = genalloc_s(s6rec_t, &s->recs) + i ;
  if (rec->from != NOFROM && s->from[rec->from] == F_REPLACED) return 0 ;
  *key = s->store.s + rec->key ;
  *keylen = rec->keylen ;
  *data = s->store.s + rec->data ;
  *datalen = rec->datalen ;
  return 1 ;
}

void s6rules_replace (s6rules_t *s, long rec)
{
  if (rec >= 0 && (size_t)rec < s->nfrom && s->from[rec] == F_ONE) s->from[rec] = F_REPLACED ;
}
