/* race: times commands side by side, for package/bench.

   race [-r rounds] [-w warmups] [-o rawfile] specfile

   Each line of specfile is a contender: label TAB prep TAB command. prep
   ("-" for none) is run by /bin/sh before each timed run, untimed, with
   BENCH_ROUND in its environment (0, 1, ...), so that every run starts
   from the same state (a new login to serve, an empty cache, an expired
   set to remove). command is run directly, without a shell, so that its
   time holds nothing else: words split at blanks, 'single quotes' as in
   sh, and the redirections <file, >file and 2>file. It is also valid sh,
   so that anyone can paste it.

   The contenders take turns: each round runs every one of them once, and
   each round starts with the next one, so that a slow spell of the
   machine or a cache warmed by the one before falls on all of them alike.
   The first warmup rounds (default 1) are not counted.

   Prints one line per contender: label, then the median, lowest and
   highest wall-clock milliseconds, the median peak resident set in KiB
   (wait4's ru_maxrss, what GNU time -f %M prints), the median CPU
   milliseconds (user + system), and the number of runs, TAB-separated.
   With -o, every counted run is also written to rawfile, one line each:
   round, label, milliseconds, KiB, CPU milliseconds; so that a ratio can
   be taken within each round, where both ran under the same conditions.
   Exits 111 if a command fails. */

#define _DEFAULT_SOURCE  /* wait4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#define MAXC 16
#define MAXARGS 64
#define MAXRUNS 1000

typedef struct contender_s contender_t ;
struct contender_s
{
  char *label ;
  char *prep ;
  char *line ;                  /* the command as written, for messages */
  char *argv[MAXARGS + 1] ;
  char *in, *out, *err ;
  double ms[MAXRUNS], cpu[MAXRUNS], rss[MAXRUNS] ;
  unsigned int n ;
} ;

static contender_t c[MAXC] ;
static unsigned int nc = 0 ;
static FILE *raw = 0 ;

static void die (char const *what, char const *arg)
{
  fprintf(stderr, "race: fatal: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "") ;
  exit(111) ;
}

/* splits s in place into words, with 'quotes' and redirections */
static void parse (contender_t *x, char *s)
{
  unsigned int argc = 0 ;
  char *r = s, *w = s ;
  for (;;)
  {
    char *word ;
    int quoted = 0 ;
    while (*r == ' ' || *r == '\t') r++ ;
    if (!*r) break ;
    word = w ;
    while (*r && *r != ' ' && *r != '\t')
    {
      if (*r == '\'')
      {
        char *q = strchr(r + 1, '\'') ;
        if (!q) die("unbalanced quote in", x->line) ;
        memmove(w, r + 1, (size_t)(q - r - 1)) ;
        w += q - r - 1 ;
        r = q + 1 ;
        quoted = 1 ;
      }
      else *w++ = *r++ ;
    }
    if (*r) r++ ;
    *w++ = 0 ;
    if (!quoted && word[0] == '<') x->in = word + 1 ;
    else if (!quoted && word[0] == '>') x->out = word + 1 ;
    else if (!quoted && word[0] == '2' && word[1] == '>') x->err = word + 2 ;
    else
    {
      if (argc == MAXARGS) die("too many words in", x->line) ;
      x->argv[argc++] = word ;
    }
  }
  if (!argc) die("no command for", x->label) ;
  x->argv[argc] = 0 ;
}

static void readspec (char const *file)
{
  char buf[4096] ;
  FILE *f = fopen(file, "r") ;
  if (!f) die("unable to open", file) ;
  while (fgets(buf, sizeof buf, f))
  {
    char *t1, *t2 ;
    size_t len = strlen(buf) ;
    if (len && buf[len - 1] == '\n') buf[--len] = 0 ;
    if (!len || buf[0] == '#') continue ;
    if (nc == MAXC) die("too many contenders in", file) ;
    t1 = strchr(buf, '\t') ;
    t2 = t1 ? strchr(t1 + 1, '\t') : 0 ;
    if (!t2) die("a line is not label TAB prep TAB command in", file) ;
    *t1 = *t2 = 0 ;
    c[nc].label = strdup(buf) ;
    c[nc].prep = strcmp(t1 + 1, "-") ? strdup(t1 + 1) : 0 ;
    c[nc].line = strdup(t2 + 1) ;
    {
      char *words = strdup(t2 + 1) ;
      if (!c[nc].label || !c[nc].line || !words) die("out of memory", 0) ;
      parse(&c[nc], words) ;
    }
    nc++ ;
  }
  fclose(f) ;
  if (!nc) die("no contender in", file) ;
}

static double now_ms (void)
{
  struct timespec ts ;
  clock_gettime(CLOCK_MONOTONIC, &ts) ;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 ;
}

static void redirect (char const *file, int fd, int flags)
{
  int f = open(file, flags, 0644) ;
  if (f == -1 || dup2(f, fd) == -1) { fprintf(stderr, "race: fatal: unable to open %s: %s\n", file, strerror(errno)) ; _exit(111) ; }
  if (f != fd) close(f) ;
}

static void prep (contender_t const *x, unsigned int round)
{
  char num[16] ;
  pid_t pid ;
  int st ;
  if (!x->prep) return ;
  snprintf(num, sizeof num, "%u", round) ;
  setenv("BENCH_ROUND", num, 1) ;
  pid = fork() ;
  if (pid == -1) die("unable to fork", 0) ;
  if (!pid)
  {
    execl("/bin/sh", "sh", "-c", x->prep, (char *)0) ;
    _exit(127) ;
  }
  if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) die("this preparation failed", x->prep) ;
}

static void run (contender_t *x, unsigned int round, int record)
{
  struct rusage ru ;
  double t0, t1 ;
  pid_t pid ;
  int st ;
  t0 = now_ms() ;
  pid = fork() ;
  if (pid == -1) die("unable to fork", 0) ;
  if (!pid)
  {
    if (x->in) redirect(x->in, 0, O_RDONLY) ;
    if (x->out) redirect(x->out, 1, O_WRONLY | O_CREAT | O_TRUNC) ;
    if (x->err) redirect(x->err, 2, O_WRONLY | O_CREAT | O_TRUNC) ;
    execvp(x->argv[0], x->argv) ;
    fprintf(stderr, "race: fatal: unable to run %s: %s\n", x->argv[0], strerror(errno)) ;
    _exit(127) ;
  }
  if (wait4(pid, &st, 0, &ru) == -1) die("unable to wait", 0) ;
  t1 = now_ms() ;
  if (!WIFEXITED(st) || WEXITSTATUS(st)) die("this command failed", x->line) ;
  if (!record) return ;
  if (x->n == MAXRUNS) die("too many rounds", 0) ;
  x->ms[x->n] = t1 - t0 ;
  x->cpu[x->n] = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3 ;
  x->rss[x->n] = (double)ru.ru_maxrss ;
  if (raw && fprintf(raw, "%u\t%s\t%.3f\t%.0f\t%.3f\n", round, x->label, x->ms[x->n], x->rss[x->n], x->cpu[x->n]) < 0) die("unable to write the raw file", 0) ;
  x->n++ ;
}

static int dblcmp (void const *a, void const *b)
{
  double x = *(double const *)a, y = *(double const *)b ;
  return x < y ? -1 : x > y ;
}

static double median (double *v, unsigned int n)
{
  qsort(v, n, sizeof *v, &dblcmp) ;
  return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 ;
}

int main (int argc, char **argv)
{
  unsigned int rounds = 5, warmups = 1 ;
  int opt ;
  while ((opt = getopt(argc, argv, "r:w:o:")) != -1)
    switch (opt)
    {
      case 'r' : rounds = (unsigned int)atoi(optarg) ; break ;
      case 'w' : warmups = (unsigned int)atoi(optarg) ; break ;
      case 'o' : raw = fopen(optarg, "w") ; if (!raw) die("unable to create", optarg) ; break ;
      default : fprintf(stderr, "usage: race [ -r rounds ] [ -w warmups ] [ -o rawfile ] specfile\n") ; return 100 ;
    }
  if (optind + 1 != argc || !rounds || rounds > MAXRUNS) { fprintf(stderr, "usage: race [ -r rounds ] [ -w warmups ] [ -o rawfile ] specfile\n") ; return 100 ; }
  readspec(argv[optind]) ;
  for (unsigned int r = 0 ; r < warmups + rounds ; r++)
    for (unsigned int i = 0 ; i < nc ; i++)
    {
      contender_t *x = &c[(r + i) % nc] ;
      prep(x, r) ;
      run(x, r, r >= warmups) ;
    }
  for (unsigned int i = 0 ; i < nc ; i++)
  {
    contender_t *x = &c[i] ;
    double med = median(x->ms, x->n) ;
    printf("%s\t%.3f\t%.3f\t%.3f\t%.0f\t%.3f\t%u\n", x->label, med, x->ms[0], x->ms[x->n - 1], median(x->rss, x->n), median(x->cpu, x->n), x->n) ;
  }
  if (raw && fclose(raw)) die("unable to write the raw file", 0) ;
  return fflush(stdout) ? 111 : 0 ;
}
