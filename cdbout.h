/* cdbout.h: writing the rules cdb that tcpserver -x reads.

   The cdb is built in TARGET.relay-open.tmp beside the target, synced,
   made mode 0644 whatever the umask (tcpserver may run as another user),
   and renamed onto the target, so that tcpserver sees the old complete
   file or the new complete file, never a part of one. On any error the
   temp file is removed and the target is left as it was. The caller holds
   relay-open's lock, so the temp name is unique; one left behind by a
   killed run is removed by the next. */

#ifndef POPRELAY_CDBOUT_H
#define POPRELAY_CDBOUT_H

#include <cdb.h>
#include <skalibs/stralloc.h>

typedef struct cdbout_s cdbout_t ;
struct cdbout_s
{
  struct cdb_make m ;
  stralloc tmp ;
  char const *target ;
  int fd ;
  int started ;
} ;

/* Each returns 1, or 0 with errno; after a 0 the temp file is gone.
   cdbout_what names the temp file for an error message; cdbout_free
   releases the name after a finish or an abort. */
extern int cdbout_start (cdbout_t *, char const *target) ;
extern int cdbout_add (cdbout_t *, char const *key, size_t keylen, char const *data, size_t datalen) ;
extern int cdbout_finish (cdbout_t *) ;
extern void cdbout_abort (cdbout_t *) ;
extern char const *cdbout_what (cdbout_t const *) ;
extern void cdbout_free (cdbout_t *) ;

#endif
