/* chain.c: running the next program of the chain; see chain.h. */

#include <errno.h>
#include <skalibs/exec.h>
#include <skalibs/strerr.h>
#include "chain.h"
#include "conf.h"

void chain_exec (char const *const *argv)
{
  char q[80] ;
  exec_a(argv[0], argv) ;
  conf_quote(q, sizeof q, argv[0]) ;
  strerr_diefusys(errno == ENOENT || errno == ENOTDIR ? 127 : 126, "exec ", q) ;
}
