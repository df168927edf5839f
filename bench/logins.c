/* logins: what pop3-wrapper adds to a login, for package/bench.

   logins iterations dir wrapper prog

   Each iteration runs, in turn (starting with a different one each time),
   and times from fork to the end of wait:

     direct   prog, as the authenticator would without pop3-wrapper
     link     env prog: one more exec through a chain link that does
              nothing, the least any wrapper can cost
     refresh  wrapper -d dir prog, from an address granted already
     new      wrapper -d dir prog, from an address never seen before

   with PROTO=TCP and TCPREMOTEIP set as tcpserver sets them, and standard
   error on /dev/null (each run of the wrapper logs one line). Addresses
   come from 198.18.0.0/15, the range kept for benchmarks: new ones are
   198.18.0.1 and up, the refreshed one is 198.19.255.254 (the other
   drivers of package/bench take theirs from 198.19.0.0/16). logins holds
   a fifo in dir/.rebuild/ open for reading, as relay-open -w does,
   so that a new grant's poke is a real write; it drains it between runs.

   Prints, TAB-separated, one line per kind: the kind, the median and the
   90th percentile of its milliseconds; then "extra-link", "extra-refresh"
   and "extra-new": the median and 90th percentile of the differences with
   the direct run of the same iteration. */

#define _DEFAULT_SOURCE  /* mkfifoat, setenv with _POSIX_C_SOURCE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

static double now_ms (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 ;
}

static void die (char const *what)
{
  fprintf(stderr, "logins: fatal: %s: %s\n", what, strerror(errno)) ;
  exit(111) ;
}

static double once (char *const *argv, char const *addr)
{
  double t0 = now_ms() ;
  int st ;
  pid_t pid = fork() ;
  if (pid == -1) die("unable to fork") ;
  if (!pid)
  {
    int fd = open("/dev/null", O_WRONLY) ;
    if (fd == -1 || dup2(fd, 2) == -1) _exit(111) ;
    setenv("PROTO", "TCP", 1) ;
    setenv("TCPREMOTEIP", addr, 1) ;
    execvp(argv[0], argv) ;
    _exit(127) ;
  }
  if (waitpid(pid, &st, 0) == -1) die("unable to wait") ;
  if (!WIFEXITED(st) || WEXITSTATUS(st))
  {
    fprintf(stderr, "logins: fatal: %s failed (from %s)\n", argv[0], addr) ;
    exit(111) ;
  }
  return now_ms() - t0 ;
}

static int dblcmp (void const *a, void const *b)
{
  double x = *(double const *)a, y = *(double const *)b ;
  return x < y ? -1 : x > y ;
}

static double pct (double *v, unsigned int n, unsigned int p)
{
  qsort(v, n, sizeof *v, &dblcmp) ;
  return v[(size_t)(n - 1) * p / 100] ;
}

static double median (double *v, unsigned int n)
{
  qsort(v, n, sizeof *v, &dblcmp) ;
  return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 ;
}

int main (int argc, char **argv)
{
  unsigned int n ;
  int fifo, dirfd ;
  double *t[4], *d[3] ;
  char *direct[2], *link[3], *wrap[5] ;
  char buf[512] ;
  static char const *const kind[4] = { "direct", "link", "refresh", "new" } ;
  if (argc != 5 || (n = (unsigned int)atoi(argv[1])) < 1 || n > 60000)
  {
    fprintf(stderr, "usage: logins iterations dir wrapper prog\n") ;
    return 100 ;
  }
  dirfd = open(argv[2], O_RDONLY | O_DIRECTORY) ;
  if (dirfd == -1) die("unable to open the relay directory") ;
  if (mkdirat(dirfd, ".rebuild", 0700) == -1 && errno != EEXIST) die("unable to make the fifo directory") ;
  if (mkfifoat(dirfd, ".rebuild/relay-open.bench", 0620) == -1 && errno != EEXIST) die("unable to make the fifo") ;
  fifo = openat(dirfd, ".rebuild/relay-open.bench", O_RDONLY | O_NONBLOCK) ;
  if (fifo == -1) die("unable to open the fifo") ;
  direct[0] = argv[4] ; direct[1] = 0 ;
  link[0] = "env" ; link[1] = argv[4] ; link[2] = 0 ;
  wrap[0] = argv[3] ; wrap[1] = "-d" ; wrap[2] = argv[2] ; wrap[3] = argv[4] ; wrap[4] = 0 ;
  for (unsigned int k = 0 ; k < 4 ; k++) if (!(t[k] = malloc(n * sizeof(double)))) die("malloc") ;
  for (unsigned int k = 0 ; k < 3 ; k++) if (!(d[k] = malloc(n * sizeof(double)))) die("malloc") ;

  /* the refreshed address is granted first, and every program run once,
     so that the first iteration finds what the others find */
  once(wrap, "198.19.255.254") ;
  once(direct, "198.19.255.254") ;
  once(link, "198.19.255.254") ;

  for (unsigned int i = 0 ; i < n ; i++)
  {
    char fresh[32] ;
    unsigned int a = i + 1 ;
    snprintf(fresh, sizeof fresh, "198.18.%u.%u", a >> 8, a & 255) ;
    for (unsigned int j = 0 ; j < 4 ; j++)
    {
      unsigned int k = (i + j) % 4 ;
      t[k][i] = k == 0 ? once(direct, "198.19.255.254")
              : k == 1 ? once(link, "198.19.255.254")
              : k == 2 ? once(wrap, "198.19.255.254")
              : once(wrap, fresh) ;
      while (read(fifo, buf, sizeof buf) > 0) ;
    }
    for (unsigned int k = 0 ; k < 3 ; k++) d[k][i] = t[k + 1][i] - t[0][i] ;
  }
  for (unsigned int k = 0 ; k < 4 ; k++)
  {
    double m = median(t[k], n) ;
    printf("%s\t%.3f\t%.3f\n", kind[k], m, pct(t[k], n, 90)) ;
  }
  for (unsigned int k = 0 ; k < 3 ; k++)
  {
    double m = median(d[k], n) ;
    printf("extra-%s\t%.3f\t%.3f\n", kind[k + 1], m, pct(d[k], n, 90)) ;
  }
  return fflush(stdout) ? 111 : 0 ;
}
