/* relaydir.c: directories inside the relay directory, made whole with the
   right owner and mode; see relaydir.h. renameat2 is Linux's (3.15). */

#define _GNU_SOURCE  /* renameat2 */
#include <dirent.h>
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
#include "stamp.h"

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

/* a temp name for a directory at the top of the relay directory:
   .tmp.d.PID.RANDOM, 40 bytes at most */
static void tmpname (char *tmp)
{
  size_t n = RELAYDIR_TMPPREFIXLEN ;
  unsigned char r[8] ;
  memcpy(tmp, RELAYDIR_TMPPREFIX "d.", n + 2) ;
  n += 2 ;
  n += pid_fmt(tmp + n, getpid()) ;
  tmp[n++] = '.' ;
  random_buf((char *)r, sizeof r) ;
  n += ucharn_fmt(tmp + n, (char const *)r, sizeof r) ;
  tmp[n] = 0 ;
}

/* Empties and removes the directory name: files, fifos and links go,
   and empty directories; a directory with something in it stays, for
   relay-clean to report. Nothing is followed. */
void relaydir_discard (int dirfd, char const *name)
{
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  DIR *d = fd >= 0 ? fdopendir(fd) : 0 ;
  struct dirent *de ;
  if (!d) { if (fd >= 0) fd_close(fd) ; return ; }
  while ((de = readdir(d)))
  {
    if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue ;
    if (unlinkat(fd, de->d_name, 0) == -1 && errno == EISDIR) unlinkat(fd, de->d_name, AT_REMOVEDIR) ;
  }
  closedir(d) ;
  unlinkat(dirfd, name, AT_REMOVEDIR) ;
}

/* A directory that is not right may hold what anyone put there while it
   was not: it is moved aside and discarded, contents and all, and a new
   one made in its place. */
static int replace (int dirfd, char const *name, struct stat const *dir)
{
  char tmp[RELAYDIR_TMPPREFIXLEN + 2 + PID_FMT + 1 + 16 + 1] ;
  tmpname(tmp) ;
  if (renameat(dirfd, name, dirfd, tmp) == -1) return errno == ENOENT ? relaydir_make(dirfd, name, dir) : 0 ;
  relaydir_discard(dirfd, tmp) ;
  return relaydir_make(dirfd, name, dir) ;
}

int relaydir_make (int dirfd, char const *name, struct stat const *dir)
{
  char tmp[RELAYDIR_TMPPREFIXLEN + 2 + PID_FMT + 1 + 16 + 1] ;
  struct stat st ;
  uid_t me = geteuid() ;
  int may = !me || me == dir->st_uid ;
  int fd, ok ;

  if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
  {
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR ; return 0 ; }
    if (relaydir_right(&st, dir)) return 1 ;
    if (!may) { errno = EPERM ; return 0 ; }
    return replace(dirfd, name, dir) ;
  }
  if (errno != ENOENT) return 0 ;
  if (!may) { errno = EPERM ; return 0 ; }

  /* made under a temp name, given its owner and mode, then renamed onto
     name unless someone made name meanwhile */
  tmpname(tmp) ;
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

int relaydir_openbucket (int dirfd, char const *bname, struct stat const *dir)
{
  struct stat st ;
  int fd ;
  if (!relaydir_make(dirfd, bname, dir)) return -1 ;
  fd = openat(dirfd, bname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return -1 ;
  if (fstat(fd, &st) == -1) { fd_close(fd) ; return -1 ; }
  if (!relaydir_right(&st, dir)) { fd_close(fd) ; errno = EPERM ; return -1 ; }
  return fd ;
}

int relaydir_fixbucket (int dirfd, char const *bname)
{
  struct stat dir ;
  if (fstat(dirfd, &dir) == -1) return 0 ;
  return relaydir_make(dirfd, bname, &dir) || errno == EPERM || errno == ENOTDIR ;
}

int relaydir_kind (char const *name)
{
  unsigned int b ;
  if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) return RELAYDIR_DOTS ;
  if (stamp_scanbucketname(name, &b)) return RELAYDIR_BUCKET ;
  if (!strcmp(name, RELAYDIR_REBUILD)) return RELAYDIR_FIFODIR ;
  if (!strcmp(name, RELAYDIR_RSYNC)) return RELAYDIR_INCOMING ;
  if (!strncmp(name, RELAYDIR_TMPPREFIX, RELAYDIR_TMPPREFIXLEN)) return RELAYDIR_TEMP ;
  return RELAYDIR_JUNK ;
}
