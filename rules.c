/* rules.c: tcprules syntax, record for record; see rules.h.

   Each step below mirrors what tcprules 0.88 does with a line, in the same
   order, so that its corner cases (ranges, odd delimiters, bytes after a
   NUL) come out the same. tests/rules-corpus checks this against tcprules
   itself. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <skalibs/djbunix.h>
#include "ip.h"
#include "rules.h"
#include "stamp.h"

static uint32_t hashkey (char const *s, size_t len)
{
  uint32_t h = 2166136261u ;
  for (size_t i = 0 ; i < len ; i++) { h ^= (unsigned char)s[i] ; h *= 16777619u ; }
  return h ;
}

static char const *memchr_end (char const *s, size_t len, char c)
{
  char const *p = memchr(s, c, len) ;
  return p ? p : s + len ;
}

/* ",NAME=<q>value<q>" repeated, as tcprules reads it after allow or deny. */
static int scanvars (stralloc *sa, char const *x, size_t len, char const **what)
{
  while (len)
  {
    size_t i ;
    char ch ;
    if (*x != ',') { *what = "expected a comma and NAME=<q>value<q> here" ; return 0 ; }
    i = (size_t)(memchr_end(x, len, '=') - x) ;
    if (i == len) { *what = "a variable has no =" ; return 0 ; }
    if (!stralloc_catb(sa, "+", 1) || !stralloc_catb(sa, x + 1, i)) return 0 ;
    x += i + 1 ; len -= i + 1 ;
    if (!len) { *what = "a variable has no value after =" ; return 0 ; }
    ch = *x ; x++ ; len-- ;
    i = (size_t)(memchr_end(x, len, ch) - x) ;
    if (i == len) { *what = "a value is not closed by its delimiter" ; return 0 ; }
    if (!stralloc_catb(sa, x, i) || !stralloc_0(sa)) return 0 ;
    x += i + 1 ; len -= i + 1 ;
  }
  return 1 ;
}

int rules_scanvars (stralloc *sa, char const *s, size_t len, char const **what)
{
  *what = 0 ;
  return scanvars(sa, s, len, what) ;
}

/* tcprules' getnum: decimal digits up to the end or a NUL, wrapping like
   djb's scan_ulong; anything else refuses the line. */
static int getnum (char const *s, size_t len, uint64_t *u)
{
  uint64_t r = 0 ;
  size_t i = 0 ;
  while (i < len && s[i] >= '0' && s[i] <= '9') r = r * 10 + (uint64_t)(s[i++] - '0') ;
  if (i < len && s[i]) return 0 ;
  *u = r ;
  return 1 ;
}

static int addrec (rules_t *r, char const *key, size_t keylen, size_t data, size_t datalen, uint32_t line)
{
  rule_t rec = { .key = r->store.len, .data = data, .keylen = (uint32_t)keylen, .datalen = (uint32_t)datalen, .line = line } ;
  if (!stralloc_catb(&r->store, key, keylen)) return 0 ;
  return genalloc_append(rule_t, &r->recs, &rec) ;
}

/* tcprules' doaddressdata: "a.b.c.X-Y" expands to one key per number. */
static int addaddress (rules_t *r, char const *a, size_t alen, size_t data, size_t datalen, uint32_t line, char const **what)
{
  if (!memchr(a, '=', alen) && !memchr(a, '@', alen))
  {
    char const *dash = memchr(a, '-', alen) ;
    if (dash)
    {
      size_t i = (size_t)(dash - a), left = i, right ;
      uint64_t bot, top ;
      while (left && a[left - 1] != '.') left-- ;
      right = i + 1 + (size_t)(memchr_end(a + i + 1, alen - i - 1, '.') - (a + i + 1)) ;
      if (!getnum(a + left, i - left, &bot) || !getnum(a + i + 1, right - i - 1, &top))
      {
        *what = "a range a.b.c.X-Y has something other than digits around the -" ;
        return 0 ;
      }
      if (top > 255) top = 255 ;
      for ( ; bot <= top ; bot++)
      {
        char key[512] ;
        char num[4] ;
        size_t n = 0, kl ;
        uint64_t v = bot ;
        do num[n++] = (char)('0' + v % 10) ; while (v /= 10) ;
        kl = left + n + (alen - right) ;
        char *k = kl <= sizeof key ? key : malloc(kl) ;
        if (!k) return 0 ;
        memcpy(k, a, left) ;
        for (size_t j = 0 ; j < n ; j++) k[left + j] = num[n - 1 - j] ;
        memcpy(k + left + n, a + right, alen - right) ;
        int ok = addrec(r, k, kl, data, datalen, line) ;
        if (k != key) free(k) ;
        if (!ok) return 0 ;
      }
      return 1 ;
    }
  }
  return addrec(r, a, alen, data, datalen, line) ;
}

static int startswith (char const *x, size_t len, char const *word)
{
  size_t n = strlen(word) ;
  return len >= n && !memcmp(x, word, n) ;
}

static int parseline (rules_t *r, char const *x, size_t len, uint32_t line, char const **what)
{
  size_t colon, datastart ;

  if (x[0] == '#' || x[0] == '\n') return 1 ;
  while (len && (x[len - 1] == '\n' || x[len - 1] == ' ' || x[len - 1] == '\t')) len-- ;
  if (!len) return 1 ;

  if (r->keys == KEYS_UCSPI_TCP)
  {
    colon = (size_t)(memchr_end(x, len, ':') - x) ;
    if (colon == len) return 1 ;   /* tcprules ignores a line without a colon */
  }
  else
  {
    /* KEYS_S6 also reads files written for ucspi-tcp, whose tcprules
       ignores a line without a colon */
    if (r->keys == KEYS_S6 && !memchr(x, ':', len)) return 1 ;
    for (colon = 0 ; ; colon++)
    {
      colon += (size_t)(memchr_end(x + colon, len - colon, ':') - (x + colon)) ;
      if (colon == len) { *what = "no colon is followed by allow or deny" ; return 0 ; }
      if (startswith(x + colon + 1, len - colon - 1, "deny") || startswith(x + colon + 1, len - colon - 1, "allow")) break ;
    }
  }

  /* the data goes into the store first; the keys follow it */
  datastart = r->store.len ;
  {
    char const *p = x + colon + 1 ;
    size_t n = len - colon - 1 ;
    if (startswith(p, n, "deny"))
    {
      if (!stralloc_catb(&r->store, "D", 2)) return 0 ;
      p += 4 ; n -= 4 ;
    }
    else if (startswith(p, n, "allow")) { p += 5 ; n -= 5 ; }
    else { *what = "the colon is not followed by allow or deny" ; return 0 ; }
    if (!scanvars(&r->store, p, n, what)) return 0 ;
  }
  return addaddress(r, x, colon, datastart, r->store.len - datastart, line, what) ;
}

#define rec_(r, i) (genalloc_s(rule_t, &(r)->recs) + (i))

char const *rules_key (rules_t const *r, size_t i, size_t *len)
{
  *len = rec_(r, i)->keylen ;
  return r->store.s + rec_(r, i)->key ;
}

char const *rules_data (rules_t const *r, long i, size_t *len)
{
  if (i < 0) { *len = 0 ; return 0 ; }
  *len = rec_(r, i)->datalen ;
  return r->store.s + rec_(r, i)->data ;
}

uint32_t rules_line (rules_t const *r, size_t i)
{
  return rec_(r, i)->line ;
}

int rules_isdefault (rules_t const *r, long i)
{
  return i >= 0 && i == r->deflt ;
}

int rules_isdeny (rules_t const *r, long i)
{
  size_t len ;
  char const *d = rules_data(r, i, &len) ;
  return rules_denies(d, len) ;
}

static long find (rules_t const *, char const *, size_t) ;

static int buildindex (rules_t *r)
{
  size_t n = rules_n(r), size = 16 ;
  while (size < 2 * n) size <<= 1 ;
  r->index = calloc(size, sizeof(uint32_t)) ;
  if (!r->index) return 0 ;
  r->indexsize = size ;
  r->prefixlens[0] = r->prefixlens[1] = r->keylens[0] = r->keylens[1] = 0 ;
  for (size_t i = 0 ; i < n ; i++)
  {
    rule_t const *rec = rec_(r, i) ;
    char const *k = (r->store.s + rec->key) ;
    size_t h = hashkey(k, rec->keylen) & (size - 1) ;
    for (;;)
    {
      uint32_t e = r->index[h] ;
      if (!e) { r->index[h] = (uint32_t)(i + 1) ; break ; }
      rule_t const *o = rec_(r, e - 1) ;
      if (o->keylen == rec->keylen && !memcmp((r->store.s + o->key), k, rec->keylen)) break ;  /* first one wins */
      h = (h + 1) & (size - 1) ;
    }
    {
      size_t l = rec->keylen < 127 ? rec->keylen : 127 ;
      r->keylens[l >> 6] |= (uint64_t)1 << (l & 63) ;
    }
    if (rec->keylen && rec->keylen < 128 && (k[rec->keylen - 1] == '.' || k[rec->keylen - 1] == ':'))
      r->prefixlens[rec->keylen >> 6] |= (uint64_t)1 << (rec->keylen & 63) ;
    if (memchr(k, '=', rec->keylen) || memchr(k, '@', rec->keylen)) r->hostrules++ ;
  }
  r->deflt = find(r, "", 0) ;
  return 1 ;
}

int rules_parse (rules_t *r, char const *text, size_t len, int keys, uint32_t *line, char const **what)
{
  size_t pos = 0 ;
  uint32_t n = 0 ;
  r->keys = keys ;
  *what = 0 ;
  while (pos < len)
  {
    char const *nl = memchr(text + pos, '\n', len - pos) ;
    size_t end = nl ? (size_t)(nl - text) + 1 : len ;
    n++ ;
    if (!parseline(r, text + pos, end - pos, n, what))
    {
      *line = n ;
      if (!*what) errno = ENOMEM ;
      return 0 ;
    }
    pos = end ;
  }
  if (!buildindex(r)) { *line = n ; errno = ENOMEM ; return 0 ; }
  return 1 ;
}

void rules_free (rules_t *r)
{
  stralloc_free(&r->store) ;
  genalloc_free(rule_t, &r->recs) ;
  free(r->index) ;
  r->index = 0 ;
  r->indexsize = 0 ;
}

static long find (rules_t const *r, char const *key, size_t keylen)
{
  size_t h = hashkey(key, keylen) & (r->indexsize - 1) ;
  for (;;)
  {
    uint32_t e = r->index[h] ;
    if (!e) return -1 ;
    rule_t const *o = rec_(r, e - 1) ;
    if (o->keylen == keylen && !memcmp((r->store.s + o->key), key, keylen)) return (long)e - 1 ;
    h = (h + 1) & (r->indexsize - 1) ;
  }
}

long rules_pick (rules_t const *r, char const *key, size_t keylen)
{
  long i ;
  if (!r->indexsize) return -1 ;
  /* an exact key is looked for only if some key is that long: a grant
     under no rule of its own costs no hashing */
  {
    size_t l = keylen < 127 ? keylen : 127 ;
    if (r->keylens[l >> 6] & ((uint64_t)1 << (l & 63)))
    {
      i = find(r, key, keylen) ;
      if (i >= 0) return i ;
    }
  }
  for (size_t len = keylen ; len > 1 ; len--)
  {
    char c = key[len - 2] ;
    size_t plen = len - 1 ;
    if (c != '.' && (c != ':' || r->keys == KEYS_UCSPI_TCP)) continue ;
    if (plen >= 128 || !(r->prefixlens[plen >> 6] & ((uint64_t)1 << (plen & 63)))) continue ;
    i = find(r, key, plen) ;
    if (i >= 0) return i ;
  }
  return r->deflt ;
}

/* the length of NAME in "+NAME=value", or the entry's length without = */
static size_t namelen (char const *e, size_t len)
{
  char const *eq = memchr(e, '=', len) ;
  return eq ? (size_t)(eq - e) : len ;
}

/* 1 if an entry of list sets the variable name; an entry without "=" sets
   nothing (tcpserver skips it), as when a rules line has a NUL in a name */
static int hasname (char const *list, size_t len, char const *name, size_t nlen)
{
  size_t pos = 0 ;
  while (pos < len)
  {
    char const *e = list + pos ;
    size_t elen = strnlen(e, len - pos) ;
    if (elen && e[0] == '+' && memchr(e + 1, '=', elen - 1) && namelen(e + 1, elen - 1) == nlen && !memcmp(e + 1, name, nlen)) return 1 ;
    pos += elen + 1 ;
  }
  return 0 ;
}

int rules_grantvalue (stralloc *sa, char const *data, size_t datalen, char const *extra, size_t extralen)
{
  size_t pos = 0, start = sa->len ;
  while (data && pos < datalen)
  {
    char const *e = data + pos ;
    size_t elen = strnlen(e, datalen - pos) ;
    int keep = 1 ;
    if (elen && e[0] == '+' && hasname(extra, extralen, e + 1, namelen(e + 1, elen - 1))) keep = 0 ;
    if (keep && !stralloc_catb(sa, e, elen + (pos + elen < datalen))) return 0 ;
    pos += elen + 1 ;
  }
  if (!stralloc_catb(sa, extra, extralen)) return 0 ;
  if (!hasname(sa->s + start, sa->len - start, "RELAYCLIENT", 11))
    if (!stralloc_catb(sa, "+RELAYCLIENT=", 14)) return 0 ;
  return 1 ;
}

/* rules_read: see rules.h. The waits are bounded: RULES_TRIES reads at
   most, each followed by at most RULES_SETTLE of waiting. */
#define RULES_SETTLE STAMP_SECOND
#define RULES_TRUNCATED (STAMP_SECOND / 50)
#define RULES_TRIES 10
#define nsof stamp_ns

static int samefile (struct stat const *a, struct stat const *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
      && nsof(&a->st_mtim) == nsof(&b->st_mtim) && nsof(&a->st_ctim) == nsof(&b->st_ctim) ;
}

/* one read of the whole file, and its stat before and after; never
   blocks on a fifo put in the rules' place */
static int readonce (stralloc *text, char const *path, struct stat *before, struct stat *after)
{
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) ;
  if (fd == -1) return 0 ;
  text->len = 0 ;
  if (fstat(fd, before) == -1) goto err ;
  if (!S_ISREG(before->st_mode)) { errno = S_ISDIR(before->st_mode) ? EISDIR : EINVAL ; goto err ; }
  if (!slurp(text, fd) || fstat(fd, after) == -1) goto err ;
  fd_close(fd) ;
  return 1 ;
 err:
  fd_close(fd) ;
  return 0 ;
}

int rules_read (stralloc *text, char const *path)
{
  for (unsigned int tries = 0 ; tries < RULES_TRIES ; tries++)
  {
    struct stat before, after, later ;
    struct timespec ts ;
    int64_t changed, wait, now ;
    if (!readonce(text, path, &before, &after)) return 0 ;
    if (!samefile(&before, &after) || (off_t)text->len != after.st_size) continue ;
    changed = nsof(&after.st_mtim) ;
    now = stamp_now() ;
    wait = changed + RULES_SETTLE - now ;
    /* settled; or changed well after now: the clock went back since */
    if (changed <= now - RULES_SETTLE || changed > now + RULES_SETTLE)
    {
      /* but a truncation shows the new size a moment before the new
         time: an empty file is looked at again */
      if (text->len) return 1 ;
      wait = RULES_TRUNCATED ;
    }
    ts.tv_sec = (time_t)(wait / STAMP_SECOND) ;
    ts.tv_nsec = (long)(wait % STAMP_SECOND) ;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) ;
    if (stat(path, &later) == 0 && samefile(&after, &later)) return 1 ;
  }
  errno = EAGAIN ;
  return 0 ;
}
