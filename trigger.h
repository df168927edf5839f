/* trigger.h: asking the relay-open service for a rebuild.

   The relay directory holds a fifo, DIR/.rebuild, that "relay-open -w"
   reads. A program that changed the grants writes one byte into it and
   goes on at once; the service wakes, empties the fifo and rebuilds once,
   so that logins arriving during a rebuild cost one more rebuild, not one
   each (the s6 fifodir idea, cut down to one fifo). */

#ifndef POPRELAY_TRIGGER_H
#define POPRELAY_TRIGGER_H

#define TRIGGER_NAME ".rebuild"

/* Never blocks. Returns 1 if a relay-open service has the request, 0 if
   none is listening (no fifo, or no reader), -1 with errno on error. */
extern int trigger_poke (int dirfd) ;

/* For the service: makes the fifo if it is missing, gives it to the
   relay directory's owner and group, mode 0620 (they may poke, nobody
   else may), opens it for reading, non-blocking, and
   keeps a writer open so that it never reads end-of-file. Returns the fd
   to poll, or -1 with errno. */
extern int trigger_listen (int dirfd) ;

/* Empties the fifo. */
extern void trigger_drain (int fd) ;

#endif
