/* peer.c: the client's address, from the environment or the kernel; see
   peer.h. SO_NETNS_COOKIE and getauxval are Linux's. */

#define _DEFAULT_SOURCE  /* SO_PROTOCOL, SO_NETNS_COOKIE */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <skalibs/djbunix.h>
#include <skalibs/types.h>
#include "peer.h"

#ifndef SO_NETNS_COOKIE
# define SO_NETNS_COOKIE 71
#endif

int peer_privileged (void)
{
  return getuid() != geteuid() || getgid() != getegid() || getauxval(AT_SECURE) ;
}

/* a whole string of decimal digits (skalibs' uint_scan), at most max */
static int decimal (char const *s, unsigned int max, unsigned int *u)
{
  size_t n = uint_scan(s, u) ;
  return n && !s[n] && (n == 1 || s[0] != '0') && *u <= max ;
}

static void fmtlocal (char *s, ip_t const *ip, unsigned int port)
{
  size_t n = 0 ;
  if (!ip_is4(ip)) s[n++] = '[' ;
  n += ip_fmt(s + n, ip) ;
  if (!ip_is4(ip)) s[n++] = ']' ;
  if (port)
  {
    s[n++] = ':' ;
    n += uint_fmt(s + n, port) ;
  }
  s[n] = 0 ;
}

static int sockaddr_ip (struct sockaddr_storage const *ss, ip_t *ip, unsigned int *port)
{
  if (ss->ss_family == AF_INET)
  {
    struct sockaddr_in const *sin = (struct sockaddr_in const *)ss ;
    memset(ip->b, 0, 10) ;
    ip->b[10] = ip->b[11] = 0xff ;
    memcpy(ip->b + 12, &sin->sin_addr, 4) ;
    *port = ntohs(sin->sin_port) ;
    return 1 ;
  }
  if (ss->ss_family == AF_INET6)
  {
    struct sockaddr_in6 const *sin6 = (struct sockaddr_in6 const *)ss ;
    memcpy(ip->b, &sin6->sin6_addr, 16) ;
    *port = ntohs(sin6->sin6_port) ;
    return 1 ;
  }
  return 0 ;
}

static int sockpeer (int fd, ip_t *ip, unsigned int *port)
{
  struct sockaddr_storage ss ;
  socklen_t len = sizeof ss ;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1) return 0 ;
  return sockaddr_ip(&ss, ip, port) ;
}

static int sockself (int fd, ip_t *ip, unsigned int *port)
{
  struct sockaddr_storage ss ;
  socklen_t len = sizeof ss ;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) return 0 ;
  return sockaddr_ip(&ss, ip, port) ;
}

static void localfromsocket (peer_t *p)
{
  ip_t ip ;
  unsigned int port ;
  if (sockself(0, &ip, &port)) fmtlocal(p->local, &ip, port) ;
}

static void localfromenv (peer_t *p, char const *proto)
{
  char name[32] ;
  char const *a = 0, *port = 0 ;
  ip_t ip ;
  unsigned int u = 0 ;
  if (proto && strlen(proto) <= 16)
  {
    strcpy(name, proto) ; strcat(name, "LOCALIP") ; a = getenv(name) ;
    strcpy(name, proto) ; strcat(name, "LOCALPORT") ; port = getenv(name) ;
  }
  if (!a) { a = getenv("TCPLOCALIP") ; port = getenv("TCPLOCALPORT") ; }
  if (!a) { a = getenv("LOCAL_IP") ; port = 0 ; }
  if (!a) { localfromsocket(p) ; return ; }
  if (!ip_scan(&ip, a, strlen(a))) return ;
  if (port && (!decimal(port, 65535, &u) || !u)) u = 0 ;
  fmtlocal(p->local, &ip, u) ;
}

static int protook (char const *s)
{
  size_t n = 0 ;
  for ( ; s[n] ; n++)
    if (n >= 16 || !((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9'))) return 0 ;
  return n > 0 ;
}

int peer_fromenv (peer_t *p, char const **why)
{
  static char protovar[32] ;
  static char const *const vars[] = { "TCPREMOTEIP", "SSLREMOTEIP", "IP", "REMOTE_HOST", 0 } ;
  char const *proto = getenv("PROTO") ;
  char const *v = 0 ;
  p->local[0] = 0 ;
  p->via = 0 ;
  if (proto && protook(proto))
  {
    strcpy(protovar, proto) ;
    strcat(protovar, "REMOTEIP") ;
    v = getenv(protovar) ;
    if (v) p->via = protovar ;
  }
  else proto = 0 ;
  for (unsigned int i = 0 ; !v && vars[i] ; i++)
  {
    v = getenv(vars[i]) ;
    if (v) p->via = vars[i] ;
  }
  if (!v)
  {
    unsigned int port ;
    p->via = "the socket on fd 0" ;
    if (!sockpeer(0, &p->ip, &port))
    {
      *why = "no client address: no TCPREMOTEIP, SSLREMOTEIP, IP or REMOTE_HOST, and fd 0 is not a TCP socket" ;
      return 0 ;
    }
    localfromsocket(p) ;
    return 1 ;
  }
  if (!ip_scan(&p->ip, v, strlen(v)))
  {
    *why = "its value is not an IPv4 or IPv6 address" ;
    return 0 ;
  }
  localfromenv(p, proto) ;
  return 1 ;
}

/* 1 if the socket belongs to the network namespace this process is in:
   a socket made in another one (which a user can own) could claim any
   peer address. */
static int samenetns (int fd, char const **why)
{
  uint64_t a, b ;
  socklen_t la = sizeof a, lb = sizeof b ;
  int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0) ;
  if (s == -1) s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) ;
  if (s == -1) { *why = "cannot make a socket to learn this network namespace" ; return 0 ; }
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &a, &la) == -1
   || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &b, &lb) == -1)
  {
    fd_close(s) ;
    *why = "this kernel cannot tell a socket's network namespace (SO_NETNS_COOKIE, Linux 5.14)" ;
    return 0 ;
  }
  fd_close(s) ;
  if (a != b) { *why = "the socket on fd 0 belongs to another network namespace" ; return 0 ; }
  return 1 ;
}

static unsigned int unprivstart (void)
{
  char buf[16] ;
  unsigned int u ;
  ssize_t r ;
  int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_RDONLY | O_CLOEXEC) ;
  if (fd == -1) return 1024 ;
  r = read(fd, buf, sizeof buf - 1) ;
  fd_close(fd) ;
  if (r <= 0) return 1024 ;
  buf[r] = 0 ;
  if (buf[r-1] == '\n') buf[r-1] = 0 ;
  return decimal(buf, 65536, &u) ? u : 0 ;
}

int peer_fromsocket (peer_t *p, char const **why)
{
  int type = 0, proto = 0, listening = 1 ;
  socklen_t len = sizeof type ;
  ip_t self ;
  unsigned int port, localport, limit ;
  p->via = "the socket on fd 0" ;
  p->local[0] = 0 ;
  if (getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) == -1 || type != SOCK_STREAM
   || (len = sizeof proto, getsockopt(0, SOL_SOCKET, SO_PROTOCOL, &proto, &len)) == -1 || proto != IPPROTO_TCP
   || (len = sizeof listening, getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) == -1 || listening
   || !sockpeer(0, &p->ip, &port) || !sockself(0, &self, &localport))
  {
    *why = "fd 0 is not a connected TCP socket" ;
    return 0 ;
  }
  limit = unprivstart() ;
  if (localport >= limit)
  {
    *why = limit ? "the socket on fd 0 is not on a privileged port, so any user could have made it"
                 : "ip_unprivileged_port_start is 0, so any user could have made the socket on fd 0" ;
    return 0 ;
  }
  if (!samenetns(0, why)) return 0 ;
  /* A socket belongs to whoever accepted it. A privileged port proves a
     server run by root only where no user can bind one: a user with
     CAP_NET_BIND_SERVICE (authbind, a setcap'd interpreter) can. */
  {
    struct stat st ;
    if (fstat(0, &st) == -1 || st.st_uid)
    {
      static char msg[64] = "it was accepted by uid " ;
      msg[23 + uint_fmt(msg + 23, fstat(0, &st) == -1 ? 4294967295u : (unsigned int)st.st_uid)] = 0 ;
      strcat(msg, ", not by root") ;
      *why = msg ;
      return 0 ;
    }
  }
  fmtlocal(p->local, &self, localport) ;
  return 1 ;
}
