/* chain.h: the end of every chain link: running the next program.

   chain_exec runs argv with the environment as it stands, searching PATH
   as the shell does (skalibs' exec_a), and when it cannot, dies with the
   one exit-code rule of every poprelay program: 127 if the program was
   not found, 126 if it was found and could not be run. The name is
   quoted (conf_quote) so that the message stays one line whatever it
   holds. */

#ifndef POPRELAY_CHAIN_H
#define POPRELAY_CHAIN_H

#include <skalibs/gccattributes.h>

extern void chain_exec (char const *const *argv) gccattr_noreturn ;

#endif
