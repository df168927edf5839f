/* relaydir.c: directories inside the relay directory, made whole with the
   right owner and mode; see relaydir.h. renameat2 is Linux's (3.15). */

#define _GNU_SOURCE  /* renameat2 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <skalibs/djbunix.h>
#include <skalibs/random.h>
#include <skalibs/fmtscan.h>
#include <skalibs/types.h>
#include "relaydir.h"

#ifndef RENAME_NOREPLACE
# define RENAME_NOREPLACE 1
#endif

int relaydir_right (struct stat const *sub, struct stat const *dir)
{
  mode_t group = sub->st_gid == dir->st_gid ? dir->st_mode & 070 : 0 ;
  return S_ISDIR(sub->st_mode) && sub->st_uid == dir->st_uid
      && !(sub->st_mode & 07) && !(sub->st_mode & 070 & ~group) ;
}

/* gives the open directory fd the relay directory's owner, group and
   mode (without the bits for others); an owner who is not in the relay
   directory's group keeps the directory to themself */
static int setright (int fd, struct stat const *dir)
{
  struct stat st ;
  mode_t mode = dir->st_mode & 02770 ;
  if (fstat(fd, &st) == -1) return 0 ;
  if ((st.st_uid != dir->st_uid || st.st_gid != dir->st_gid) && fchown(fd, dir->st_uid, dir->st_gid) == -1)
  {
    if (errno != EPERM || st.st_uid != dir->st_uid) return 0 ;
    mode &= 0700 ;
  }
  return fchmod(fd, mode) != -1 ;
}

static int repair (int dirfd, char const *name, struct stat const *dir)
{
  int ok, fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return 0 ;
  ok = setright(fd, dir) ;
  fd_close(fd) ;
  return ok ;
}

int relaydir_make (int dirfd, char const *name, struct stat const *dir)
{
  char tmp[RELAYDIR_TMPPREFIXLEN + 2 + PID_FMT + 1 + 16 + 1] ;
  struct stat st ;
  uid_t me = geteuid() ;
  int may = !me || me == dir->st_uid ;
  size_t n = RELAYDIR_TMPPREFIXLEN ;
  int fd, ok ;

  if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
  {
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR ; return 0 ; }
    if (relaydir_right(&st, dir)) return 1 ;
    if (!may) { errno = EPERM ; return 0 ; }
    return repair(dirfd, name, dir) ;
  }
  if (errno != ENOENT) return 0 ;
  if (!may) { errno = EPERM ; return 0 ; }

  /* .tmp.d.PID.RANDOM, given its owner and mode, then renamed onto name
     unless someone made name meanwhile */
  memcpy(tmp, RELAYDIR_TMPPREFIX "d.", n + 2) ;
  n += 2 ;
  n += pid_fmt(tmp + n, getpid()) ;
  tmp[n++] = '.' ;
  {
    unsigned char r[8] ;
    random_buf((char *)r, sizeof r) ;
    n += ucharn_fmt(tmp + n, (char const *)r, sizeof r) ;
  }
  tmp[n] = 0 ;
  if (mkdirat(dirfd, tmp, 0700) == -1) return 0 ;
  fd = openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  ok = fd >= 0 && setright(fd, dir) ;
  if (fd >= 0) fd_close(fd) ;
  if (ok && renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0) return 1 ;
  {
    int e = errno ;
    unlinkat(dirfd, tmp, AT_REMOVEDIR) ;
    if (!ok || e != EEXIST) { errno = e ; return 0 ; }
  }
  /* made by someone else meanwhile: judge theirs */
  return relaydir_make(dirfd, name, dir) ;
}
