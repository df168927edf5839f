/* t-conf: drives conf.c. Each input line is one case:
     NAME VALUE   conf_set, then the field it set, or why it refused */

#include <stdio.h>
#include <string.h>
#include "conf.h"
#include "unesc.h"

int main (void)
{
  char line[8192] ;
  while (fgets(line, sizeof line, stdin))
  {
    conf_t c ;
    char const *why ;
    size_t len = strlen(line) ;
    char *sp ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!len || line[0] == '#') { printf("%s\n", line) ; continue ; }
    conf_defaults(&c) ;
    sp = strchr(line, ' ') ;
    if (!sp) sp = line + len ;
    else *sp++ = 0 ;
    sp[unesc(sp, strlen(sp))] = 0 ;
    printf("%s ", line) ; putesc(sp, strlen(sp)) ; printf(" -> ") ;
    if (!conf_set(&c, line, sp, &why)) { printf("refused: %s\n", why) ; stralloc_free(&c.env) ; continue ; }
    printf("dir=%s cache=%s rules=%s cdb=%s ttl=%u skew=%u grace=%u keys=%d never=%u env=", c.dir, c.cache, c.rules, c.cdb, c.ttl, c.skew, c.grace, c.keys, c.nnever) ;
    putesc(c.env.s, c.env.len) ;
    if (c.hold) printf(" hold=%u", c.hold) ;
    printf("\n") ;
    stralloc_free(&c.env) ;
  }
  return 0 ;
}
