/* t-s6rules: drives s6rules.c. Each input line is one case:
     rules TEXT      parse TEXT (escapes allowed) as KEYS_S6 rules and
                     translate it: the s6 records, lines left out, or the
                     line refused and why
     extra TEXT      set POPRELAY_ENV (tcprules syntax) for what follows
     grant ADDR      the records of a grant for ADDR under the last rules,
                     and the static records it replaces
     value TEXT      the s6 value of a tcprules value (escapes allowed)
   Keys and values are printed with escapes. */

#include <stdio.h>
#include <string.h>
#include "ip.h"
#include "rules.h"
#include "s6rules.h"
#include "unesc.h"

static rules_t r = RULES_ZERO ;
static s6rules_t s6 = S6RULES_ZERO ;
static stralloc extra = STRALLOC_ZERO ;

static void dead (uint32_t line, void *ctx)
{
  (void)ctx ;
  printf(" (line %u left out)", line) ;
}

static void records (void)
{
  for (size_t i = 0 ; i < s6rules_n(&s6) ; i++)
  {
    char const *k, *d ;
    size_t kl, dl ;
    if (!s6rules_get(&s6, i, &k, &kl, &d, &dl)) { printf(" (%zu replaced)", i) ; continue ; }
    printf(" [") ; putesc(k, kl) ; printf("]=[") ; putesc(d, dl) ; printf("]") ;
  }
}

static void dorules (char *s, size_t len)
{
  uint32_t line ;
  char const *what ;
  size_t n = unesc(s, len) ;
  rules_free(&r) ; r = (rules_t)RULES_ZERO ;
  s6rules_free(&s6) ; s6 = (s6rules_t)S6RULES_ZERO ;
  printf("rules ") ; putesc(s, n) ; printf(" ->") ;
  if (!rules_parse(&r, s, n, KEYS_S6, &line, &what)) { printf(" parse: line %u: %s\n", line, what ? what : "out of memory") ; return ; }
  if (!s6rules_make(&s6, &r, extra.s, extra.len, &dead, 0, &line, &what))
  {
    printf(" refused: line %u: %s\n", line, what ? what : "out of memory") ;
    s6rules_free(&s6) ; s6 = (s6rules_t)S6RULES_ZERO ;
    return ;
  }
  records() ;
  printf("\n") ;
}

static void dogrant (char const *s, size_t len)
{
  ip_t ip ;
  char key[2][S6RULES_KEYMAX], text[IP_FMT] ;
  size_t kl[2], tl ;
  stralloc v = STRALLOC_ZERO, sv = STRALLOC_ZERO ;
  char const *what ;
  long rec ;
  printf("grant %.*s ->", (int)len, s) ;
  if (!ip_scan(&ip, s, len)) { printf(" not an address\n") ; return ; }
  tl = ip_fmt_tcpserver(text, &ip) ;
  rec = rules_pick(&r, text, tl) ;
  if (rules_isdeny(&r, rec)) { printf(" denied\n") ; return ; }
  {
    size_t dl ;
    char const *d = rules_data(&r, rec, &dl) ;
    if (!rules_grantvalue(&v, d, dl, extra.s, extra.len)
     || !s6rules_value(&sv, v.s, v.len, &what)) { printf(" %s\n", what ? what : "out of memory") ; return ; }
  }
  for (unsigned int i = 0, n = s6rules_grantkeys(key, kl, &ip) ; i < n ; i++)
  {
    printf(" [") ; putesc(key[i], kl[i]) ; printf("]=[") ; putesc(sv.s, sv.len) ; printf("]") ;
  }
  s6rules_replace(&s6, rec) ;
  printf(" then") ;
  records() ;
  printf("\n") ;
  stralloc_free(&v) ;
  stralloc_free(&sv) ;
}

int main (void)
{
  char line[8192] ;
  while (fgets(line, sizeof line, stdin))
  {
    size_t len = strlen(line) ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!len || line[0] == '#') { printf("%s\n", line) ; continue ; }
    if (!strncmp(line, "rules ", 6) || !strcmp(line, "rules")) dorules(line + (len > 6 ? 6 : len), len > 6 ? len - 6 : 0) ;
    else if (!strncmp(line, "grant ", 6)) dogrant(line + 6, len - 6) ;
    else if (!strncmp(line, "extra ", 6) || !strcmp(line, "extra"))
    {
      char const *what ;
      size_t n = len > 6 ? unesc(line + 6, len - 6) : 0 ;
      extra.len = 0 ;
      printf("extra ") ; putesc(line + 6, n) ;
      if (!rules_scanvars(&extra, line + 6, n, &what)) { printf(" -> %s\n", what ? what : "out of memory") ; extra.len = 0 ; continue ; }
      printf("\n") ;
    }
    else if (!strncmp(line, "value ", 6))
    {
      stralloc sv = STRALLOC_ZERO ;
      char const *what ;
      size_t n = unesc(line + 6, len - 6) ;
      printf("value ") ; putesc(line + 6, n) ; printf(" -> ") ;
      if (!s6rules_value(&sv, line + 6, n, &what)) printf("refused: %s\n", what ? what : "out of memory") ;
      else { putesc(sv.s, sv.len) ; printf("\n") ; }
      stralloc_free(&sv) ;
    }
    else printf("%s -> unknown case\n", line) ;
  }
  return 0 ;
}
