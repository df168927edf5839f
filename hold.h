/* hold.h: holding a grant while the session lives.

   A mail client that keeps one IMAP connection open for hours (IDLE)
   logs in once, and its grant would end POPRELAY_TTL after that login
   while the user is still connected and sending. With POPRELAY_HOLD,
   pop3-wrapper leaves one small process behind when it execs the
   session, the holder, which rewrites the grant's stamp every TTL/3 with
   the same locked, atomic write as a login, for as long as the session
   runs, and at most POPRELAY_HOLD seconds after the login.

   The session stays the process the server started (its pid is
   pop3-wrapper's): the holder is a grandchild that no longer belongs to
   it, in a session of its own, reaped by init, holding no descriptor of
   the session's (the client's connection above all) but, at most, the
   log on descriptor 2. It learns of the session's end through a pidfd
   of pop3-wrapper's own process, opened before the fork (Linux 5.3);
   where there is none, it looks at /proc/PID/stat at each refresh, and
   knows the session by its start time. It stops when the session ends,
   when the stamp is no longer live (an administrator removed it, or the
   holder was stopped past the TTL), or at POPRELAY_HOLD. */

#ifndef POPRELAY_HOLD_H
#define POPRELAY_HOLD_H

#include <stdint.h>
#include "conf.h"
#include "ip.h"
#include "stamp.h"

/* The grant a holder would refresh: pop3-wrapper notes it with
   hold_grant once its stamp is written. */
typedef struct hold_s hold_t ;
struct hold_s
{
  int granted ;
  ip_t ip ;
  stampinfo_t si ;
} ;
#define HOLD_ZERO { .granted = 0 }

extern void hold_grant (hold_t *, ip_t const *, stampinfo_t const *) ;

/* Called just before the exec of the session, with the privileges to
   write the stamp still held: when c->hold is not 0 and a grant was
   noted, starts the holder and returns 1 once it runs; 0 when there was
   nothing to hold; -1 when the holder could not be started, after a
   warning. Either way the caller goes on to the session, which sees the
   descriptors, environment, signals and children it would have seen. */
extern int hold_start (hold_t const *, conf_t const *, int quiet) ;

/* A stamp's holder field names the holder: "PID:START", START being the
   process's start time in clock ticks after boot, so that a pid used
   again by another process is not taken for it. hold_live returns 1 if
   that process runs, 0 if it has ended or the field does not parse. */
extern int hold_live (char const *holder, uint64_t *pid) ;

#endif
