/* unesc.h: the unit drivers read one case per line; \n, \t, \\ and \xHH
   in a line stand for bytes a line cannot hold. */

#include <stddef.h>

static size_t unesc (char *s, size_t len)
{
  size_t i = 0, n = 0 ;
  while (i < len)
  {
    if (s[i] == '\\' && i + 1 < len)
    {
      char c = s[i+1] ;
      if (c == 'n') { s[n++] = '\n' ; i += 2 ; continue ; }
      if (c == 't') { s[n++] = '\t' ; i += 2 ; continue ; }
      if (c == '\\') { s[n++] = '\\' ; i += 2 ; continue ; }
      if (c == 'x' && i + 3 < len)
      {
        unsigned int v = 0 ;
        for (int k = 2 ; k < 4 ; k++)
        {
          char h = s[i+k] ;
          v = v * 16 + (unsigned int)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0') ;
        }
        s[n++] = (char)v ; i += 4 ; continue ;
      }
    }
    s[n++] = s[i++] ;
  }
  return n ;
}

static void putesc (char const *s, size_t len)
{
  static char const hex[] = "0123456789abcdef" ;
  for (size_t i = 0 ; i < len ; i++)
  {
    unsigned char c = (unsigned char)s[i] ;
    if (c == '\\') fputs("\\\\", stdout) ;
    else if (c >= 0x20 && c < 0x7f) putchar(c) ;
    else { putchar('\\') ; putchar('x') ; putchar(hex[c >> 4]) ; putchar(hex[c & 15]) ; }
  }
}
