/* t-ip: drives ip.c. Each input line is one case:
     scan TEXT          -> canonical form, ucspi-tcp-ipv6's TCPREMOTEIP text,
                           the grant's keys for each tcpserver,
                           refusal reason
     net PREFIX ADDR    -> whether the prefix parses and matches
     nets LIST          -> how many prefixes, or the entry refused */

#include <stdio.h>
#include <string.h>
#include "ip.h"
#include "unesc.h"

int main (void)
{
  char line[4096] ;
  while (fgets(line, sizeof line, stdin))
  {
    size_t len = strlen(line) ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!len || line[0] == '#') { printf("%s\n", line) ; continue ; }
    if (!strncmp(line, "scan ", 5))
    {
      ip_t ip ;
      char *s = line + 5 ;
      size_t n = unesc(s, len - 5) ;
      fputs("scan ", stdout) ; putesc(s, n) ;
      if (!ip_scan(&ip, s, n)) { printf(" -> refused\n") ; continue ; }
      char a[IP_FMT] ;
      ip_fmt(a, &ip) ;
      {
        char t[IP_FMT] ;
        ip_fmt_tcpserver(t, &ip) ;
        printf(" -> %s text=%s", a, t) ;
      }
      for (int flavour = KEYS_UCSPI_TCP ; flavour <= KEYS_UCSPI_TCP_IPV6 ; flavour++)
      {
        ipkeys_t k ;
        char const *why ;
        unsigned int nk = ip_keys(&k, &ip, flavour, &why) ;
        printf(" %s=", flavour == KEYS_UCSPI_TCP ? "v4key" : "v6key") ;
        if (!nk) printf(flavour == KEYS_UCSPI_TCP ? "(none)" : "(none: %s)", why) ;
        for (unsigned int i = 0 ; i < nk ; i++) printf("%s%s", i ? "," : "", k.s[i]) ;
      }
      char const *never = ip_never(&ip) ;
      printf("%s%s\n", never ? " never=" : "", never ? never : "") ;
    }
    else if (!strncmp(line, "net ", 4))
    {
      char *sp = strchr(line + 4, ' ') ;
      ipnet_t net ;
      ip_t ip ;
      if (!sp) { printf("%s -> bad case\n", line) ; continue ; }
      *sp = 0 ;
      printf("net %s %s -> ", line + 4, sp + 1) ;
      if (!ipnet_scan(&net, line + 4, strlen(line + 4))) { printf("prefix refused\n") ; continue ; }
      if (!ip_scan(&ip, sp + 1, strlen(sp + 1))) { printf("address refused\n") ; continue ; }
      printf("/%u %s\n", net.bits, ipnet_match(&net, &ip) ? "match" : "no match") ;
    }
    else if (!strncmp(line, "nets ", 5))
    {
      ipnet_t nets[IPNETS_MAX] ;
      char const *bad ;
      size_t badlen ;
      char *s = line + 5 ;
      size_t sl = unesc(s, len - 5) ;
      s[sl] = 0 ;
      int n = ipnets_scan(nets, IPNETS_MAX, s, &bad, &badlen) ;
      fputs("nets ", stdout) ; putesc(s, sl) ; fputs(" -> ", stdout) ;
      if (n < 0) { printf("refused at \"") ; putesc(bad, badlen) ; printf("\"\n") ; }
      else printf("%d\n", n) ;
    }
    else printf("%s -> unknown case\n", line) ;
  }
  return 0 ;
}
