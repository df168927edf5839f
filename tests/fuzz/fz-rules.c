/* fz-rules: the static rules parser, in process, with what can be checked
   without tcprules (fz-tcprules compares with tcprules itself).

   The first byte picks the flavour (bit 0: ucspi-tcp-ipv6) and the extra
   grant variables (bits 1-2); the rest is the rules text. For any text:
   - parsing is deterministic, and a text parses to the records of its
     lines parsed one by one (no state leaks from a line to the next); a
     refusal names the first line that is refused alone, after lines that
     parse;
   - every record lies inside the store, comes from a line of the text, in
     order; a deny's value starts "D\0", an allow's is empty or starts
     "+", and a value ends with a NUL;
   - with ucspi-tcp, no key holds a colon or a newline;
   - rules_pick returns the record tcpserver would use: the first one with
     the exact key, else the first with the longest prefix ending in "."
     (or ":" for ucspi-tcp-ipv6), else the first empty key (a linear
     reference);
   - the value of a grant, read as tcpserver reads a record (a "D" entry
     denies, "+NAME=value" entries set variables, the last one wins), sets
     exactly what the static record sets, with the extra variables over
     them, and RELAYCLIENT as the static record or the extras set it, or
     empty; it denies exactly when the static record does. */

#include <errno.h>
#include <string.h>
#include "ip.h"
#include "rules.h"
#include "fz.h"

static uint8_t const *data ;
static size_t size ;

/* tcpserver's reading of a record: deny flag and the variables it sets */
#define MAXV 64
typedef struct view_s view_t ;
struct view_s
{
  int deny ;
  unsigned int n ;
  char const *name[MAXV] ;
  size_t namelen[MAXV] ;
  char const *val[MAXV] ;
  size_t vallen[MAXV] ;
  int overflow ;
} ;

static void setvar (view_t *v, char const *name, size_t nlen, char const *val, size_t vlen)
{
  for (unsigned int i = 0 ; i < v->n ; i++)
    if (v->namelen[i] == nlen && !memcmp(v->name[i], name, nlen)) { v->val[i] = val ; v->vallen[i] = vlen ; return ; }
  if (v->n == MAXV) { v->overflow = 1 ; return ; }
  v->name[v->n] = name ; v->namelen[v->n] = nlen ; v->val[v->n] = val ; v->vallen[v->n] = vlen ; v->n++ ;
}

static void view (view_t *v, char const *d, size_t len)
{
  memset(v, 0, sizeof *v) ;
  for (;;)
  {
    char const *z = memchr(d, 0, len) ;
    if (!z) return ;   /* bytes after the last NUL are not an entry */
    size_t elen = (size_t)(z - d) ;
    if (elen && d[0] == 'D') v->deny = 1 ;
    else if (elen && d[0] == '+')
    {
      char const *eq = memchr(d + 1, '=', elen - 1) ;
      if (eq) setvar(v, d + 1, (size_t)(eq - d - 1), eq + 1, elen - (size_t)(eq - d) - 1) ;
    }
    d += elen + 1 ; len -= elen + 1 ;
  }
}

static int lookup (view_t const *v, char const *name, size_t nlen, char const **val, size_t *vlen)
{
  for (unsigned int i = 0 ; i < v->n ; i++)
    if (v->namelen[i] == nlen && !memcmp(v->name[i], name, nlen)) { *val = v->val[i] ; *vlen = v->vallen[i] ; return 1 ; }
  return 0 ;
}

static long ref_find (rules_t const *r, char const *key, size_t len)
{
  for (size_t i = 0 ; i < rules_n(r) ; i++)
  {
    rule_t const *rec = RREC(r, i) ;
    if (rec->keylen == len && !memcmp(RKEY(r, rec), key, len)) return (long)i ;
  }
  return -1 ;
}

static long ref_pick (rules_t const *r, char const *key, size_t len, int six)
{
  long i = ref_find(r, key, len) ;
  if (i >= 0) return i ;
  for (size_t plen = len ? len - 1 : 0 ; plen >= 1 ; plen--)
  {
    char c = key[plen - 1] ;
    if (c != '.' && !(six && c == ':')) continue ;
    i = ref_find(r, key, plen) ;
    if (i >= 0) return i ;
  }
  return ref_find(r, "", 0) ;
}

static void check_grant (rules_t const *r, long rec, char const *extra, size_t extralen)
{
  stralloc g = STRALLOC_ZERO ;
  view_t gv, sv, ev ;
  char const *d = rec >= 0 ? RDATA(r, RREC(r, rec)) : 0 ;
  size_t dlen = rec >= 0 ? RREC(r, rec)->datalen : 0 ;
  if (d && rules_denies(d, dlen)) return ;   /* relay-open grants nothing there */
  if (!rules_grantvalue(&g, d, dlen, extra, extralen)) abort() ;
  view(&gv, g.s, g.len) ;
  view(&sv, d ? d : "", dlen) ;
  view(&ev, extra ? extra : "", extralen) ;
  if (gv.overflow || sv.overflow || ev.overflow) { stralloc_free(&g) ; return ; }
  FZ_CHECK(g.len && g.s[g.len - 1] == 0, "a grant value does not end with a NUL") ;
  FZ_CHECK(gv.deny == sv.deny, "the grant %s where the static record %s", gv.deny ? "denies" : "allows", sv.deny ? "denies" : "allows") ;
  /* every variable the grant sets: from the extras, else the static
     record, else RELAYCLIENT="" */
  for (unsigned int i = 0 ; i < gv.n ; i++)
  {
    char const *v ;
    size_t vl ;
    if (lookup(&ev, gv.name[i], gv.namelen[i], &v, &vl) || lookup(&sv, gv.name[i], gv.namelen[i], &v, &vl))
      FZ_CHECK(vl == gv.vallen[i] && !memcmp(v, gv.val[i], vl), "the grant sets %.*s to another value than the extras or the static record", (int)gv.namelen[i], gv.name[i]) ;
    else
      FZ_CHECK(gv.namelen[i] == 11 && !memcmp(gv.name[i], "RELAYCLIENT", 11) && !gv.vallen[i], "the grant sets %.*s, which nothing asked for", (int)gv.namelen[i], gv.name[i]) ;
  }
  /* and everything the extras and the static record set */
  for (unsigned int i = 0 ; i < ev.n ; i++)
  {
    char const *v ;
    size_t vl ;
    FZ_CHECK(lookup(&gv, ev.name[i], ev.namelen[i], &v, &vl), "the grant lost the extra variable %.*s", (int)ev.namelen[i], ev.name[i]) ;
  }
  for (unsigned int i = 0 ; i < sv.n ; i++)
  {
    char const *v ;
    size_t vl ;
    FZ_CHECK(lookup(&gv, sv.name[i], sv.namelen[i], &v, &vl), "the grant lost the static variable %.*s", (int)sv.namelen[i], sv.name[i]) ;
  }
  {
    char const *v ;
    size_t vl ;
    FZ_CHECK(lookup(&gv, "RELAYCLIENT", 11, &v, &vl), "the grant does not set RELAYCLIENT") ;
  }
  stralloc_free(&g) ;
}

static void check_records (rules_t const *r, char const *text, size_t len, int six)
{
  uint32_t lines = 0, last = 0 ;
  for (size_t i = 0 ; i < len ; i++) if (text[i] == '\n') lines++ ;
  if (len && text[len - 1] != '\n') lines++ ;
  for (size_t i = 0 ; i < rules_n(r) ; i++)
  {
    rule_t const *rec = RREC(r, i) ;
    char const *d = RDATA(r, rec) ;
    FZ_CHECK(rec->key + rec->keylen <= r->store.len && rec->data + rec->datalen <= r->store.len, "record %zu outside the store", i) ;
    FZ_CHECK(rec->line >= 1 && rec->line <= lines && rec->line >= last, "record %zu from line %u of %u, after line %u", i, rec->line, lines, last) ;
    last = rec->line ;
    FZ_CHECK(!memchr(RKEY(r, rec), '\n', rec->keylen), "a key holds a newline") ;
    if (!six) FZ_CHECK(!memchr(RKEY(r, rec), ':', rec->keylen), "an ucspi-tcp key holds a colon") ;
    if (rec->datalen)
    {
      FZ_CHECK(d[rec->datalen - 1] == 0, "a value does not end with a NUL") ;
      FZ_CHECK(d[0] == '+' || (d[0] == 'D' && rec->datalen >= 2 && !d[1]), "a value starts with 0x%02x", (unsigned char)d[0]) ;
    }
  }
}

static int same_records (rules_t const *a, size_t afrom, rules_t const *b, uint32_t lineshift)
{
  for (size_t i = 0 ; i < rules_n(b) ; i++)
  {
    rule_t const *x = RREC(a, afrom + i), *y = RREC(b, i) ;
    if (x->keylen != y->keylen || x->datalen != y->datalen || x->line != y->line + lineshift
     || memcmp(RKEY(a, x), RKEY(b, y), x->keylen) || memcmp(RDATA(a, x), RDATA(b, y), x->datalen))
      return 0 ;
  }
  return 1 ;
}

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  static char const *const extras[4] = { "", ",RBLSMTPD=\"\",QMAILQUEUE=\"/bin/scan\"", ",RELAYCLIENT=\"@relay\"", ",X=/a b/" } ;
  rules_t r = RULES_ZERO, r2 = RULES_ZERO ;
  stralloc extra = STRALLOC_ZERO ;
  char const *text, *what, *what2, *xw ;
  uint32_t line = 0, line2 = 0 ;
  size_t len ;
  int six, ok, ok2 ;
  data = d ; size = s ;
  if (!s) return 0 ;
  six = d[0] & 1 ;
  text = (char const *)d + 1 ;
  len = s - 1 ;
  if (!rules_scanvars(&extra, extras[d[0] >> 1 & 3], strlen(extras[d[0] >> 1 & 3]), &xw)) abort() ;

  ok = rules_parse(&r, text, len, six ? KEYS_UCSPI_TCP_IPV6 : KEYS_UCSPI_TCP, &line, &what) ;
  FZ_CHECK(ok || what || errno == ENOMEM, "a refusal without a reason") ;
  ok2 = rules_parse(&r2, text, len, six ? KEYS_UCSPI_TCP_IPV6 : KEYS_UCSPI_TCP, &line2, &what2) ;
  FZ_CHECK(ok == ok2 && (ok || (line == line2 && what == what2)), "two parses of one text differ") ;
  if (ok) FZ_CHECK(rules_n(&r) == rules_n(&r2) && same_records(&r, 0, &r2, 0), "two parses of one text give other records") ;
  rules_free(&r2) ;

  /* line by line */
  {
    size_t pos = 0, nrec = 0 ;
    uint32_t n = 0 ;
    while (pos < len)
    {
      rules_t one = RULES_ZERO ;
      char const *nl = memchr(text + pos, '\n', len - pos) ;
      size_t end = nl ? (size_t)(nl - text) + 1 : len ;
      uint32_t l1 ;
      char const *w1 ;
      int ok1 ;
      n++ ;
      ok1 = rules_parse(&one, text + pos, end - pos, six ? KEYS_UCSPI_TCP_IPV6 : KEYS_UCSPI_TCP, &l1, &w1) ;
      if (!ok)
      {
        if (n < line) FZ_CHECK(ok1, "line %u is refused alone, but the text is refused at line %u", n, line) ;
        else
        {
          FZ_CHECK(n == line && !ok1 && w1 == what, "the text is refused at line %u (%s), but line %u alone %s", line, what, n, ok1 ? "parses" : w1) ;
          rules_free(&one) ;
          break ;
        }
      }
      else
      {
        FZ_CHECK(ok1, "the text parses, line %u alone is refused: %s", n, w1) ;
        FZ_CHECK(nrec + rules_n(&one) <= rules_n(&r) && same_records(&r, nrec, &one, n - 1), "line %u alone gives other records than in the whole text", n) ;
        nrec += rules_n(&one) ;
      }
      rules_free(&one) ;
      pos = end ;
    }
    if (ok) FZ_CHECK(nrec == rules_n(&r), "the lines give %zu records, the text %zu", nrec, rules_n(&r)) ;
    else FZ_CHECK(line >= 1 && line <= n, "refused at line %u of %u", line, n) ;
  }
  if (!ok) { rules_free(&r) ; stralloc_free(&extra) ; return 0 ; }

  check_records(&r, text, len, six) ;

  /* tcpserver's choice, and the grant made from it */
  {
    static char const *const fixed[] = { "1.2.3.4", "10.0.0.1", "127.0.0.1", "192.0.2.7", "::1", "2001:db8::1", "2001:db8::1:1:1:1:1", "" } ;
    char probe[64] ;
    size_t nprobes = 0 ;
    for (size_t i = 0 ; i < sizeof fixed / sizeof *fixed + 4 * rules_n(&r) && nprobes < 200 ; i++)
    {
      size_t pl ;
      if (i < sizeof fixed / sizeof *fixed) { strcpy(probe, fixed[i]) ; pl = strlen(probe) ; }
      else
      {
        size_t k = i - sizeof fixed / sizeof *fixed ;
        rule_t const *rec = RREC(&r, k / 4) ;
        static char const *const tails[4] = { "", "1", "0.1", ":1" } ;
        if (rec->keylen + 4 > IP_FMT) continue ;
        memcpy(probe, RKEY(&r, rec), rec->keylen) ;
        pl = rec->keylen ;
        memcpy(probe + pl, tails[k % 4], strlen(tails[k % 4])) ;
        pl += strlen(tails[k % 4]) ;
      }
      nprobes++ ;
      long got = rules_pick(&r, probe, pl) ;
      long want = ref_pick(&r, probe, pl, six) ;
      FZ_CHECK(got == want, "rules_pick(\"%.*s\") is record %ld, tcpserver would use %ld", (int)pl, probe, got, want) ;
      check_grant(&r, got, extra.s, extra.len) ;
    }
  }
  rules_free(&r) ;
  stralloc_free(&extra) ;
  return 0 ;
}
