/* wake: the rebuild relay-open -w makes after a busy second, for
   package/bench.

   wake pid cdb

   pid is relay-open -w, stopped (SIGSTOP) while the second's logins were
   written. wake continues it and returns once it has replaced cdb: a new
   file, told by its inode number (the new one is made while the old one
   still exists, so the two never share one). Gives up after 60 s, exit
   111. */

#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>

int main (int argc, char **argv)
{
  struct stat before, now ;
  struct timespec tick = { 0, 100000 } ;
  long pid ;
  if (argc != 3 || (pid = strtol(argv[1], 0, 10)) <= 0)
  {
    fprintf(stderr, "usage: wake pid cdb\n") ;
    return 100 ;
  }
  if (stat(argv[2], &before) == -1) { perror(argv[2]) ; return 111 ; }
  if (kill((pid_t)pid, SIGCONT) == -1) { perror("kill") ; return 111 ; }
  for (unsigned long i = 0 ; i < 600000 ; i++)
  {
    if (stat(argv[2], &now) == 0 && now.st_ino != before.st_ino) return 0 ;
    nanosleep(&tick, 0) ;
  }
  fprintf(stderr, "wake: %s was not replaced within 60 seconds\n", argv[2]) ;
  return 111 ;
}
