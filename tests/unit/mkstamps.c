/* mkstamps [-e] DIR [AGE]: writes a stamp for each address read on stdin
   into the relay directory DIR, as pop3-wrapper would but without a
   process per login, AGE seconds old (default 0). For tests and benchmarks
   that need many grants.

   -e writes empty stamps directly (no temp file, no rename): an empty
   file costs an inode and no data block (100k stamps take 4 MB of
   directories instead of 400 MB), and it is written about twice as fast.
   relay-open and relay-clean read only a stamp's name and time;
   relay-open -l shows such a grant's user as "?". */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <skalibs/stralloc.h>
#include "relaydir.h"
#include "stamp.h"

char const *PROG = "mkstamps" ;

int main (int argc, char **argv)
{
  char line[256] ;
  int dirfd, bfd[STAMP_BUCKETS] ;
  struct stat dirst ;
  int empty = 0 ;
  long age ;
  unsigned long n = 0 ;
  stralloc sa = STRALLOC_ZERO ;
  stampinfo_t si ;
  if (argc > 1 && !strcmp(argv[1], "-e")) { empty = 1 ; argc-- ; argv++ ; }
  if (argc < 2 || argv[1][0] == '-') { fprintf(stderr, "usage: mkstamps [-e] dir [age] < addresses\n") ; return 100 ; }
  age = argc > 2 ? atol(argv[2]) : 0 ;
  dirfd = open(argv[1], O_RDONLY | O_DIRECTORY) ;
  if (dirfd == -1 || fstat(dirfd, &dirst) == -1) { perror(argv[1]) ; return 111 ; }
  for (unsigned int i = 0 ; i < STAMP_BUCKETS ; i++) bfd[i] = -1 ;
  memset(&si, 0, sizeof si) ;
  strcpy(si.user, "bulk") ;
  strcpy(si.via, "mkstamps") ;
  if (!stamp_fmt(&sa, &si)) return 111 ;
  while (fgets(line, sizeof line, stdin))
  {
    ip_t ip ;
    char name[IP_FMT], bname[3] ;
    size_t len = strlen(line) ;
    unsigned int b ;
    if (len && line[len-1] == '\n') line[--len] = 0 ;
    if (!ip_scan(&ip, line, len)) { fprintf(stderr, "mkstamps: not an address: %s\n", line) ; return 100 ; }
    ip_fmt(name, &ip) ;
    b = stamp_bucket(&ip) ;
    if (bfd[b] == -1)
    {
      stamp_bucketname(bname, b) ;
      if (!relaydir_make(dirfd, bname, &dirst)) { perror(bname) ; return 111 ; }
      bfd[b] = openat(dirfd, bname, O_RDONLY | O_DIRECTORY) ;
      if (bfd[b] == -1) { perror(bname) ; return 111 ; }
    }
    if (empty)
    {
      /* an existing stamp is removed and made again, not touched: its
         bucket directory must change, as relay-open's scan cache expects */
      int fd = openat(bfd[b], name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640) ;
      if (fd == -1 && errno == EEXIST && !unlinkat(bfd[b], name, 0))
        fd = openat(bfd[b], name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640) ;
      if (fd == -1 || close(fd) == -1) { perror(name) ; return 111 ; }
    }
    else if (!stamp_write(bfd[b], name, sa.s, sa.len)) { perror(name) ; return 111 ; }
    if (age)
    {
      struct timespec ts[2] ;
      int64_t t = stamp_now() - (int64_t)age * 1000000000 ;
      ts[0].tv_sec = ts[1].tv_sec = (time_t)(t / 1000000000) ;
      ts[0].tv_nsec = ts[1].tv_nsec = (long)(t % 1000000000) ;
      if (utimensat(bfd[b], name, ts, AT_SYMLINK_NOFOLLOW) == -1) { perror(name) ; return 111 ; }
    }
    n++ ;
  }
  stralloc_free(&sa) ;
  return 0 ;
}
