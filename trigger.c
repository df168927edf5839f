/* trigger.c: the fifo directory of the services; see trigger.h. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <skalibs/djbunix.h>
#include "relaydir.h"
#include "trigger.h"

/* 1 if a reader had the byte, 0 if the fifo has none, -1 with errno */
static int pokeone (int fd, char const *name)
{
  struct stat st ;
  int r = 1, w = openat(fd, name, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (w == -1) return errno == ENXIO ? 0 : -1 ;
  if (fstat(w, &st) == -1) r = -1 ;
  else if (!S_ISFIFO(st.st_mode)) { errno = EINVAL ; r = -1 ; }
  /* a full fifo already holds a request */
  else if (write(w, "", 1) == -1 && errno != EAGAIN) r = -1 ;
  fd_close(w) ;
  return r ;
}

int trigger_poke (int dirfd, unsigned int *fifos, unsigned int *stale)
{
  DIR *d ;
  struct dirent *de ;
  int n = 0, e = 0, fd ;
  *fifos = *stale = 0 ;
  fd = openat(dirfd, TRIGGER_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1)
  {
    int r ;
    if (errno == ENOENT) return 0 ;
    if (errno != ENOTDIR) return -1 ;
    /* a single fifo, as a relay-open -w of poprelay's first version
       makes it */
    r = pokeone(dirfd, TRIGGER_DIR) ;
    if (r < 0) return -1 ;
    *fifos = 1 ; *stale = !r ;
    return r ;
  }
  d = fdopendir(fd) ;
  if (!d) { fd_close(fd) ; return -1 ; }
  while ((de = readdir(d)))
  {
    int r ;
    if (de->d_name[0] == '.') continue ;
    (*fifos)++ ;
    r = pokeone(fd, de->d_name) ;
    if (r > 0) n++ ;
    else if (!r) (*stale)++ ;
    else e = errno ;
  }
  closedir(d) ;
  /* one fifo that cannot be poked is worth a warning only when no service
     had the request */
  if (!n && e) { errno = e ; return -1 ; }
  return n ;
}

static int fail (int fd)
{
  fd_close(fd) ;
  return -1 ;
}

int trigger_listen (int dirfd, char const *name)
{
  struct stat dst, st ;
  int dfd, fd, w ;
  if (fstat(dirfd, &dst) == -1) return -1 ;
  /* the first version's single fifo gives way to the directory */
  if (!fstatat(dirfd, TRIGGER_DIR, &st, AT_SYMLINK_NOFOLLOW) && S_ISFIFO(st.st_mode)
   && unlinkat(dirfd, TRIGGER_DIR, 0) == -1) return -1 ;
  if (!relaydir_make(dirfd, TRIGGER_DIR, &dst)) return -1 ;
  dfd = openat(dirfd, TRIGGER_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (dfd == -1) return -1 ;
  if (mkfifoat(dfd, name, 0600) == -1 && errno != EEXIST) return fail(dfd) ;
  fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return fail(dfd) ;
  if (fstat(fd, &st) == -1) goto err ;
  if (!S_ISFIFO(st.st_mode)) { errno = EINVAL ; goto err ; }
  /* The fifo belongs to whoever owns the relay directory, user and group:
     pop3-wrapper runs as one (Dovecot's post-login user) or the other
     (set-gid), and this service is often root. */
  if (!geteuid() && (st.st_uid != dst.st_uid || st.st_gid != dst.st_gid) && fchown(fd, dst.st_uid, dst.st_gid) == -1) goto err ;
  if ((!geteuid() || st.st_uid == geteuid()) && (st.st_mode & 07777) != 0620 && fchmod(fd, 0620) == -1) goto err ;
  /* a writer of our own, so that the reader never sees end-of-file; it
     stays open, unused, for the life of the process */
  w = openat(dfd, name, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (w == -1) goto err ;
  fd_close(dfd) ;
  return fd ;
 err:
  fd_close(fd) ;
  return fail(dfd) ;
}

void trigger_unlisten (int dirfd, char const *name, int fd)
{
  struct stat a, b ;
  int dfd = openat(dirfd, TRIGGER_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) ;
  if (dfd == -1) return ;
  if (!fstat(fd, &a) && !fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    unlinkat(dfd, name, 0) ;
  fd_close(dfd) ;
}

void trigger_drain (int fd)
{
  char buf[512] ;
  while (read(fd, buf, sizeof buf) > 0) ;
}
