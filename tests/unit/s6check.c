/* s6check: what s6-tcpserver-access decides, for the tests.

   s6check CDB      reads client addresses, one per line, and for each
                    does what s6-tcpserver-access -x CDB does with
                    ${PROTO}REMOTEIP: skalibs' ip46_scan, then s6's own
                    lookup (s6_accessrules_ip46_cdb, from libs6); prints
                    one line per address (see below).
   s6check -t       reads "== ADDR" lines, each followed by what
                    tcprulescheck printed for that address, and prints the
                    same kind of line for what tcpserver decides.
   s6check -d CDB   prints every record of the cdb, one per line: its key
                    and its value decoded ("D", or "A" with the variables,
                    sorted, and the program), or "bad" and the value's
                    bytes.

   A decision line is "ADDR allow NAME=value..." with the environment the
   rules leave (each name once, the last value wins, unset names gone),
   sorted; or "ADDR deny"; or "ADDR none" when no key matched; "error"
   and "unparsable" are for the test to catch. A program to run instead
   shows as "exec=...". Bytes outside 0x21..0x7e and the backslash are
   written \xHH, so that the lines compare as text.

   It uses nothing of poprelay: it is the other side of the comparison. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skalibs/cdb.h>
#include <skalibs/ip46.h>
#include <skalibs/stralloc.h>
#include <skalibs/uint16.h>
#include <s6/accessrules.h>

#define MAXVARS 4096

static void putesc (char const *s, size_t len)
{
  for (size_t i = 0 ; i < len ; i++)
  {
    unsigned char c = (unsigned char)s[i] ;
    if (c <= 0x20 || c >= 0x7f || c == '\\') printf("\\x%02x", c) ;
    else putchar(c) ;
  }
}

/* an environment being built: "NAME=value" strings, each name once */
static char *vars[MAXVARS] ;
static size_t nvars = 0 ;

static void setvar (char const *entry, size_t len)
{
  char const *eq = memchr(entry, '=', len) ;
  size_t nlen = eq ? (size_t)(eq - entry) : len ;
  for (size_t i = 0 ; i < nvars ; i++)
    if (!strncmp(vars[i], entry, nlen) && vars[i][nlen] == '=')
    {
      free(vars[i]) ;
      vars[i] = vars[--nvars] ;
      break ;
    }
  if (!eq || nvars >= MAXVARS) return ;
  vars[nvars] = malloc(len + 1) ;
  if (!vars[nvars]) { perror("malloc") ; exit(111) ; }
  memcpy(vars[nvars], entry, len) ;
  vars[nvars++][len] = 0 ;
}

static int bytes (void const *a, void const *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b) ;
}

static void allow (char const *addr, char const *exec)
{
  qsort(vars, nvars, sizeof *vars, &bytes) ;
  printf("%s allow", addr) ;
  for (size_t i = 0 ; i < nvars ; i++) { putchar(' ') ; putesc(vars[i], strlen(vars[i])) ; free(vars[i]) ; }
  nvars = 0 ;
  if (exec && exec[0]) { printf(" exec=") ; putesc(exec, strlen(exec)) ; }
  putchar('\n') ;
}

static int readline (char *line, size_t size)
{
  size_t len ;
  if (!fgets(line, (int)size, stdin)) return 0 ;
  len = strlen(line) ;
  if (len && line[len - 1] == '\n') line[len - 1] = 0 ;
  return 1 ;
}

static int s6side (char const *file)
{
  cdb c = CDB_ZERO ;
  char line[1024] ;
  if (!cdb_init(&c, file)) { perror(file) ; return 111 ; }
  while (readline(line, sizeof line))
  {
    s6_accessrules_params_t params = S6_ACCESSRULES_PARAMS_ZERO ;
    ip46 ip ;
    size_t n = ip46_scan(line, &ip) ;
    if (!n || line[n]) { printf("%s unparsable\n", line) ; continue ; }
    switch (s6_accessrules_ip46_cdb(&ip, &c, &params))
    {
      case S6_ACCESSRULES_ALLOW :
        for (size_t i = 0 ; i < params.env.len ; i += strlen(params.env.s + i) + 1)
          setvar(params.env.s + i, strlen(params.env.s + i)) ;
        allow(line, params.exec.len ? params.exec.s : 0) ;
        break ;
      case S6_ACCESSRULES_DENY : printf("%s deny\n", line) ; break ;
      case S6_ACCESSRULES_NOTFOUND : printf("%s none\n", line) ; break ;
      default : printf("%s error\n", line) ; break ;
    }
    s6_accessrules_params_free(&params) ;
  }
  cdb_free(&c) ;
  return 0 ;
}

static int tcpside (void)
{
  static char const set[] = "set environment variable " ;
  char line[8192], addr[1024] = "" ;
  int open = 0 ;
  while (readline(line, sizeof line))
  {
    if (!strncmp(line, "== ", 3))
    {
      if (open) printf("%s none\n", addr) ;
      size_t n = strlen(line + 3) ;
      if (n >= sizeof addr) n = sizeof addr - 1 ;
      memcpy(addr, line + 3, n) ;
      addr[n] = 0 ;
      open = 1 ;
    }
    else if (!strncmp(line, set, sizeof set - 1)) setvar(line + sizeof set - 1, strlen(line + sizeof set - 1)) ;
    else if (!strcmp(line, "allow connection") && open) { allow(addr, 0) ; open = 0 ; }
    else if (!strcmp(line, "deny connection") && open)
    {
      while (nvars) free(vars[--nvars]) ;
      printf("%s deny\n", addr) ;
      open = 0 ;
    }
  }
  if (open) printf("%s none\n", addr) ;
  return 0 ;
}

static int dump (char const *file)
{
  cdb c = CDB_ZERO ;
  uint32_t pos = CDB_TRAVERSE_INIT() ;
  cdb_data key, data ;
  int r ;
  if (!cdb_init(&c, file)) { perror(file) ; return 111 ; }
  while ((r = cdb_traverse_next(&c, &key, &data, &pos)) > 0)
  {
    uint16_t envlen, execlen ;
    putesc(key.s, key.len) ;
    if (data.len == 1 && data.s[0] == 'D') { printf(" D\n") ; continue ; }
    if (data.len >= 5 && data.s[0] == 'A')
    {
      uint16_unpack_big(data.s + 1, &envlen) ;
      if (3 + (size_t)envlen + 2 <= data.len)
      {
        uint16_unpack_big(data.s + 3 + envlen, &execlen) ;
        if (5 + (size_t)envlen + execlen == data.len && (!envlen || !data.s[2 + envlen]))
        {
          char const *e[MAXVARS] ;
          size_t n = 0 ;
          for (size_t i = 0 ; i < envlen && n < MAXVARS ; i += strlen(data.s + 3 + i) + 1) e[n++] = data.s + 3 + i ;
          qsort(e, n, sizeof *e, &bytes) ;   /* the directory form keeps no order */
          printf(" A") ;
          for (size_t i = 0 ; i < n ; i++) { putchar(' ') ; putesc(e[i], strlen(e[i])) ; }
          if (execlen) { printf(" exec=") ; putesc(data.s + 5 + envlen, execlen) ; }
          putchar('\n') ;
          continue ;
        }
      }
    }
    printf(" bad ") ;
    putesc(data.s, data.len) ;
    putchar('\n') ;
  }
  cdb_free(&c) ;
  if (r < 0) { fprintf(stderr, "s6check: %s: not a valid cdb\n", file) ; return 111 ; }
  return 0 ;
}

int main (int argc, char const *const *argv)
{
  int r ;
  if (argc == 2 && !strcmp(argv[1], "-t")) r = tcpside() ;
  else if (argc == 3 && !strcmp(argv[1], "-d")) r = dump(argv[2]) ;
  else if (argc == 2 && argv[1][0] != '-') r = s6side(argv[1]) ;
  else { fprintf(stderr, "usage: s6check CDB < addresses | s6check -t < tcprulescheck-output | s6check -d CDB\n") ; return 100 ; }
  if (fflush(stdout)) { perror("s6check: stdout") ; return 111 ; }
  return r ;
}
