/* fz-ip: the client-address parser, the text every grant starts from.

   For any input text:
   - ip_scan accepts it exactly when the C library's inet_pton does
     (AF_INET without a colon, AF_INET6 with one), with the same 16 bytes,
     IPv4 held v4-mapped; what ip_scan refuses on top (leading zeros in a
     dotted quad, zone ids, more than 45 characters, a NUL) inet_pton
     refuses too on this system, so any difference is a failure;
   - ip_fmt writes lowercase RFC 5952 text (checked against an independent
     formatter and, where the two rules agree, against inet_ntop) that
     re-parses to the same address and formats back to itself;
   - ip_keys: for ucspi-tcp the dotted quad or nothing, for
     ucspi-tcp-ipv6 the dotted quad and ::ffff:a.b.c.d, or the
     single-zero-group compression re-parsing to the same address, or
     nothing when that ends in a colon; and the property that matters:
     every key of a grant matches, under that tcpserver's own lookup
     (exact, prefixes ending in "." or ":", host names, TCPREMOTEINFO,
     default), no client but the granted one;
   - stamp_scanname accepts a file name only if it is the canonical text of
     an address in that address's bucket;
   - ip_never refuses exactly 0.0.0.0/8, 224.0.0.0/3, ::, ff00::/8;
   - ipnet_scan and ipnets_scan: what they accept re-formats and re-parses
     to the same prefix, has no bits set past it, matches what it should;
     a list is accepted exactly when each of its entries is. */

#include <arpa/inet.h>
#include <string.h>
#include "ip.h"
#include "stamp.h"
#include "fz.h"

static unsigned int group (ip_t const *ip, unsigned int i)
{
  return (unsigned int)ip->b[2*i] << 8 | ip->b[2*i+1] ;
}

/* an independent RFC 5952 formatter: compress the first longest run of at
   least minrun zero groups */
static void ref_fmt6 (char *s, ip_t const *ip, unsigned int minrun)
{
  unsigned int bestat = 9, bestlen = 0 ;
  for (unsigned int i = 0 ; i < 8 ; i++)
  {
    unsigned int n = 0 ;
    while (i + n < 8 && !group(ip, i + n)) n++ ;
    if (n > bestlen) { bestlen = n ; bestat = i ; }
  }
  if (bestlen < minrun) bestat = 9 ;
  s[0] = 0 ;
  for (unsigned int i = 0 ; i < 8 ; i++)
  {
    if (i == bestat)
    {
      strcat(s, "::") ;
      i += bestlen - 1 ;
      continue ;
    }
    if (i && i != bestat + bestlen) strcat(s, ":") ;
    sprintf(s + strlen(s), "%x", group(ip, i)) ;
  }
}

static int islower_canon (char const *s)
{
  for ( ; *s ; s++) if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || *s == ':' || *s == '.')) return 0 ;
  return 1 ;
}

/* The texts a tcpserver of this flavour may put in TCPREMOTEIP for a
   client at ip, written independently of ip.c: ucspi-tcp knows IPv4 only;
   ucspi-tcp-ipv6 gives IPv4 as the dotted quad, or as ::ffff:a.b.c.d when
   it listens with -6, and IPv6 with the first longest zero run
   compressed, even a single group. Returns how many. */
static unsigned int texts (char t[2][64], ip_t const *ip, int flavour)
{
  if (ip_is4(ip))
  {
    sprintf(t[0], "%u.%u.%u.%u", ip->b[12], ip->b[13], ip->b[14], ip->b[15]) ;
    if (flavour == KEYS_UCSPI_TCP) return 1 ;
    sprintf(t[1], "::ffff:%s", t[0]) ;
    return 2 ;
  }
  if (flavour == KEYS_UCSPI_TCP) return 0 ;
  ref_fmt6(t[0], ip, 1) ;
  return 1 ;
}

/* 1 if tcpserver, for a client whose TCPREMOTEIP is text and whose host
   name and TCPREMOTEINFO it may or may not know, could use the record
   keyed key: the exact text, info@text, =host, prefixes of the text
   ending in "." (and ":" for ucspi-tcp-ipv6), =suffixes, "=", "". Since a
   host name or an info can be anything, any key holding "=" or "@", and
   the empty key, may match. */
static int lookup_may_use (char const *key, size_t keylen, char const *text, int flavour)
{
  size_t tl = strlen(text) ;
  if (!keylen || memchr(key, '=', keylen) || memchr(key, '@', keylen)) return 1 ;
  if (keylen == tl && !memcmp(key, text, tl)) return 1 ;
  if (keylen < tl && !memcmp(key, text, keylen))
  {
    char last = key[keylen - 1] ;
    if (last == '.' || (last == ':' && flavour == KEYS_UCSPI_TCP_IPV6)) return 1 ;
  }
  return 0 ;
}

/* The property: every key of a grant of ip matches, under the target's
   own lookup, one client only, ip itself. Tried against ip and against
   clients near it: each byte changed, and every prefix of ip with the
   rest zero, ones or the bits flipped, in the same family. */
static void check_keys_match_one (uint8_t const *data, size_t size, ip_t const *ip, ipkeys_t const *k, unsigned int nk, int flavour)
{
  char t[2][64] ;
  unsigned int nt = texts(t, ip, flavour) ;
  for (unsigned int i = 0 ; i < nk ; i++)
  {
    int found = 0 ;
    FZ_CHECK(k->len[i] == strlen(k->s[i]), "key length") ;
    for (unsigned int j = 0 ; j < nt ; j++) found |= !strcmp(k->s[i], t[j]) ;
    FZ_CHECK(found, "the key \"%s\" is no text tcpserver gives this client", k->s[i]) ;
  }
  for (unsigned int v = 0 ; v < 16 * 3 + 129 * 3 ; v++)
  {
    ip_t c = *ip ;
    if (v < 48)
    {
      unsigned int byte = v / 3 ;
      if (ip_is4(ip) && byte < 12) continue ;
      c.b[byte] = v % 3 == 0 ? (unsigned char)(c.b[byte] + 1) : v % 3 == 1 ? 0 : 0xff ;
    }
    else
    {
      unsigned int bits = (v - 48) / 3, fill = (v - 48) % 3 ;
      if (ip_is4(ip) && bits < 96) continue ;
      for (unsigned int kb = bits ; kb < 128 ; kb++)
      {
        unsigned char m = (unsigned char)(0x80 >> (kb & 7)) ;
        int on = fill == 0 ? 0 : fill == 1 ? 1 : !(ip->b[kb >> 3] & m) ;
        if (on) c.b[kb >> 3] |= m ; else c.b[kb >> 3] &= (unsigned char)~m ;
      }
    }
    if (ip_equal(&c, ip)) continue ;
    nt = texts(t, &c, flavour) ;
    for (unsigned int i = 0 ; i < nk ; i++)
      for (unsigned int j = 0 ; j < nt ; j++)
        FZ_CHECK(!lookup_may_use(k->s[i], k->len[i], t[j], flavour),
                 "the key \"%s\" of a grant also matches the client \"%s\" (%s)", k->s[i], t[j], flavour == KEYS_UCSPI_TCP ? "ucspi-tcp" : "ucspi-tcp-ipv6") ;
  }
}

static void check_addr (uint8_t const *data, size_t size, ip_t const *ip)
{
  char a[IP_FMT], a2[IP_FMT], ref[64] ;
  ip_t back ;
  size_t n = ip_fmt(a, ip) ;
  FZ_CHECK(n == strlen(a) && n < IP_FMT && n > 0, "ip_fmt length %zu for \"%s\"", n, a) ;
  FZ_CHECK(islower_canon(a), "ip_fmt wrote \"%s\": not lowercase hex, dots and colons", a) ;
  FZ_CHECK(ip_scan(&back, a, n) && ip_equal(&back, ip), "ip_fmt's \"%s\" does not re-parse to the same address", a) ;
  FZ_CHECK(ip_fmt(a2, &back) == n && !strcmp(a, a2), "ip_fmt is not a fixed point: \"%s\" then \"%s\"", a, a2) ;
  if (ip_is4(ip))
  {
    char q[16] ;
    inet_ntop(AF_INET, ip->b + 12, q, sizeof q) ;
    FZ_CHECK(!strcmp(a, q), "IPv4 \"%s\", inet_ntop says \"%s\"", a, q) ;
  }
  else
  {
    ref_fmt6(ref, ip, 2) ;
    FZ_CHECK(!strcmp(a, ref), "ip_fmt \"%s\", the RFC 5952 reference \"%s\"", a, ref) ;
    /* glibc writes ::a.b.c.d for the first 96 bits zero; elsewhere it
       applies the same rule */
    if (group(ip, 0) | group(ip, 1) | group(ip, 2) | group(ip, 3) | group(ip, 4) | group(ip, 5))
    {
      char nt[INET6_ADDRSTRLEN] ;
      inet_ntop(AF_INET6, ip->b, nt, sizeof nt) ;
      FZ_CHECK(!strcmp(a, nt), "ip_fmt \"%s\", inet_ntop \"%s\"", a, nt) ;
    }
  }

  /* keys */
  {
    ipkeys_t k4, k6 ;
    char const *why4 = 0, *why6 = 0 ;
    unsigned int n4 = ip_keys(&k4, ip, KEYS_UCSPI_TCP, &why4) ;
    unsigned int n6 = ip_keys(&k6, ip, KEYS_UCSPI_TCP_IPV6, &why6) ;
    if (ip_is4(ip))
    {
      char mapped[IP_KEYFMT] ;
      sprintf(mapped, "::ffff:%s", a) ;
      FZ_CHECK(n4 == 1 && k4.len[0] == n && !strcmp(k4.s[0], a), "ucspi-tcp key for \"%s\"", a) ;
      FZ_CHECK(n6 == 2 && k6.len[0] == n && !strcmp(k6.s[0], a) && !strcmp(k6.s[1], mapped) && k6.len[1] == strlen(mapped),
               "ucspi-tcp-ipv6 keys for \"%s\": the dotted quad and \"%s\"", a, mapped) ;
    }
    else
    {
      FZ_CHECK(!n4 && why4, "ucspi-tcp has no IPv6 key, got %u", n4) ;
      ref_fmt6(ref, ip, 1) ;
      if (ref[strlen(ref) - 1] == ':')
        FZ_CHECK(!n6 && why6, "the ucspi-tcp-ipv6 key \"%s\" ends in a colon, and was given", ref) ;
      else
      {
        FZ_CHECK(n6 == 1 && k6.len[0] == strlen(k6.s[0]) && !strcmp(k6.s[0], ref), "ucspi-tcp-ipv6 key \"%s\", reference \"%s\"", k6.s[0], ref) ;
        FZ_CHECK(ip_scan(&back, k6.s[0], k6.len[0]) && ip_equal(&back, ip), "the ucspi-tcp-ipv6 key \"%s\" does not re-parse to the address", k6.s[0]) ;
        FZ_CHECK(islower_canon(k6.s[0]), "key \"%s\" not lowercase", k6.s[0]) ;
      }
    }
    check_keys_match_one(data, size, ip, &k4, n4, KEYS_UCSPI_TCP) ;
    check_keys_match_one(data, size, ip, &k6, n6, KEYS_UCSPI_TCP_IPV6) ;
  }

  /* never */
  {
    static unsigned char const zero[16] = { 0 } ;
    int want = ip_is4(ip) ? (ip->b[12] == 0 || ip->b[12] >= 224) : (ip->b[0] == 0xff || !memcmp(ip->b, zero, 16)) ;
    FZ_CHECK(!!ip_never(ip) == want, "ip_never(%s) is %s", a, ip_never(ip) ? ip_never(ip) : "null") ;
  }

  /* the stamp name: only the canonical text, only in its bucket */
  {
    unsigned int b = stamp_bucket(ip) ;
    ip_t got ;
    int same = n == size && !memcmp(a, data, size) ;
    FZ_CHECK(b < STAMP_BUCKETS, "bucket %u", b) ;
    FZ_CHECK(stamp_scanname(&got, (char const *)data, size, b) == same, "stamp_scanname of the text in bucket %u: %s, canonical is \"%s\"", b, same ? "refused" : "accepted", a) ;
    if (same) FZ_CHECK(ip_equal(&got, ip), "stamp_scanname gave another address") ;
    FZ_CHECK(!stamp_scanname(&got, (char const *)data, size, (b + 1) & 255), "stamp_scanname accepted a name in the wrong bucket") ;
  }
}

/* a prefix as text that ipnet_scan reads back: IPv4 when it is one */
static void fmt_net (char *s, ipnet_t const *net)
{
  if (ip_is4(&net->ip) && net->bits >= 96)
    sprintf(s, "%u.%u.%u.%u/%u", net->ip.b[12], net->ip.b[13], net->ip.b[14], net->ip.b[15], net->bits - 96) ;
  else
  {
    ref_fmt6(s, &net->ip, 2) ;
    if (ip_is4(&net->ip))   /* v4-mapped, a prefix shorter than /96 */
      sprintf(s, "::ffff:%u.%u.%u.%u", net->ip.b[12], net->ip.b[13], net->ip.b[14], net->ip.b[15]) ;
    sprintf(s + strlen(s), "/%u", net->bits) ;
  }
}

static int bit (ip_t const *ip, unsigned int k)
{
  return !!(ip->b[k >> 3] & (0x80 >> (k & 7))) ;
}

static int strict_decimal (char const *s, size_t len, unsigned int *u)
{
  unsigned int v = 0 ;
  if (!len || len > 3 || (len > 1 && s[0] == '0')) return 0 ;
  for (size_t i = 0 ; i < len ; i++)
  {
    if (s[i] < '0' || s[i] > '9') return 0 ;
    v = v * 10 + (unsigned int)(s[i] - '0') ;
  }
  *u = v ;
  return 1 ;
}

/* what ip.h says ipnet_scan accepts, written independently */
static int spec_net (char const *s, size_t len, ipnet_t *net)
{
  char const *slash = memchr(s, '/', len) ;
  size_t head = slash ? (size_t)(slash - s) : len ;
  unsigned int max, bits ;
  ip_t ip ;
  if (!ip_scan(&ip, s, head)) return 0 ;
  max = memchr(s, ':', head) ? 128 : 32 ;
  if (!slash) bits = max ;
  else if (!strict_decimal(slash + 1, len - head - 1, &bits) || bits > max) return 0 ;
  if (max == 32) bits += 96 ;
  for (unsigned int k = bits ; k < 128 ; k++) if (bit(&ip, k)) return 0 ;
  net->ip = ip ;
  net->bits = bits ;
  return 1 ;
}

static void check_net (uint8_t const *data, size_t size)
{
  ipnet_t net, ref, back ;
  char const *s = (char const *)data ;
  int ok = ipnet_scan(&net, s, size) ;
  int want = spec_net(s, size, &ref) ;
  FZ_CHECK(ok == want, "ipnet_scan %s what ip.h says it %s", ok ? "accepts" : "refuses", want ? "accepts" : "refuses") ;
  if (!ok) return ;
  FZ_CHECK(net.bits == ref.bits && ip_equal(&net.ip, &ref.ip), "ipnet_scan read another prefix") ;
  FZ_CHECK(net.bits <= 128, "%u bits", net.bits) ;
  {
    char t[80], t2[80] ;
    fmt_net(t, &net) ;
    FZ_CHECK(ipnet_scan(&back, t, strlen(t)) && back.bits == net.bits && ip_equal(&back.ip, &net.ip), "the prefix written as \"%s\" does not read back", t) ;
    fmt_net(t2, &back) ;
    FZ_CHECK(!strcmp(t, t2), "prefix text not a fixed point: \"%s\" \"%s\"", t, t2) ;
  }
  FZ_CHECK(ipnet_match(&net, &net.ip), "a prefix does not match its own address") ;
  for (unsigned int k = 0 ; k < 128 ; k += 7)
  {
    ip_t x = net.ip ;
    x.b[k >> 3] ^= (unsigned char)(0x80 >> (k & 7)) ;
    FZ_CHECK(ipnet_match(&net, &x) == (k >= net.bits), "/%u and bit %u flipped: match is %d", net.bits, k, ipnet_match(&net, &x)) ;
  }
}

static int issep (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == ',' ;
}

static void check_nets (uint8_t const *data, size_t size)
{
  static ipnet_t nets[IPNETS_MAX] ;
  char *s = malloc(size + 1) ;
  char const *bad = 0 ;
  size_t badlen = 0, i = 0 ;
  int n, want = 0 ;
  char const *wantbad = 0 ;
  size_t wantbadlen = 0 ;
  if (!s) abort() ;
  memcpy(s, data, size) ;
  s[size] = 0 ;
  n = ipnets_scan(nets, IPNETS_MAX, s, &bad, &badlen) ;
  /* the reference: split at separators up to the first NUL, each entry
     through ipnet_scan, at most IPNETS_MAX */
  {
    size_t len = strlen(s) ;
    for (;;)
    {
      ipnet_t one ;
      while (i < len && issep(s[i])) i++ ;
      if (i == len) break ;
      size_t start = i ;
      while (i < len && !issep(s[i])) i++ ;
      if (want >= IPNETS_MAX || !ipnet_scan(&one, s + start, i - start)) { wantbad = s + start ; wantbadlen = i - start ; want = -1 ; break ; }
      FZ_CHECK(one.bits == nets[want].bits && ip_equal(&one.ip, &nets[want].ip), "entry %d of the list differs from the entry alone", want) ;
      want++ ;
    }
  }
  FZ_CHECK(n == want, "ipnets_scan gave %d, the entries one by one %d", n, want) ;
  if (n < 0) FZ_CHECK(bad == wantbad && badlen == wantbadlen, "ipnets_scan names another bad entry") ;
  free(s) ;
}

int LLVMFuzzerTestOneInput (uint8_t const *data, size_t size)
{
  char const *s = (char const *)data ;
  ip_t ip ;
  int ok = ip_scan(&ip, s, size) ;
  int colon = !!memchr(s, ':', size) ;
  int nul = !!memchr(s, 0, size) ;

  if (ok)
  {
    unsigned char b[16] ;
    char *z = malloc(size + 1) ;
    if (!z) abort() ;
    memcpy(z, s, size) ; z[size] = 0 ;
    FZ_CHECK(size <= IP_TEXTMAX && !nul, "ip_scan accepted %zu bytes%s", size, nul ? " holding a NUL" : "") ;
    if (colon)
    {
      FZ_CHECK(inet_pton(AF_INET6, z, b) == 1, "ip_scan accepts, inet_pton(AF_INET6) refuses") ;
      FZ_CHECK(!memcmp(b, ip.b, 16), "ip_scan and inet_pton(AF_INET6) read different addresses") ;
    }
    else
    {
      FZ_CHECK(inet_pton(AF_INET, z, b) == 1, "ip_scan accepts, inet_pton(AF_INET) refuses") ;
      FZ_CHECK(ip_is4(&ip) && !memcmp(b, ip.b + 12, 4), "ip_scan and inet_pton(AF_INET) read different addresses") ;
    }
    free(z) ;
    check_addr(data, size, &ip) ;
  }
  else if (!nul && size < 4096)
  {
    unsigned char b[16] ;
    char z[4096] ;
    memcpy(z, s, size) ; z[size] = 0 ;
    FZ_CHECK(inet_pton(colon ? AF_INET6 : AF_INET, z, b) != 1, "ip_scan refuses what inet_pton(%s) accepts", colon ? "AF_INET6" : "AF_INET") ;
  }
  if (!ok)
  {
    ip_t got ;
    FZ_CHECK(!stamp_scanname(&got, s, size, size ? data[0] : 0), "stamp_scanname accepted a name ip_scan refuses") ;
  }

  check_net(data, size) ;
  check_nets(data, size) ;
  return 0 ;
}
