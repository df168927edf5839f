/* fz-stamp: the stamp reader, stamp_parse, against its writer, stamp_fmt.

   The first byte picks the direction.
   Even: the rest is a stamp's contents as read from a file. If
   stamp_parse accepts it, every field is a NUL-terminated string within
   its size, and stamp_fmt writes back exactly the text read, its lines
   in stamp_fmt's order (stamp.h lets the lines come in any order):
   fmt(parse(s)) == s, up to that order, so two different stamps never
   read alike.
   Odd: the rest is cut at NULs into the six fields (user, uid, time,
   service, local, via), each cut to what its field holds, as
   pop3-wrapper fills them; stamp_fmt writes them and stamp_parse must
   read back the same fields: parse(fmt(x)) == x. The text holds no
   control character but the line ends, whatever the fields hold. */

#include <string.h>
#include "stamp.h"
#include "fz.h"

static uint8_t const *data ;
static size_t size ;

static void check_terminated (stampinfo_t *si)
{
  for (unsigned int i = 0 ; i < STAMP_NFIELDS ; i++)
  {
    size_t max ;
    char *v = stamp_field(si, i, &max) ;
    FZ_CHECK(memchr(v, 0, max), "field %s is not NUL-terminated", stamp_fieldnames[i]) ;
  }
}

/* the line of s for field i, or 0 */
static char const *line_of (char const *s, size_t len, unsigned int i, size_t *llen)
{
  size_t pos = 0, nl = strlen(stamp_fieldnames[i]) ;
  while (pos < len)
  {
    char const *e = memchr(s + pos, '\n', len - pos) ;
    size_t end = e ? (size_t)(e - s) + 1 : len ;
    if (end - pos > nl && !memcmp(s + pos, stamp_fieldnames[i], nl) && s[pos + nl] == ' ') { *llen = end - pos ; return s + pos ; }
    pos = end ;
  }
  return 0 ;
}

int LLVMFuzzerTestOneInput (uint8_t const *d, size_t s)
{
  stampinfo_t si, back ;
  stralloc sa = STRALLOC_ZERO ;
  data = d ; size = s ;
  if (!s) return 0 ;
  if (!(d[0] & 1))
  {
    char const *text = (char const *)d + 1 ;
    size_t len = s - 1 ;
    if (!stamp_parse(&si, text, len)) return 0 ;
    check_terminated(&si) ;
    if (!stamp_fmt(&sa, &si)) abort() ;
    /* the text, its lines in stamp_fmt's order */
    {
      stralloc want = STRALLOC_ZERO ;
      for (unsigned int i = 0 ; i < STAMP_NFIELDS ; i++)
      {
        size_t ll ;
        char const *l = line_of(text, len, i, &ll) ;
        if (l && !stralloc_catb(&want, l, ll)) abort() ;
      }
      FZ_CHECK(want.len == len, "the lines of the stamp are not each one known field") ;
      FZ_CHECK(sa.len == want.len && (!sa.len || !memcmp(sa.s, want.s, sa.len)), "stamp_fmt(stamp_parse(s)) is not s (%zu bytes written back, %zu read)", sa.len, want.len) ;
      stralloc_free(&want) ;
    }
    FZ_CHECK(stamp_parse(&back, sa.s, sa.len) && !memcmp(&back, &si, sizeof si), "what stamp_fmt wrote does not read back") ;
  }
  else
  {
    size_t pos = 1 ;
    memset(&si, 0, sizeof si) ;
    for (unsigned int i = 0 ; i < STAMP_NFIELDS && pos < s ; i++)
    {
      size_t max, n = 0 ;
      char *v = stamp_field(&si, i, &max) ;
      while (pos < s && d[pos])
      {
        if (n + 1 < max) v[n++] = (char)d[pos] ;
        pos++ ;
      }
      pos++ ;
    }
    if (!stamp_fmt(&sa, &si)) abort() ;
    for (size_t i = 0 ; i < sa.len ; i++)
      FZ_CHECK(sa.s[i] == '\n' || ((unsigned char)sa.s[i] >= 0x20 && (unsigned char)sa.s[i] < 0x7f), "stamp_fmt wrote the byte 0x%02x", (unsigned char)sa.s[i]) ;
    FZ_CHECK(stamp_parse(&back, sa.s, sa.len), "stamp_parse refuses what stamp_fmt wrote (%zu bytes)", sa.len) ;
    check_terminated(&back) ;
    FZ_CHECK(!memcmp(&back, &si, sizeof si), "stamp_parse(stamp_fmt(x)) is not x") ;
  }
  stralloc_free(&sa) ;
  return 0 ;
}
