/* relaydir.h: the directories inside the relay directory, and whom they
   belong to.

   The relay directory holds the 256 buckets (see stamp.h) and the fifo
   directory .rebuild (see trigger.h). Each is made by a service (relay-open
   or relay-clean), or by pop3-wrapper when it runs as the relay
   directory's owner, with the relay directory's owner, group and mode;
   never by a mail user, so that no user owns a directory whose mode they
   could change. A directory is made whole or not at all: under a temp
   name, given its owner and mode, then renamed into place, so that a
   process killed half way leaves only a temp directory, never a bucket
   with the wrong mode. */

#ifndef POPRELAY_RELAYDIR_H
#define POPRELAY_RELAYDIR_H

#include <sys/stat.h>

/* The prefix of the temp names relaydir_make uses at the top of the
   relay directory, and the name of the fifo directory (trigger.h). */
#define RELAYDIR_TMPPREFIX ".tmp."
#define RELAYDIR_TMPPREFIXLEN 5
#define RELAYDIR_REBUILD ".rebuild"

/* In a sending host's relay directory (POPRELAY_HOSTS/HOST), the
   directory where rsync writes each pushed stamp before renaming it into
   its bucket (relay-publish's --temp-dir): never a bucket, never junk,
   and never removed whole, since rsync needs it there; relay-clean
   removes what a killed rsync left in it after the grace period. */
#define RELAYDIR_RSYNC ".rsync"

/* What a name at the top of the relay directory is. */
#define RELAYDIR_DOTS 0      /* "." or ".." */
#define RELAYDIR_BUCKET 1    /* a bucket's name (stamp.h) */
#define RELAYDIR_FIFODIR 2   /* the fifo directory */
#define RELAYDIR_TEMP 3      /* what relaydir_make was making */
#define RELAYDIR_JUNK 4      /* anything else */
#define RELAYDIR_INCOMING 5  /* RELAYDIR_RSYNC, in a sending host's directory */
extern int relaydir_kind (char const *name) ;

/* 1 if sub, a directory inside the relay directory whose stat is dir, is
   as relaydir_make makes it: the same owner, no permission for others,
   and for the group no more than the relay directory gives its group,
   none if the group is another one. */
extern int relaydir_right (struct stat const *sub, struct stat const *dir) ;

/* Makes the directory name in the relay directory dirfd (whose stat is
   dir) if it is missing, when this process may (root, or the relay
   directory's owner). One that is there but not right may hold what
   anyone put there while it was not: it is moved aside and emptied, and
   a new one made. Returns 1 if name is then a right directory, 0 with
   errno otherwise (EPERM: it is missing or not right, and this process
   may not make it). */
extern int relaydir_make (int dirfd, char const *name, struct stat const *dir) ;

/* Opens the bucket bname for writing a stamp in it, made by
   relaydir_make when missing: returns the open directory, or -1 with
   errno (EPERM: missing, or not right, and not this process's to make).
   Where pop3-wrapper writes a stamp: at a login, and at each refresh of
   a held grant (hold.h). */
extern int relaydir_openbucket (int dirfd, char const *bname, struct stat const *dir) ;

/* Empties and removes the directory name in the relay directory (a temp
   directory relaydir_make left behind when it was killed): files, fifos,
   links and empty directories go, nothing is followed. */
extern void relaydir_discard (int dirfd, char const *name) ;

/* relaydir_make for a service that found the bucket bname missing or
   not right: returns 1 when it is made, or when it is not for a reason
   already known (EPERM: not ours to make; ENOTDIR: a file stands in the
   way, reported as junk); 0 with errno otherwise. */
extern int relaydir_fixbucket (int dirfd, char const *bname) ;

#endif
