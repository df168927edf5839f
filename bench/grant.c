/* grant: how long from a POP login to the moment tcpserver would see the
   grant, for package/bench.

   grant logins burst gap-ms seed cdb dir wrapper prog

   Runs that many logins, "wrapper -d dir prog" with PROTO=TCP and a new
   TCPREMOTEIP each (198.19.0.1 and up, in 198.18.0.0/15, the range kept
   for benchmarks), in bursts of 1 to burst logins started at once, the
   bursts separated by random gaps of gap-ms on average (exponential, from
   seed), while the relay-open -w service serving dir rebuilds cdb.
   Between launches, and then until every grant is in, it looks the
   pending addresses up in cdb every 0.2 ms as tcpserver does at each
   connection: open the file, seek the key, close.

   A login's time runs from just before its fork to the first lookup that
   finds its address. Prints, TAB-separated: the number of logins, the
   median, the 90th percentile and the highest time in milliseconds, how
   many were not seen within 30 seconds, and the 99th percentile. The wrappers' standard error
   goes to /dev/null. */

#define _DEFAULT_SOURCE  /* srandom, random */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cdb.h>

#define MAXLOGINS 60000
#define GIVEUP_MS 30000.0
#define POLL_NS 200000

typedef struct login_s login_t ;
struct login_s
{
  char addr[20] ;
  double start ;
  double seen ;    /* 0: not yet */
} ;

static login_t lg[MAXLOGINS] ;

static double now_ms (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 ;
}

static void die (char const *what)
{
  fprintf(stderr, "grant: fatal: %s: %s\n", what, strerror(errno)) ;
  exit(111) ;
}

/* one lookup pass over the logins started and not seen; returns how many
   are still pending */
static unsigned int look (char const *cdbfile, unsigned int started)
{
  unsigned int pending = 0 ;
  int fd = open(cdbfile, O_RDONLY | O_CLOEXEC) ;
  for (unsigned int i = 0 ; i < started ; i++)
  {
    unsigned int dlen ;
    if (lg[i].seen) continue ;
    if (fd >= 0 && cdb_seek(fd, lg[i].addr, (unsigned int)strlen(lg[i].addr), &dlen) > 0) lg[i].seen = now_ms() ;
    else pending++ ;
  }
  if (fd >= 0) close(fd) ;
  return pending ;
}

static void reap (void)
{
  int st ;
  while (waitpid(-1, &st, WNOHANG) > 0) ;
}

static void tick (void)
{
  struct timespec ts = { 0, POLL_NS } ;
  nanosleep(&ts, 0) ;
}

static int dblcmp (void const *a, void const *b)
{
  double x = *(double const *)a, y = *(double const *)b ;
  return x < y ? -1 : x > y ;
}

int main (int argc, char **argv)
{
  unsigned int n, burst, started = 0, missed = 0 ;
  double gap, *lat ;
  char *wrap[5] ;
  char const *cdbfile ;
  if (argc != 9 || (n = (unsigned int)atoi(argv[1])) < 1 || n > MAXLOGINS || (burst = (unsigned int)atoi(argv[2])) < 1 || (gap = atof(argv[3])) < 0)
  {
    fprintf(stderr, "usage: grant logins burst gap-ms seed cdb dir wrapper prog\n") ;
    return 100 ;
  }
  srandom((unsigned int)atoi(argv[4])) ;
  cdbfile = argv[5] ;
  wrap[0] = argv[7] ; wrap[1] = "-d" ; wrap[2] = argv[6] ; wrap[3] = argv[8] ; wrap[4] = 0 ;
  setenv("PROTO", "TCP", 1) ;

  while (started < n)
  {
    unsigned int b = 1 + (unsigned int)(random() % burst) ;
    double until ;
    for (unsigned int j = 0 ; j < b && started < n ; j++, started++)
    {
      login_t *l = &lg[started] ;
      unsigned int a = started + 1 ;
      pid_t pid ;
      snprintf(l->addr, sizeof l->addr, "198.19.%u.%u", a >> 8, a & 255) ;
      l->start = now_ms() ;
      pid = fork() ;
      if (pid == -1) die("unable to fork") ;
      if (!pid)
      {
        int fd = open("/dev/null", O_WRONLY) ;
        if (fd == -1 || dup2(fd, 2) == -1) _exit(111) ;
        setenv("TCPREMOTEIP", l->addr, 1) ;
        execv(wrap[0], wrap) ;
        _exit(127) ;
      }
    }
    /* exponential gaps: arrivals of a Poisson process */
    until = now_ms() - gap * log(1.0 - (random() + 0.5) / 2147483648.0) ;
    while (now_ms() < until)
    {
      look(cdbfile, started) ;
      reap() ;
      tick() ;
    }
  }
  for (;;)
  {
    double oldest = 0 ;
    reap() ;
    if (!look(cdbfile, started)) break ;
    for (unsigned int i = 0 ; i < started ; i++)
      if (!lg[i].seen && (!oldest || lg[i].start < oldest)) oldest = lg[i].start ;
    if (now_ms() - oldest > GIVEUP_MS) break ;
    tick() ;
  }
  while (wait(0) > 0) ;

  lat = malloc(n * sizeof *lat) ;
  if (!lat) die("malloc") ;
  {
    unsigned int k = 0 ;
    for (unsigned int i = 0 ; i < n ; i++)
      if (lg[i].seen) lat[k++] = lg[i].seen - lg[i].start ;
      else missed++ ;
    if (!k) { printf("%u\t-\t-\t-\t%u\t-\n", n, missed) ; return 0 ; }
    qsort(lat, k, sizeof *lat, &dblcmp) ;
    printf("%u\t%.2f\t%.2f\t%.2f\t%u\t%.2f\n", n, k & 1 ? lat[k / 2] : (lat[k / 2 - 1] + lat[k / 2]) / 2, lat[(size_t)(k - 1) * 90 / 100], lat[k - 1], missed, lat[(size_t)(k - 1) * 99 / 100]) ;
  }
  return fflush(stdout) ? 111 : 0 ;
}
