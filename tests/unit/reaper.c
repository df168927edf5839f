/* reaper PROG ARGS...: runs PROG as a child subreaper does, for the
   tests of pop3-wrapper's holder. Orphans in PROG's tree (a holder, once
   its parent has gone) become reaper's children instead of init's, and
   reaper reaps each as it exits, as init does on a real system (the
   machine the tests run on may have a pid 1 that does not). It exits
   with PROG's status once PROG has exited; SIGTERM and SIGINT are passed
   on to PROG. With REAPER_LOG set, each orphan reaped is a line
   "reaped PID" appended to that file. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static volatile sig_atomic_t child = 0 ;
static volatile sig_atomic_t late = 0 ;

static void pass (int sig)
{
  if (child > 0) kill(child, sig) ;
}

static void alarmed (int sig)
{
  (void)sig ;
  late = 1 ;
}

int main (int argc, char **argv)
{
  struct sigaction sa ;
  char const *log = getenv("REAPER_LOG") ;
  char const *pidfile = getenv("REAPER_PID") ;
  int status = 0 ;
  if (argc < 2) { fprintf(stderr, "usage: reaper prog args...\n") ; return 100 ; }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1) { perror("reaper: prctl") ; return 111 ; }
  memset(&sa, 0, sizeof sa) ;
  sa.sa_handler = &pass ;
  sigaction(SIGTERM, &sa, 0) ;
  sigaction(SIGINT, &sa, 0) ;
  child = fork() ;
  if (child == -1) { perror("reaper: fork") ; return 111 ; }
  if (pidfile && child)
  {
    FILE *f = fopen(pidfile, "w") ;
    if (f) { fprintf(f, "%d\n", (int)child) ; fclose(f) ; }
  }
  if (!child)
  {
    execvp(argv[1], argv + 1) ;
    perror("reaper: exec") ;
    _exit(127) ;
  }
  sa.sa_handler = &alarmed ;
  sigaction(SIGALRM, &sa, 0) ;
  while (!late)
  {
    int st ;
    pid_t p = waitpid(-1, &st, 0) ;
    if (p == -1) { if (errno == EINTR) continue ; break ; }
    if (p == child) { status = st ; child = 0 ; alarm(20) ; continue ; }
    if (log)
    {
      FILE *f = fopen(log, "a") ;
      if (f) { fprintf(f, "reaped %d\n", (int)p) ; fclose(f) ; }
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status) ;
}
