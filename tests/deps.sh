# deps: every tool the suite relies on is here and can do what the tests
# ask of it. tests/run runs this first, so that a machine missing a piece
# fails here, naming the Debian package, instead of failing later in an
# end-to-end test with a reason that hides the cause. package/deps installs
# all of these; a failure here means it missed one.

. "$TOP/tests/lib.sh"

# need PACKAGE WHAT cmd...: the command succeeds, or the case fails naming
# PACKAGE and WHAT it was needed for, with the command's own output
need () {
  pkg=$1; what=$2; shift 2
  if o=$("$@" 2>&1); then pass
  else fail "$what: install Debian's $pkg (package/deps should have)" "command: $*" "$o"
  fi
}

# runs FILE: an unpacked program finds every library it is linked with
runs () {
  [ -x "$1" ] || { echo "missing: $1"; return 1; }
  ! ldd "$1" 2>&1 | grep 'not found'
}

need swaks "swaks, the SMTP client" command -v swaks
need libio-socket-inet6-perl "swaks over IPv6 (IO::Socket::INET6)" sh -c 'swaks --support 2>&1 | grep -q "^=== IPv6 supported"'
need curl "curl with POP3" sh -c 'curl -V | grep "^Protocols:" | grep -qw pop3'
need curl "curl with IMAP" sh -c 'curl -V | grep "^Protocols:" | grep -qw imap'
for p in tcpserver tcpclient tcprules tcprulescheck; do need ucspi-tcp "$p" command -v $p; done
need tinycdb "cdb, to read a cdb's records" command -v cdb
for p in tcpserver tcpclient tcprules tcprulescheck; do
  need ucspi-tcp-ipv6 "the unpacked ucspi-tcp-ipv6 $p (package/deps unpacks it into .deps)" runs "$TOP/.deps/ucspi-tcp-ipv6/usr/bin/$p"
done
need xinetd "the unpacked xinetd and its libraries (package/deps)" runs "$TOP/.deps/xinetd/usr/sbin/xinetd"
need openbsd-inetd "the unpacked inetd and its libraries (package/deps)" runs "$TOP/.deps/openbsd-inetd/usr/sbin/inetd"
for p in pop3front-auth pop3front-maildir imapfront-auth smtpfront-qmail; do need mailfront "$p" command -v $p; done
for p in cvm-pwfile cvm-checkpassword; do need cvm "$p" test -x /usr/bin/$p; done
need dovecot-core "dovecot" command -v dovecot
need dovecot-pop3d "Dovecot's POP3 server" test -x /usr/lib/dovecot/pop3
need dovecot-imapd "Dovecot's IMAP server" test -x /usr/lib/dovecot/imap
for p in supervise svc envdir multilog; do need daemontools "$p" command -v $p; done
for p in s6-supervise s6-svc s6-envdir s6-log; do need s6 "$p" command -v $p; done
need execline "execlineb" command -v execlineb
need groff "groff, for the man-page lint" sh -c 'groff -man -ww -z /dev/null'
need faketime "faketime, with its library" sh -c 'test "$(faketime -f "+2d" date +%s)" -gt "$(( $(date +%s) + 86000 ))"'
need valgrind "valgrind" valgrind --version
need strace "strace, to kill a program at a chosen system call" sh -c 'strace -f -o /dev/null -e trace=getpid -e inject=getpid:signal=SIGKILL:when=1 sh -c "kill -0 \$\$" 2>/dev/null; test $? = 137' 
need libclang-rt-dev "clang's fuzzer and sanitizer runtimes" sh -c "printf 'int LLVMFuzzerTestOneInput (const char *d, unsigned long n) { (void)d ; (void)n ; return 0 ; }\n' > '$T/fz.c' && clang -fsanitize=fuzzer,address,undefined -o '$T/fz' '$T/fz.c'"
need time "GNU time, for the benchmark's memory figures" /usr/bin/time -f %M true
need perl "perl" perl -e 'use POSIX; exit 0'
for p in ss ip; do need iproute2 "$p" command -v $p; done
for p in unshare setpriv nsenter flock; do need util-linux "$p" command -v $p; done
need rsync "rsync" rsync --version
need python3 "rrsync, rsync's forced command (a Python script)" sh -c '/usr/bin/rrsync -help 2>&1 | grep -q "^usage: rrsync"'
need openssh-client "ssh and ssh-keygen" sh -c "command -v ssh && ssh-keygen -q -t ed25519 -N '' -f '$T/key' >/dev/null"
need openssh-server "sshd" test -x /usr/sbin/sshd

done_testing
