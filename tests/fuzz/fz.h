/* fz.h: what every fuzz target shares. A broken property prints what was
   wanted, the input in C escapes, and aborts, so that libFuzzer keeps the
   input as a crash artifact and the run fails. */

#ifndef POPRELAY_FZ_H
#define POPRELAY_FZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

char const *PROG = "fuzz" ;

static void fz_show (char const *label, void const *p, size_t len)
{
  unsigned char const *s = p ;
  fprintf(stderr, "  %s (%zu bytes): \"", label, len) ;
  for (size_t i = 0 ; i < len && i < 600 ; i++)
  {
    if (s[i] == '\\' || s[i] == '"') fprintf(stderr, "\\%c", s[i]) ;
    else if (s[i] >= 0x20 && s[i] < 0x7f) fputc(s[i], stderr) ;
    else fprintf(stderr, "\\x%02x", s[i]) ;
  }
  fprintf(stderr, "%s\"\n", len > 600 ? "..." : "") ;
}

static void fz_fail (void const *in, size_t len, char const *fmt, ...)
{
  va_list ap ;
  fprintf(stderr, "PROPERTY BROKEN: ") ;
  va_start(ap, fmt) ;
  vfprintf(stderr, fmt, ap) ;
  va_end(ap) ;
  fprintf(stderr, "\n") ;
  fz_show("input", in, len) ;
  abort() ;
}

/* White-box looks at a rules_t's records, for the targets that check
   its insides (rules.h keeps them behind functions for everyone else). */
#define RREC(r, i) (genalloc_s(rule_t, &(r)->recs) + (i))
#define RKEY(r, rec) ((r)->store.s + (rec)->key)
#define RDATA(r, rec) ((r)->store.s + (rec)->data)

#define FZ_CHECK(cond, ...) do { if (!(cond)) fz_fail(data, size, __VA_ARGS__) ; } while (0)

#endif
