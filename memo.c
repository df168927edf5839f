/* memo.c: the grants of each bucket, kept between builds; see memo.h.

   A stamp's part of a bucket's memo is its address (16 bytes), its
   verdict (one byte), then its records, each a key's length (one byte: a
   key is an address's text), the key, the value's length (four bytes),
   the value. */

#include <errno.h>
#include <string.h>
#include "memo.h"

#define HEAD 17

int memo_rules (memo_t *m, char const *text, size_t len)
{
  if (m->rules.s && m->rules.len == len && !memcmp(m->rules.s, text, len)) return 1 ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    m->gen[b] = 0 ;
    m->recs[b].len = 0 ;
    genalloc_setlen(uint32_t, &m->at[b], 0) ;
  }
  m->rules.len = 0 ;
  if (stralloc_catb(&m->rules, text, len)) return 1 ;
  stralloc_free(&m->rules) ;
  return 0 ;
}

int memo_valid (memo_t const *m, unsigned int b, uint64_t gen, size_t n)
{
  return m->gen[b] && m->gen[b] == gen && genalloc_len(uint32_t, &m->at[b]) == n ;
}

/* the old memo, if whole, becomes the one to take parts from */
int memo_start (memo_t *m, unsigned int b)
{
  stralloc sa = m->oldrecs ;
  genalloc ga = m->oldat ;
  if (m->gen[b])
  {
    m->oldrecs = m->recs[b] ; m->recs[b] = sa ;
    m->oldat = m->at[b] ; m->at[b] = ga ;
  }
  else genalloc_setlen(uint32_t, &m->oldat, 0) ;
  m->gen[b] = 0 ;
  m->recs[b].len = 0 ;
  genalloc_setlen(uint32_t, &m->at[b], 0) ;
  m->oldi = 0 ;
  return 1 ;
}

static size_t partend (stralloc const *sa, genalloc const *at, size_t i)
{
  return i + 1 < genalloc_len(uint32_t, at) ? genalloc_s(uint32_t, at)[i + 1] : sa->len ;
}

int memo_again (memo_t *m, unsigned int b, ip_t const *ip)
{
  size_t n = genalloc_len(uint32_t, &m->oldat) ;
  uint32_t const *at = genalloc_s(uint32_t, &m->oldat) ;
  int c = 1 ;
  /* both in address order: the old memo's place only moves on */
  while (m->oldi < n && (c = memcmp(m->oldrecs.s + at[m->oldi], ip->b, 16)) < 0) m->oldi++ ;
  if (m->oldi >= n || c) return 0 ;
  {
    size_t start = at[m->oldi], end = partend(&m->oldrecs, &m->oldat, m->oldi) ;
    uint32_t here = (uint32_t)m->recs[b].len ;
    m->oldi++ ;
    if (m->recs[b].len + (end - start) > 0xffffffffu) { errno = EOVERFLOW ; return -1 ; }
    if (!genalloc_append(uint32_t, &m->at[b], &here) || !stralloc_catb(&m->recs[b], m->oldrecs.s + start, end - start)) return -1 ;
  }
  return 1 ;
}

int memo_stamp (memo_t *m, unsigned int b, ip_t const *ip, int verdict)
{
  uint32_t here = (uint32_t)m->recs[b].len ;
  char v = (char)verdict ;
  if (m->recs[b].len + HEAD > 0xffffffffu) { errno = EOVERFLOW ; return 0 ; }
  return genalloc_append(uint32_t, &m->at[b], &here) && stralloc_catb(&m->recs[b], (char const *)ip->b, 16) && stralloc_catb(&m->recs[b], &v, 1) ;
}

stralloc *memo_of (memo_t *m, unsigned int b)
{
  return &m->recs[b] ;
}

int memo_record (stralloc *sa, char const *key, size_t klen, char const *val, size_t vlen)
{
  unsigned char k = (unsigned char)klen ;
  uint32_t v = (uint32_t)vlen ;
  char *p ;
  if (klen > 255 || vlen > 0xffffff || sa->len + 5 + klen + vlen > 0xffffffffu) { errno = EOVERFLOW ; return 0 ; }
  if (!stralloc_readyplus(sa, 5 + klen + vlen)) return 0 ;
  p = sa->s + sa->len ;
  p[0] = (char)k ;
  memcpy(p + 1, key, klen) ;
  memcpy(p + 1 + klen, &v, 4) ;
  memcpy(p + 5 + klen, val, vlen) ;
  sa->len += 5 + klen + vlen ;
  return 1 ;
}

void memo_done (memo_t *m, unsigned int b, uint64_t gen)
{
  m->gen[b] = gen ;
}

int memo_verdict (memo_t const *m, unsigned int b, size_t i)
{
  return (unsigned char)m->recs[b].s[genalloc_s(uint32_t, &m->at[b])[i] + 16] ;
}

int memo_write (memo_t const *m, unsigned int b, size_t i, cdbout_t *out)
{
  char const *s = m->recs[b].s ;
  size_t pos = genalloc_s(uint32_t, &m->at[b])[i] + HEAD, end = partend(&m->recs[b], &m->at[b], i) ;
  while (pos < end)
  {
    size_t klen = (unsigned char)s[pos] ;
    uint32_t vlen ;
    memcpy(&vlen, s + pos + 1 + klen, 4) ;
    if (!cdbout_add(out, s + pos + 1, klen, s + pos + 5 + klen, vlen)) return 0 ;
    pos += 5 + klen + vlen ;
  }
  return 1 ;
}

void memo_free (memo_t *m)
{
  stralloc_free(&m->rules) ;
  stralloc_free(&m->oldrecs) ;
  genalloc_free(uint32_t, &m->oldat) ;
  for (unsigned int b = 0 ; b < STAMP_BUCKETS ; b++)
  {
    stralloc_free(&m->recs[b]) ;
    genalloc_free(uint32_t, &m->at[b]) ;
    m->gen[b] = 0 ;
  }
}
