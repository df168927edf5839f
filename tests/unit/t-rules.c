/* t-rules: drives rules.c. Each input line is one case:
     rules TEXT      parse TEXT (escapes allowed) as ucspi-tcp rules
     rules6 TEXT     the same, split as ucspi-tcp-ipv6's tcprules does
     pick KEY        the record tcpserver would use for TCPREMOTEIP=KEY
     grant KEY       the value of a grant for KEY, with the extra variables
     extra TEXT      set the extra variables (POPRELAY_ENV syntax)
   Records and values are printed with escapes. */

#include <stdio.h>
#include <string.h>
#include "ip.h"
#include "rules.h"
#include "unesc.h"

static rules_t r = RULES_ZERO ;
static stralloc extra = STRALLOC_ZERO ;

int main (void)
{
  char line[8192] ;
  while (fgets(line, sizeof line, stdin))
  {
    size_t len = strlen(line) ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!len || line[0] == '#') { printf("%s\n", line) ; continue ; }
    if (!strncmp(line, "rules ", 6) || !strncmp(line, "rules6 ", 7))
    {
      int six = line[5] == '6' ;
      char *s = line + 6 + six ;
      size_t n = unesc(s, len - 6 - (size_t)six) ;
      uint32_t ln ;
      char const *what ;
      rules_free(&r) ;
      r = (rules_t)RULES_ZERO ;
      printf("%s ", six ? "rules6" : "rules") ; putesc(s, n) ; printf(" ->") ;
      if (!rules_parse(&r, s, n, six ? KEYS_UCSPI_TCP_IPV6 : KEYS_UCSPI_TCP, &ln, &what))
      {
        printf(" line %u: %s\n", ln, what ? what : "out of memory") ;
        rules_free(&r) ;
        r = (rules_t)RULES_ZERO ;
        continue ;
      }
      for (size_t i = 0 ; i < rules_n(&r) ; i++)
      {
        size_t kl, dl ;
        char const *k = rules_key(&r, i, &kl), *d = rules_data(&r, (long)i, &dl) ;
        printf(" [") ; putesc(k, kl) ; printf("]=[") ;
        putesc(d, dl) ; printf("]@%u", rules_line(&r, i)) ;
      }
      if (!rules_n(&r)) printf(" no records") ;
      printf("\n") ;
    }
    else if (!strncmp(line, "pick ", 5))
    {
      long i = rules_pick(&r, line + 5, len - 5) ;
      printf("pick %s -> ", line + 5) ;
      if (i < 0) printf("none\n") ;
      else { size_t kl ; char const *k = rules_key(&r, (size_t)i, &kl) ; printf("[") ; putesc(k, kl) ; printf("]@%u\n", rules_line(&r, (size_t)i)) ; }
    }
    else if (!strncmp(line, "grant ", 6))
    {
      long i = rules_pick(&r, line + 6, len - 6) ;
      stralloc v = STRALLOC_ZERO ;
      printf("grant %s -> ", line + 6) ;
      size_t dl ;
      char const *d = rules_data(&r, i, &dl) ;
      if (rules_isdeny(&r, i)) { printf("denied\n") ; continue ; }
      if (!rules_grantvalue(&v, d, dl, extra.s, extra.len)) { printf("out of memory\n") ; continue ; }
      putesc(v.s, v.len) ; printf("\n") ;
      stralloc_free(&v) ;
    }
    else if (!strncmp(line, "extra ", 6) || !strcmp(line, "extra"))
    {
      char const *what ;
      char *s = line + 6 ;
      size_t n = len > 6 ? unesc(s, len - 6) : 0 ;
      extra.len = 0 ;
      printf("extra ") ; putesc(s, n) ; printf(" -> ") ;
      if (!rules_scanvars(&extra, s, n, &what)) { printf("%s\n", what ? what : "out of memory") ; extra.len = 0 ; continue ; }
      putesc(extra.s, extra.len) ; printf("\n") ;
    }
    else printf("%s -> unknown case\n", line) ;
  }
  return 0 ;
}
