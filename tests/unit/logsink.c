/* logsink PATH SECONDS: a stand-in for syslogd in the tests. Binds a
   datagram socket at PATH and prints each message it receives on its
   own line, until SECONDS pass without one or a message reads "stop". */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

int main (int argc, char **argv)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX } ;
  int fd ;
  if (argc != 3 || strlen(argv[1]) >= sizeof sun.sun_path)
  {
    fprintf(stderr, "usage: logsink path seconds\n") ;
    return 100 ;
  }
  strcpy(sun.sun_path, argv[1]) ;
  fd = socket(AF_UNIX, SOCK_DGRAM, 0) ;
  unlink(argv[1]) ;
  if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
  {
    perror("logsink: bind") ;
    return 111 ;
  }
  setvbuf(stdout, 0, _IOLBF, 0) ;
  for (;;)
  {
    char buf[2048] ;
    struct pollfd p = { .fd = fd, .events = POLLIN } ;
    ssize_t r ;
    if (poll(&p, 1, atoi(argv[2]) * 1000) <= 0) break ;
    r = recv(fd, buf, sizeof buf - 1, 0) ;
    if (r <= 0) continue ;
    buf[r] = 0 ;
    if (!strcmp(buf, "stop")) break ;
    for (char *s = buf ; *s ; s++) if (*s == '\n') *s = ' ' ;
    printf("%s\n", buf) ;
  }
  unlink(argv[1]) ;
  return 0 ;
}
