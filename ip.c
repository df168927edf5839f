/* ip.c: strict address parsing and canonical formatting; see ip.h.

   skalibs 2.13's ip46_scan accepts a prefix of its input ("fe80::1%eth0"
   scans as fe80::1) and its ip6_scan refuses ::ffff:1.2.3.4, so poprelay
   parses addresses itself: a small grammar, fuzzed against inet_pton. */

#include <string.h>
#include <skalibs/types.h>
#include "ip.h"

static unsigned char const v4mapped[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff } ;

int ip_is4 (ip_t const *ip)
{
  return !memcmp(ip->b, v4mapped, 12) ;
}

int ip_equal (ip_t const *a, ip_t const *b)
{
  return !memcmp(a->b, b->b, 16) ;
}

/* Dotted quad, exactly: 4 parts, each "0" or 1-3 digits without a
   leading zero, at most 255. A leading zero is refused rather than read:
   inet_aton takes "010" as octal 8, tcpserver never writes it. */
static int scan4 (unsigned char *out, char const *s, size_t len)
{
  size_t i = 0 ;
  for (unsigned int part = 0 ; part < 4 ; part++)
  {
    unsigned int v = 0, n = 0 ;
    if (part)
    {
      if (i >= len || s[i] != '.') return 0 ;
      i++ ;
    }
    while (i < len && s[i] >= '0' && s[i] <= '9' && n < 4)
    {
      v = v * 10 + (unsigned int)(s[i] - '0') ;
      i++ ; n++ ;
    }
    if (!n || n > 3 || v > 255) return 0 ;
    if (n > 1 && s[i - n] == '0') return 0 ;
    out[part] = (unsigned char)v ;
  }
  return i == len ;
}

static int hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0' ;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10 ;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10 ;
  return -1 ;
}

/* RFC 4291 section 2.2, forms 1 to 3. */
static int scan6 (unsigned char *out, char const *s, size_t len)
{
  unsigned int groups[8] ;
  unsigned int n = 0 ;     /* groups seen */
  int gap = -1 ;           /* index in groups[] where "::" stands */
  size_t i = 0 ;
  int v4tail = 0 ;
  unsigned char tail[4] ;

  if (len >= 2 && s[0] == ':' && s[1] == ':') { gap = 0 ; i = 2 ; }
  else if (len && s[0] == ':') return 0 ;
  while (i < len)
  {
    size_t start = i ;
    unsigned int v = 0 ;
    int d ;
    while (i < len && i - start < 5 && (d = hexval(s[i])) >= 0)
    {
      v = (v << 4) | (unsigned int)d ;
      i++ ;
    }
    if (i == start || i - start > 4) return 0 ;
    if (i < len && s[i] == '.')
    {
      /* a dotted quad ends the address and counts as two groups */
      if (n > 6 || !scan4(tail, s + start, len - start)) return 0 ;
      v4tail = 1 ;
      i = len ;
      break ;
    }
    if (n >= 8) return 0 ;
    groups[n++] = v ;
    if (i == len) break ;
    if (s[i] != ':') return 0 ;
    i++ ;
    if (i < len && s[i] == ':')
    {
      if (gap >= 0) return 0 ;
      gap = (int)n ;
      i++ ;
      if (i == len) break ;
    }
    else if (i == len) return 0 ;   /* a single trailing colon */
  }
  {
    unsigned int total = n + (v4tail ? 2 : 0) ;
    if (gap >= 0 ? total > 7 : total != 8) return 0 ;
    memset(out, 0, 16) ;
    unsigned int before = gap >= 0 ? (unsigned int)gap : n ;
    for (unsigned int k = 0 ; k < before ; k++)
    {
      out[2*k] = (unsigned char)(groups[k] >> 8) ;
      out[2*k+1] = (unsigned char)groups[k] ;
    }
    unsigned int after = n - before ;
    unsigned int pos = 8 - (v4tail ? 2 : 0) - after ;
    for (unsigned int k = 0 ; k < after ; k++)
    {
      out[2*(pos+k)] = (unsigned char)(groups[before+k] >> 8) ;
      out[2*(pos+k)+1] = (unsigned char)groups[before+k] ;
    }
    if (v4tail) memcpy(out + 12, tail, 4) ;
  }
  return 1 ;
}

int ip_scan (ip_t *ip, char const *s, size_t len)
{
  unsigned char b[16] ;
  if (!len || len > IP_TEXTMAX) return 0 ;
  if (memchr(s, ':', len))
  {
    if (!scan6(b, s, len)) return 0 ;
  }
  else
  {
    memcpy(b, v4mapped, 12) ;
    if (!scan4(b + 12, s, len)) return 0 ;
  }
  memcpy(ip->b, b, 16) ;
  return 1 ;
}

static size_t fmt4 (char *s, unsigned char const *b)
{
  size_t n = 0 ;
  for (unsigned int i = 0 ; i < 4 ; i++)
  {
    unsigned int v = b[i] ;
    if (i) s[n++] = '.' ;
    if (v >= 100) s[n++] = (char)('0' + v / 100) ;
    if (v >= 10) s[n++] = (char)('0' + v / 10 % 10) ;
    s[n++] = (char)('0' + v % 10) ;
  }
  s[n] = 0 ;
  return n ;
}

/* minrun: the shortest run of zero groups that is compressed. */
static size_t fmt6 (char *s, unsigned char const *b, unsigned int minrun)
{
  unsigned int g[8] ;
  int best = -1 ;
  unsigned int bestlen = 0 ;
  size_t n = 0 ;
  for (unsigned int i = 0 ; i < 8 ; i++) g[i] = (unsigned int)b[2*i] << 8 | b[2*i+1] ;
  for (unsigned int i = 0 ; i < 8 ; )
  {
    unsigned int j = i ;
    while (j < 8 && !g[j]) j++ ;
    if (j - i > bestlen) { best = (int)i ; bestlen = j - i ; }
    i = j > i ? j : i + 1 ;
  }
  if (bestlen < minrun) best = -1 ;
  for (unsigned int i = 0 ; i < 8 ; i++)
  {
    if (best >= 0 && i == (unsigned int)best)
    {
      s[n++] = ':' ; s[n++] = ':' ;
      i += bestlen - 1 ;
      continue ;
    }
    if (i && !(best >= 0 && i == (unsigned int)best + bestlen)) s[n++] = ':' ;
    n += uint16_xfmt(s + n, (uint16_t)g[i]) ;
  }
  s[n] = 0 ;
  return n ;
}

size_t ip_fmt (char *s, ip_t const *ip)
{
  return ip_is4(ip) ? fmt4(s, ip->b + 12) : fmt6(s, ip->b, 2) ;
}

size_t ip_fmt_tcpserver (char *s, ip_t const *ip)
{
  return ip_is4(ip) ? fmt4(s, ip->b + 12) : fmt6(s, ip->b, 1) ;
}

unsigned int ip_keys (ipkeys_t *k, ip_t const *ip, int keys, char const **why)
{
  if (ip_is4(ip))
  {
    k->len[0] = fmt4(k->s[0], ip->b + 12) ;
    if (keys != KEYS_UCSPI_TCP_IPV6) return 1 ;
    memcpy(k->s[1], "::ffff:", 7) ;
    k->len[1] = 7 + fmt4(k->s[1] + 7, ip->b + 12) ;
    return 2 ;
  }
  if (keys != KEYS_UCSPI_TCP_IPV6)
  {
    *why = "IPv6, and POPRELAY_TCPRULES is ucspi-tcp" ;
    return 0 ;
  }
  k->len[0] = fmt6(k->s[0], ip->b, 1) ;
  if (k->s[0][k->len[0] - 1] == ':')
  {
    *why = "its ucspi-tcp-ipv6 key ends in \"::\", which that tcpserver also matches as a prefix of other addresses" ;
    return 0 ;
  }
  return 1 ;
}

char const *ip_never (ip_t const *ip)
{
  unsigned char const *b = ip->b ;
  if (ip_is4(ip))
  {
    if (b[12] == 0) return "an unspecified (0.0.0.0/8) address" ;
    if ((b[12] & 0xf0) == 0xe0) return "a multicast address" ;
    if ((b[12] & 0xf0) == 0xf0) return "a broadcast or reserved (240.0.0.0/4) address" ;
    return 0 ;
  }
  if (b[0] == 0xff) return "a multicast address" ;
  {
    static unsigned char const zero[16] = { 0 } ;
    if (!memcmp(b, zero, 16)) return "the unspecified address" ;
  }
  return 0 ;
}

char const *ip_linklocal (ip_t const *ip)
{
  if (ip_is4(ip) ? ip->b[12] == 169 && ip->b[13] == 254 : ip->b[0] == 0xfe && (ip->b[1] & 0xc0) == 0x80)
    return "a link-local address (see POPRELAY_LINKLOCAL)" ;
  return 0 ;
}

int ipnet_scan (ipnet_t *net, char const *s, size_t len)
{
  size_t slash = 0 ;
  unsigned int bits, max ;
  ip_t ip ;
  while (slash < len && s[slash] != '/') slash++ ;
  if (!ip_scan(&ip, s, slash)) return 0 ;
  max = ip_is4(&ip) && !memchr(s, ':', slash) ? 32 : 128 ;
  if (slash == len) bits = max ;
  else
  {
    size_t i = slash + 1 ;
    if (i == len || len - i > 3) return 0 ;
    if (len - i > 1 && s[i] == '0') return 0 ;
    bits = 0 ;
    for ( ; i < len ; i++)
    {
      if (s[i] < '0' || s[i] > '9') return 0 ;
      bits = bits * 10 + (unsigned int)(s[i] - '0') ;
    }
    if (bits > max) return 0 ;
  }
  if (max == 32) bits += 96 ;
  for (unsigned int k = bits ; k < 128 ; k++)
    if (ip.b[k >> 3] & (0x80 >> (k & 7))) return 0 ;
  net->ip = ip ;
  net->bits = bits ;
  return 1 ;
}

int ipnet_match (ipnet_t const *net, ip_t const *ip)
{
  unsigned int full = net->bits >> 3, rest = net->bits & 7 ;
  if (memcmp(net->ip.b, ip->b, full)) return 0 ;
  if (!rest) return 1 ;
  unsigned char mask = (unsigned char)(0xff << (8 - rest)) ;
  return (net->ip.b[full] & mask) == (ip->b[full] & mask) ;
}

static int issep (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == ',' ;
}

int ipnets_scan (ipnet_t *nets, unsigned int max, char const *s, char const **bad, size_t *badlen)
{
  unsigned int n = 0 ;
  size_t i = 0, len = strlen(s) ;
  for (;;)
  {
    while (i < len && issep(s[i])) i++ ;
    if (i == len) return (int)n ;
    size_t start = i ;
    while (i < len && !issep(s[i])) i++ ;
    if (n >= max || !ipnet_scan(nets + n, s + start, i - start))
    {
      *bad = s + start ; *badlen = i - start ;
      return -1 ;
    }
    n++ ;
  }
}

int ipnets_match (ipnet_t const *nets, unsigned int n, ip_t const *ip)
{
  for (unsigned int i = 0 ; i < n ; i++)
    if (ipnet_match(nets + i, ip)) return 1 ;
  return 0 ;
}
