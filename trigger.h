/* trigger.h: waking the services that serve the relay directory.

   The relay directory holds a directory of fifos, DIR/.rebuild/, one for
   each service that wants to know when the grants change: relay-open -w,
   one per cdb it writes. A program that changed the grants writes one byte
   into every fifo there and goes on at once; each service wakes, empties
   its fifo and does its work once, so that logins arriving during a
   rebuild cost one more rebuild, not one each. (The s6 fifodir idea.)
   A service removes its fifo when it stops; one that was killed leaves a
   fifo with no reader, which a poke skips. */

#ifndef POPRELAY_TRIGGER_H
#define POPRELAY_TRIGGER_H

#include "relaydir.h"

#define TRIGGER_DIR RELAYDIR_REBUILD

/* Never blocks. Returns how many services have the request, 0 if none
   listens, -1 with errno if DIR/.rebuild cannot be read; *stale counts
   the fifos that have no reader (a stopped service), *fifos all of them.
   No DIR/.rebuild at all is 0 fifos: no service was ever set up. */
extern int trigger_poke (int dirfd, unsigned int *fifos, unsigned int *stale) ;

/* For a service: makes DIR/.rebuild if missing, and the fifo
   DIR/.rebuild/name, each given to the relay directory's owner and group,
   the directory with the relay directory's mode, the fifo mode 0620
   (they may poke, nobody else may); opens the fifo for reading,
   non-blocking, and keeps a writer open so that it never reads
   end-of-file. Returns the fd to poll, or -1 with errno. */
extern int trigger_listen (int dirfd, char const *name) ;

/* For a service that stops: removes its fifo, if it is still the one fd
   reads. */
extern void trigger_unlisten (int dirfd, char const *name, int fd) ;

/* Empties the fifo. */
extern void trigger_drain (int fd) ;

#endif
