/* t-stamp: drives stamp.c. Each input line is one case:
     state MTIME NOW TTL SKEW   the age rule, times in seconds
     name TEXT BUCKET           whether TEXT names a stamp in BUCKET
     bucket ADDR                the bucket of an address
     parse TEXT                 stamp contents (escapes allowed), and
                                what stamp_fmt writes back from them */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skalibs/stralloc.h>
#include "stamp.h"
#include "unesc.h"

int main (void)
{
  char line[8192] ;
  static char const *const states[] = { "live", "expired", "future" } ;
  while (fgets(line, sizeof line, stdin))
  {
    size_t len = strlen(line) ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!len || line[0] == '#') { printf("%s\n", line) ; continue ; }
    if (!strncmp(line, "state ", 6))
    {
      long long m, n ;
      unsigned int ttl, skew ;
      if (sscanf(line + 6, "%lld %lld %u %u", &m, &n, &ttl, &skew) != 4) { printf("%s -> bad case\n", line) ; continue ; }
      printf("%s -> %s\n", line, states[stamp_state(m * 1000000000, n * 1000000000, ttl, skew)]) ;
    }
    else if (!strncmp(line, "name ", 5))
    {
      char *sp = strrchr(line, ' ') ;
      ip_t ip ;
      size_t n ;
      unsigned int b = (unsigned int)strtoul(sp + 1, 0, 16) ;
      n = unesc(line + 5, (size_t)(sp - line) - 5) ;
      printf("name ") ; putesc(line + 5, n) ; printf(" %s -> %s\n", sp + 1, stamp_scanname(&ip, line + 5, n, b) ? "stamp" : "not a stamp") ;
    }
    else if (!strncmp(line, "bucket ", 7))
    {
      ip_t ip ;
      char bn[3] ;
      if (!ip_scan(&ip, line + 7, len - 7)) { printf("%s -> refused\n", line) ; continue ; }
      stamp_bucketname(bn, stamp_bucket(&ip)) ;
      printf("%s -> %s\n", line, bn) ;
    }
    else if (!strncmp(line, "parse ", 6))
    {
      stampinfo_t si ;
      size_t n = unesc(line + 6, len - 6) ;
      stralloc sa = STRALLOC_ZERO ;
      printf("parse ") ; putesc(line + 6, n) ; printf(" -> ") ;
      if (!stamp_parse(&si, line + 6, n)) { printf("refused\n") ; continue ; }
      printf("user=") ; putesc(si.user, strlen(si.user)) ;
      printf(" uid=%s time=%s service=%s local=%s via=%s", si.uid, si.time, si.service, si.local, si.via) ;
      if (si.holder[0]) printf(" holder=%s", si.holder) ;
      if (!stamp_fmt(&sa, &si)) { printf(" fmt failed\n") ; continue ; }
      printf(" fmt=") ; putesc(sa.s, sa.len) ;
      printf(" %s\n", sa.len == n && (!n || !memcmp(sa.s, line + 6, n)) ? "same" : "different") ;
      stralloc_free(&sa) ;
    }
    else printf("%s -> unknown case\n", line) ;
  }
  return 0 ;
}
