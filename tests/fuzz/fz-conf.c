/* fz-conf: the POPRELAY_* variables and the options that set them.

   The first byte picks the variable (or a name that is not one), the
   second how it is set: conf_set, conf_setopt with its option letter, or
   conf_env from the environment; the rest, up to a NUL (neither an
   argument nor an environment variable can hold one), is the value.
   - The three ways give the same answer and the same settings.
   - A refusal says why in one short line of printable text, and leaves
     every setting as it was.
   - What is accepted stays within the documented bounds: paths absolute
     and at most 4000 bytes, POPRELAY_TTL and POPRELAY_GRACE 1 to
     31536000, POPRELAY_SKEW 0 to 3600, POPRELAY_HOLD 0 to 604800, each
     written in plain decimal exactly as given; POPRELAY_TCPRULES one of
     the names;
     POPRELAY_NEVER at most 256 prefixes, each its entry read alone, no
     bit set past a prefix; POPRELAY_ENV a list of "+NAME=value" entries,
     one per variable given, that a grant carries.
   - conf_uint accepts exactly plain decimals (no sign, no leading zero)
     within its bounds. */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"
#include "rules.h"
#include "fz.h"

static uint8_t const *data ;
static size_t size ;

static char const *const names[] = { "POPRELAY_DIR", "POPRELAY_CACHE", "POPRELAY_RULES", "POPRELAY_CDB", "POPRELAY_TTL", "POPRELAY_SKEW", "POPRELAY_GRACE", "POPRELAY_TCPRULES", "POPRELAY_NEVER", "POPRELAY_ENV", "POPRELAY_USERMAX", "POPRELAY_LINKLOCAL", "POPRELAY_HOSTS", "POPRELAY_HOLD", "POPRELAY_BOGUS", "POPRELAY_dir" } ;
#define NNAMES (sizeof names / sizeof *names)
/* the variables that exist, and their option letters */
#define NVARS 14
static char const letters[] = "dcrotkgTnemLHh" ;

static int ref_uint (char const *s, unsigned long min, unsigned long max, unsigned int *u)
{
  size_t n = strlen(s) ;
  unsigned long v = 0 ;
  if (!n || n > 10 || (s[0] == '0' && n > 1)) return 0 ;
  for (size_t i = 0 ; i < n ; i++)
  {
    if (s[i] < '0' || s[i] > '9') return 0 ;
    v = v * 10 + (unsigned long)(s[i] - '0') ;
  }
  if (v < min || v > max) return 0 ;
  *u = (unsigned int)v ;
  return 1 ;
}

static int issep (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == ',' ;
}

/* the settings, without the storage of the env list */
static int same_conf (conf_t const *a, conf_t const *b)
{
  return !strcmp(a->dir, b->dir) && !strcmp(a->cache, b->cache) && !strcmp(a->rules, b->rules) && !strcmp(a->cdb, b->cdb)
      && a->ttl == b->ttl && a->skew == b->skew && a->grace == b->grace && a->keys == b->keys
      && a->nnever == b->nnever && !memcmp(a->never, b->never, a->nnever * sizeof(ipnet_t))
      && a->env.len == b->env.len && (!a->env.len || !memcmp(a->env.s, b->env.s, a->env.len))
      && a->usermax == b->usermax && a->linklocal == b->linklocal
      && (a->hosts == b->hosts || (a->hosts && b->hosts && !strcmp(a->hosts, b->hosts))) && a->hold == b->hold ;
}

static void check_accepted (conf_t const *c, conf_t const *def, unsigned int which, char const *v)
{
  conf_t x = *c ;
  unsigned int u ;
  switch (which)
  {
    case 0 : case 1 : case 2 : case 3 :
    {
      char const *f = which == 0 ? c->dir : which == 1 ? c->cache : which == 2 ? c->rules : c->cdb ;
      FZ_CHECK(f == v && v[0] == '/' && strlen(v) <= 4000, "%s set to a path that is not absolute or too long", names[which]) ;
      for (char const *p = v ; *p ; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "%s set to a path holding the byte 0x%02x", names[which], (unsigned char)*p) ;
      if (which == 0) x.dir = def->dir ; else if (which == 1) x.cache = def->cache ; else if (which == 2) x.rules = def->rules ; else x.cdb = def->cdb ;
      break ;
    }
    case 4 : case 6 :
    {
      unsigned int got = which == 4 ? c->ttl : c->grace ;
      FZ_CHECK(ref_uint(v, 1, 31536000, &u) && u == got, "%s accepted \"%s\" as %u", names[which], v, got) ;
      if (which == 4) x.ttl = def->ttl ; else x.grace = def->grace ;
      break ;
    }
    case 5 :
      FZ_CHECK(ref_uint(v, 0, 3600, &u) && u == c->skew, "POPRELAY_SKEW accepted \"%s\" as %u", v, c->skew) ;
      x.skew = def->skew ;
      break ;
    case 7 :
      FZ_CHECK((!strcmp(v, "ucspi-tcp") && c->keys == KEYS_UCSPI_TCP) || (!strcmp(v, "ucspi-tcp-ipv6") && c->keys == KEYS_UCSPI_TCP_IPV6) || (!strcmp(v, "s6-networking") && c->keys == KEYS_S6), "POPRELAY_TCPRULES accepted \"%s\"", v) ;
      x.keys = def->keys ;
      break ;
    case 8 :
    {
      unsigned int n = 0 ;
      size_t i = 0, len = strlen(v) ;
      FZ_CHECK(c->nnever <= IPNETS_MAX, "%u prefixes", c->nnever) ;
      for (;;)
      {
        ipnet_t one ;
        while (i < len && issep(v[i])) i++ ;
        if (i == len) break ;
        size_t start = i ;
        while (i < len && !issep(v[i])) i++ ;
        FZ_CHECK(n < c->nnever && ipnet_scan(&one, v + start, i - start) && one.bits == c->never[n].bits && ip_equal(&one.ip, &c->never[n].ip), "POPRELAY_NEVER entry %u is not the entry read alone", n) ;
        n++ ;
      }
      FZ_CHECK(n == c->nnever, "POPRELAY_NEVER has %u entries, %u kept", n, c->nnever) ;
      for (unsigned int k = 0 ; k < c->nnever ; k++)
      {
        FZ_CHECK(c->never[k].bits <= 128, "a prefix of %u bits", c->never[k].bits) ;
        for (unsigned int b = c->never[k].bits ; b < 128 ; b++)
          FZ_CHECK(!(c->never[k].ip.b[b >> 3] & (0x80 >> (b & 7))), "a prefix with a bit set past its length") ;
      }
      x.nnever = 0 ;
      break ;
    }
    case 9 :
    {
      size_t pos = 0, entries = 0, commas = 0 ;
      char const *e = c->env.s ;
      while (pos < c->env.len)
      {
        char const *z = memchr(e + pos, 0, c->env.len - pos) ;
        FZ_CHECK(z, "POPRELAY_ENV: an entry without its NUL") ;
        FZ_CHECK(e[pos] == '+' && memchr(e + pos, '=', (size_t)(z - e) - pos), "POPRELAY_ENV: an entry that is not +NAME=value") ;
        entries++ ;
        pos = (size_t)(z - e) + 1 ;
      }
      /* each variable is ",NAME=" and a quoted value: count them the
         way the syntax reads, as a check on the entry count */
      {
        size_t i = 0, len = strlen(v) ;
        while (i < len)
        {
          char const *eq ;
          char q ;
          char const *end ;
          FZ_CHECK(v[i] == ',', "POPRELAY_ENV accepted a list that does not start each variable with a comma") ;
          eq = memchr(v + i, '=', len - i) ;
          FZ_CHECK(eq && (size_t)(eq - v) + 1 < len, "POPRELAY_ENV accepted a variable without a value") ;
          q = eq[1] ;
          end = memchr(eq + 2, q, len - (size_t)(eq - v) - 2) ;
          FZ_CHECK(end, "POPRELAY_ENV accepted an unclosed value") ;
          i = (size_t)(end - v) + 1 ;
          commas++ ;
        }
      }
      FZ_CHECK(entries == commas, "POPRELAY_ENV: %zu variables given, %zu entries", commas, entries) ;
      {
        stralloc g = STRALLOC_ZERO ;
        if (!rules_grantvalue(&g, 0, 0, c->env.s, c->env.len)) abort() ;
        FZ_CHECK(g.len >= c->env.len && (!c->env.len || !memcmp(g.s, c->env.s, c->env.len)), "a grant does not carry POPRELAY_ENV first") ;
        stralloc_free(&g) ;
      }
      x.env.len = 0 ;
      break ;
    }
    case 10 :
      FZ_CHECK(ref_uint(v, 0, 65535, &u) && u == c->usermax, "POPRELAY_USERMAX accepted \"%s\" as %u", v, c->usermax) ;
      x.usermax = def->usermax ;
      break ;
    case 11 :
      FZ_CHECK((!strcmp(v, "0") && !c->linklocal) || (!strcmp(v, "1") && c->linklocal), "POPRELAY_LINKLOCAL accepted \"%s\"", v) ;
      x.linklocal = def->linklocal ;
      break ;
    case 12 :
      FZ_CHECK(c->hosts == v && v[0] == '/' && strlen(v) <= 4000, "POPRELAY_HOSTS set to a path that is not absolute or too long") ;
      for (char const *p = v ; *p ; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "POPRELAY_HOSTS set to a path holding the byte 0x%02x", (unsigned char)*p) ;
      x.hosts = def->hosts ;
      break ;
    case 13 :
      FZ_CHECK(ref_uint(v, 0, 604800, &u) && u == c->hold, "POPRELAY_HOLD accepted \"%s\" as %u", v, c->hold) ;
      x.hold = def->hold ;
      break ;
    default :
      FZ_CHECK(0, "%s was accepted", names[which]) ;
  }
  FZ_CHECK(same_conf(&x, def), "setting %s changed another setting", names[which]) ;
}

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  static conf_t c, def, c2 ;
  char *v ;
  char const *why = 0, *why2 = 0, *bad = 0 ;
  unsigned int which ;
  int how, ok, ok2 ;
  data = d ; size = s ;
  if (s < 2) return 0 ;
  which = d[0] % NNAMES ;
  how = d[1] % 3 ;
  v = malloc(s - 1) ;
  if (!v) abort() ;
  memcpy(v, d + 2, s - 2) ;
  v[s - 2] = 0 ;

  conf_defaults(&def) ;
  conf_defaults(&c) ;
  conf_defaults(&c2) ;
  ok = conf_set(&c, names[which], v, &why) ;
  FZ_CHECK(ok == 0 || ok == 1, "conf_set returned %d", ok) ;
  if (how == 1 && which < NVARS)
  {
    ok2 = conf_setopt(&c2, letters[which], v, &why2) ;
    FZ_CHECK(ok2 == ok && (ok || why2 == why || !strcmp(why2, why)), "-%c and %s answer differently", letters[which], names[which]) ;
    FZ_CHECK(!strcmp(conf_optvar(letters[which]), names[which]), "-%c sets %s", letters[which], conf_optvar(letters[which])) ;
    if (ok) FZ_CHECK(same_conf(&c, &c2), "-%c and %s set different values", letters[which], names[which]) ;
  }
  else if (how == 2)
  {
    char const *list[2] = { names[which], 0 } ;
    if (setenv(names[which], v, 1) == -1) abort() ;
    ok2 = conf_env(&c2, list, &bad, &why2) ;
    unsetenv(names[which]) ;
    FZ_CHECK(ok2 == ok, "conf_env and conf_set answer differently for %s", names[which]) ;
    if (which < NVARS && !ok) FZ_CHECK(bad == names[which], "conf_env names %s", bad) ;
    if (which < NVARS && ok) FZ_CHECK(same_conf(&c, &c2), "conf_env and conf_set set different values") ;
  }
  FZ_CHECK(conf_setopt(&c2, 'Z', v, &why2) == -1 && !conf_optvar('Z'), "-Z sets a variable") ;

  if (!ok)
  {
    size_t n ;
    FZ_CHECK(why && why[0], "a refusal without a reason") ;
    n = strlen(why) ;
    FZ_CHECK(n < 200, "a reason of %zu bytes", n) ;
    for (size_t i = 0 ; i < n ; i++)
      FZ_CHECK((unsigned char)why[i] >= 0x20 && (unsigned char)why[i] < 0x7f, "the reason holds the byte 0x%02x", (unsigned char)why[i]) ;
    /* a refused POPRELAY_ENV may leave part of a list, never a count */
    c.env.len = 0 ;
    FZ_CHECK(same_conf(&c, &def), "a refused %s changed a setting", names[which]) ;
  }
  else check_accepted(&c, &def, which, v) ;

  /* conf_uint alone, at a few bounds */
  {
    static unsigned int const bounds[][2] = { { 0, 3600 }, { 1, 31536000 }, { 1, 65535 }, { 0, UINT_MAX } } ;
    for (unsigned int i = 0 ; i < 4 ; i++)
    {
      unsigned int a = 12345, b = 12345 ;
      int ra = conf_uint(v, bounds[i][0], bounds[i][1], &a), rb = ref_uint(v, bounds[i][0], bounds[i][1], &b) ;
      FZ_CHECK(ra == rb && a == b, "conf_uint(\"%s\", %u, %u): %d %u, wanted %d %u", v, bounds[i][0], bounds[i][1], ra, a, rb, b) ;
    }
  }
  /* how an error message shows the value */
  {
    char q[80] ;
    size_t n, vl = strlen(v) ;
    conf_quote(q, sizeof q, v) ;
    n = strlen(q) ;
    FZ_CHECK(n < sizeof q, "conf_quote overran") ;
    for (size_t i = 0 ; i < n ; i++) FZ_CHECK((unsigned char)q[i] >= 0x20 && (unsigned char)q[i] < 0x7f, "conf_quote kept the byte 0x%02x", (unsigned char)q[i]) ;
    if (vl + 4 <= sizeof q) FZ_CHECK(n == vl, "conf_quote changed the length of a short value") ;
    else FZ_CHECK(n >= 3 && !strcmp(q + n - 3, "..."), "conf_quote cut a long value without saying so") ;
    for (size_t i = 0 ; i < n && i < vl && i + 4 < sizeof q ; i++)
      if ((unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f) FZ_CHECK(q[i] == v[i], "conf_quote changed a printable byte") ;
  }
  stralloc_free(&c.env) ;
  stralloc_free(&c2.env) ;
  free(v) ;
  return 0 ;
}
