/* peer.h: where pop3-wrapper learns the client's address.

   Two sources, for two kinds of installation (see pop3-wrapper.8):

   peer_fromenv trusts the environment, as it is when the program that ran
   pop3-wrapper is the server itself (Dovecot's post-login script, a
   checkpassword run by the server as root): the first of these that is
   set decides, and if its value does not parse, nothing is granted:
     ${PROTO}REMOTEIP  (UCSPI: tcpserver, s6-tcpserver, sslserver)
     TCPREMOTEIP, SSLREMOTEIP
     IP                (Dovecot post-login)
     REMOTE_HOST       (xinetd)
   and when none is set, the peer of the socket on descriptor 0 (inetd).

   peer_fromsocket trusts only the kernel, for a set-gid pop3-wrapper that
   runs as the mail user, who could set any variable: descriptor 0 must be
   a TCP connection that was accepted on a port below the host's
   ip_unprivileged_port_start (no user can bind such a port, so a server
   run by root accepted it) in this network namespace; its peer is the
   client. */

#ifndef POPRELAY_PEER_H
#define POPRELAY_PEER_H

#include "ip.h"

typedef struct peer_s peer_t ;
struct peer_s
{
  ip_t ip ;
  char const *via ;          /* the variable, or "the socket on fd 0" */
  char local[IP_FMT + 8] ;   /* "address:port" of the server side, or "" */
} ;

/* Each returns 1, or 0 with *why; p->via names the source either way
   when one was found. */
extern int peer_fromenv (peer_t *, char const **why) ;
extern int peer_fromsocket (peer_t *, char const **why) ;

/* 1 if this process runs with privileges its invoker does not have
   (set-uid, set-gid, or file capabilities). */
extern int peer_privileged (void) ;

#endif
