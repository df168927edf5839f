/* trigger.c: the rebuild fifo; see trigger.h. */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include "trigger.h"

int trigger_poke (int dirfd)
{
  struct stat st ;
  int fd = openat(dirfd, TRIGGER_NAME, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return errno == ENXIO || errno == ENOENT ? 0 : -1 ;
  if (fstat(fd, &st) == -1) goto err ;
  if (!S_ISFIFO(st.st_mode)) { errno = EINVAL ; goto err ; }
  if (write(fd, "", 1) == -1 && errno != EAGAIN) goto err ;
  close(fd) ;
  return 1 ;
 err:
  {
    int e = errno ;
    close(fd) ;
    errno = e ;
  }
  return -1 ;
}

int trigger_listen (int dirfd)
{
  struct stat st ;
  int fd, w ;
  if (mkfifoat(dirfd, TRIGGER_NAME, 0600) == -1 && errno != EEXIST) return -1 ;
  fd = openat(dirfd, TRIGGER_NAME, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (fd == -1) return -1 ;
  if (fstat(fd, &st) == -1) goto err ;
  if (!S_ISFIFO(st.st_mode)) { errno = EINVAL ; goto err ; }
  /* The fifo belongs to whoever owns the relay directory, user and group:
     pop3-wrapper runs as one (Dovecot's post-login user) or the other
     (set-gid), and this service is often root. */
  {
    struct stat dst ;
    if (fstat(dirfd, &dst) == -1) goto err ;
    if (!geteuid() && (st.st_uid != dst.st_uid || st.st_gid != dst.st_gid) && fchown(fd, dst.st_uid, dst.st_gid) == -1) goto err ;
    if ((!geteuid() || st.st_uid == geteuid()) && (st.st_mode & 07777) != 0620 && fchmod(fd, 0620) == -1) goto err ;
  }
  /* a writer of our own, so that the reader never sees end-of-file; it
     stays open, unused, for the life of the process */
  w = openat(dirfd, TRIGGER_NAME, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) ;
  if (w == -1) goto err ;
  return fd ;
 err:
  {
    int e = errno ;
    close(fd) ;
    errno = e ;
  }
  return -1 ;
}

void trigger_drain (int fd)
{
  char buf[512] ;
  while (read(fd, buf, sizeof buf) > 0) ;
}
