/* cdbout.c: tinycdb's cdb_make into a temp file, then rename; see cdbout.h.

   tinycdb, not skalibs' cdbmake: the latter keeps its hash tables on the
   stack and crashes past about a million records. Fed the same records in
   the same order, tinycdb writes the same bytes as tcprules. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <skalibs/djbunix.h>
#include "cdbout.h"

int cdbout_start (cdbout_t *c, char const *target)
{
  c->target = target ;
  c->tmp = stralloc_zero ;
  c->fd = -1 ;
  c->started = 0 ;
  if (!stralloc_cats(&c->tmp, target) || !stralloc_cats(&c->tmp, ".relay-open.tmp") || !stralloc_0(&c->tmp)) return 0 ;
  if (unlink(c->tmp.s) == -1 && errno != ENOENT) return 0 ;
  c->fd = open(c->tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) ;
  if (c->fd == -1) return 0 ;
  if (cdb_make_start(&c->m, c->fd) == -1) { cdbout_abort(c) ; return 0 ; }
  c->started = 1 ;
  return 1 ;
}

int cdbout_add (cdbout_t *c, char const *key, size_t keylen, char const *data, size_t datalen)
{
  if (keylen > 0xffffff || datalen > 0xffffff) { errno = EOVERFLOW ; cdbout_abort(c) ; return 0 ; }
  if (cdb_make_add(&c->m, key, (unsigned)keylen, data, (unsigned)datalen) == -1) { cdbout_abort(c) ; return 0 ; }
  return 1 ;
}

int cdbout_finish (cdbout_t *c)
{
  c->started = 0 ;
  if (cdb_make_finish(&c->m) == -1 || fsync(c->fd) == -1 || fchmod(c->fd, 0644) == -1) goto err ;
  if (close(c->fd) == -1) { c->fd = -1 ; goto err ; }
  c->fd = -1 ;
  if (rename(c->tmp.s, c->target) == -1) goto err ;
  return 1 ;
 err:
  cdbout_abort(c) ;
  return 0 ;
}

void cdbout_abort (cdbout_t *c)
{
  int e = errno ;   /* the caller reports the error that brought us here */
  /* tinycdb frees its record lists only in cdb_make_finish: let it write
     its tables into the doomed file, so that a long-running relay-open
     does not leak a build's worth of memory at each failure */
  if (c->started) { c->started = 0 ; cdb_make_finish(&c->m) ; }
  if (c->fd >= 0) { fd_close(c->fd) ; c->fd = -1 ; }
  if (c->tmp.s) unlink(c->tmp.s) ;
  errno = e ;
}

char const *cdbout_what (cdbout_t const *c)
{
  return c->tmp.s ? c->tmp.s : c->target ;
}

void cdbout_free (cdbout_t *c)
{
  stralloc_free(&c->tmp) ;
}
