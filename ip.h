/* ip.h: client addresses, parsed strictly and formatted canonically.

   An address is 16 bytes. IPv4 is held as the v4-mapped IPv6 address
   ::ffff:a.b.c.d, so that the two spellings of one IPv4 client are one
   value, and fold to the dotted quad when formatted.

   Text from outside (an environment variable, a stamp's file name, a
   never-grant list) only becomes an address through ip_scan or ipnet_scan,
   which accept the whole text or nothing. Every file name and cdb key is
   formatted from the value, never copied from the text. */

#ifndef POPRELAY_IP_H
#define POPRELAY_IP_H

#include <stddef.h>

typedef struct ip_s ip_t ;
struct ip_s { unsigned char b[16] ; } ;

/* Longest text ip_scan accepts; longer text is refused unread.
   "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 characters. */
#define IP_TEXTMAX 45
/* Room for any formatted address plus a NUL. */
#define IP_FMT 48

/* 1 if s[0..len) is exactly one IPv4 or IPv6 address, else 0.
   IPv4: four decimal parts 0-255, no leading zeros, no other characters.
   IPv6: RFC 4291 text, hex any case, at most one "::", an optional
   trailing dotted quad; no zone id, no brackets, no prefix length. */
extern int ip_scan (ip_t *, char const *s, size_t len) ;

extern int ip_is4 (ip_t const *) ;
extern int ip_equal (ip_t const *, ip_t const *) ;

/* Canonical text, NUL-terminated; returns the length.
   IPv4: dotted quad. IPv6: RFC 5952 (lowercase, the first longest run
   of two or more zero groups compressed). This is the stamp file name. */
extern size_t ip_fmt (char *, ip_t const *) ;

/* The cdb keys of a grant: every text the target tcpserver may put in
   TCPREMOTEIP for that client, which it looks up as an exact key. Each is
   the parsed address formatted back, so it re-parses to that address and
   to no other; none is empty, none holds "=" or "@" (host names,
   TCPREMOTEINFO), none ends in "." or ":", the two ends that tcpserver
   also looks up as a prefix of other clients' text. So each matches one
   client only: the granted one.
   KEYS_UCSPI_TCP: Debian's ucspi-tcp, IPv4 only: the dotted quad; IPv6
   has no key.
   KEYS_UCSPI_TCP_IPV6: Debian's ucspi-tcp-ipv6: IPv4 as the dotted quad,
   and as ::ffff:a.b.c.d, which that tcpserver gives IPv4 clients when it
   listens with -6; IPv6 like RFC 5952 except that a single zero group is
   compressed too. An IPv6 address whose text then ends in "::" has no
   key: that text is also a prefix of other addresses' text.
   Returns how many keys (1 or 2), or 0 with *why. */
#define KEYS_UCSPI_TCP 0
#define KEYS_UCSPI_TCP_IPV6 1
#define IP_KEYS 2
#define IP_KEYFMT (IP_FMT + 8)
typedef struct ipkeys_s ipkeys_t ;
struct ipkeys_s
{
  char s[IP_KEYS][IP_KEYFMT] ;
  size_t len[IP_KEYS] ;
} ;
extern unsigned int ip_keys (ipkeys_t *, ip_t const *, int keys, char const **why) ;

/* The text ucspi-tcp-ipv6's tcpserver puts in TCPREMOTEIP when it does
   not listen with -6, whatever it ends in (the first key of ip_keys when
   there is one); returns its length. */
extern size_t ip_fmt_tcpserver (char *, ip_t const *) ;

/* Addresses that are never a client: a reason, or 0 if none applies.
   IPv4 0.0.0.0/8, 224.0.0.0/4 multicast, 240.0.0.0/4 reserved and
   broadcast; IPv6 :: and ff00::/8. */
extern char const *ip_never (ip_t const *) ;

/* Link-local addresses, 169.254.0.0/16 and fe80::/10: a reason, or 0.
   The same address is another host on each link, so a grant of one
   would let that address relay from every link the SMTP server is on. */
extern char const *ip_linklocal (ip_t const *) ;

/* A prefix: the first bits bits of ip, counted in the 128-bit space
   (an IPv4 /n is 96+n). */
typedef struct ipnet_s ipnet_t ;
struct ipnet_s { ip_t ip ; unsigned int bits ; } ;

/* "address" or "address/bits"; bits beyond the prefix must be zero. */
extern int ipnet_scan (ipnet_t *, char const *s, size_t len) ;
extern int ipnet_match (ipnet_t const *, ip_t const *) ;

/* A list of prefixes, separated by spaces, tabs, newlines or commas, as an
   administrator writes it in POPRELAY_NEVER. Returns the count, or -1 with
   *bad and *badlen set to the entry that does not parse. */
#define IPNETS_MAX 256
extern int ipnets_scan (ipnet_t *, unsigned int max, char const *s, char const **bad, size_t *badlen) ;
extern int ipnets_match (ipnet_t const *, unsigned int n, ip_t const *) ;

#endif
