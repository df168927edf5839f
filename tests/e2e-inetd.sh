# End to end under the super-servers, each run in the foreground from a
# config of the test's own: xinetd, which gives the client address in
# REMOTE_HOST, and openbsd-inetd, which gives none, so pop3-wrapper asks
# the socket on fd 0. Here pop3-wrapper is not set-gid (so that it reads
# REMOTE_HOST at all) and the relay directory belongs to the mail users'
# group. A super-server hands the socket to the program as fd 0, 1 and 2,
# so the run scripts send the log (fd 2) to a file.

. "$TOP/tests/lib.sh"
e2e_setup
XINETD=$TOP/.deps/xinetd/usr/sbin/xinetd
INETD=$TOP/.deps/openbsd-inetd/usr/sbin/inetd
chgrp "$E2E_UID" "$POPRELAY_DIR"
e2e_buckets
mkdir -p "$T/etc"
mkdir -p "$T/seen"; chmod 777 "$T/seen"
for v in POPRELAY_DIR POPRELAY_CACHE POPRELAY_RULES POPRELAY_CDB CVM_PWFILE_PATH; do eval "printf '%s\n' \"\$$v\"" > "$T/etc/$v"; done
# what the session saw: the variables the client address could come from
cat > "$T/session" <<EOS
#!/bin/sh
env | grep -e '^TCPREMOTEIP=' -e '^REMOTE_HOST=' -e '^PROTO=' -e '^IP=' | sort > $T/seen/session.env
exec "\$@"
EOS
cat > "$T/pop3" <<EOS
#!/bin/sh
# (inetd clears PATH)
PATH=/usr/sbin:/usr/bin:/bin
export PATH
exec 2>>$T/pop.log
exec envdir $T/etc pop3front-auth /usr/bin/cvm-pwfile $T/session $BIN/pop3-wrapper -s pop3 pop3front-maildir ./Maildir/
EOS
chmod 755 "$T/session" "$T/pop3"
e2e_relay_open_service
e2e_smtp_service 31
listing=$(e2e_listing)

# --- xinetd ---
# xinetd_conf FILE PORT SERVER [ARGS]: a config of one service on
# 127.0.0.1:PORT
xinetd_conf () {
  cat > "$1" <<EOC
defaults
{
  log_type = FILE $T/xinetd.log
}
service poprelay-test-pop3
{
  type        = UNLISTED
  port        = $2
  bind        = 127.0.0.1
  socket_type = stream
  protocol    = tcp
  wait        = no
  user        = root
  server      = $3
${4:+  server_args = $4}
}
EOC
}
xinetd_conf "$T/xinetd.conf" 116 "$T/pop3"
background "$XINETD" -dontfork -f "$T/xinetd.conf" -pidfile "$T/xinetd.pid" 2>>"$T/xinetd.log"
xinetd=$lastpid
waitfor "xinetd up" 100 e2e_listening 116
is "xinetd: 127.0.0.5 may not relay before it logs in" "$(e2e_rcpt 127.0.0.5 31)" 550
t e2e_login 127.0.0.5 116 alice wrong
expect_grep "xinetd: a wrong password is refused" 67 "denied"
no "xinetd: and grants nothing" stampfile 127.0.0.5
t e2e_login 127.0.0.5 116
expect "xinetd: alice logs in from 127.0.0.5" 0 "$listing"
is "xinetd: the session got the address in REMOTE_HOST, and no UCSPI variable" "$(cat "$T/seen/session.env")" "REMOTE_HOST=127.0.0.5"
is "xinetd: the stamp says it came from REMOTE_HOST" "$(grep -e '^via ' -e '^uid ' "$(stampfile 127.0.0.5)")" "uid $E2E_UID
via REMOTE_HOST"
is "xinetd: the next SMTP connection from 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 31)" 250
is "xinetd: 127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 31)" 550
stop $xinetd

# --- openbsd-inetd ---
echo "127.0.0.1:117 stream tcp nowait root $T/pop3 pop3" > "$T/inetd.conf"
background "$INETD" -d -i "$T/inetd.conf" 2>>"$T/inetd.log"
inetd=$lastpid
waitfor "inetd up" 100 e2e_listening 117
is "inetd: 127.0.0.7 may not relay before it logs in" "$(e2e_rcpt 127.0.0.7 31)" 550
t e2e_login 127.0.0.7 117 alice wrong
expect_grep "inetd: a wrong password is refused" 67 "denied"
no "inetd: and grants nothing" stampfile 127.0.0.7
t e2e_login 127.0.0.7 117
expect "inetd: alice logs in from 127.0.0.7" 0 "$listing"
is "inetd: the session got no address variable at all" "$(cat "$T/seen/session.env")" ""
is "inetd: the stamp says it came from the socket" "$(grep -e '^via ' -e '^local ' "$(stampfile 127.0.0.7)")" "local 127.0.0.1:117
via the\\x20socket\\x20on\\x20fd\\x200"
is "inetd: the next SMTP connection from 127.0.0.7 may relay" "$(e2e_rcpt 127.0.0.7 31)" 250
is "inetd: 127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 31)" 550
is "the grants: one per login" "$(relay-open -l | cut -d' ' -f1,2,5 | sort | tr '\n' ' ')" "127.0.0.5 user=alice status=granted 127.0.0.7 user=alice status=granted "
stop $inetd

# --- the xinetd service as pop3-wrapper(8) writes it ---
# There the chain runs straight from xinetd (qmail-popup, checkpassword,
# pop3-wrapper, qmail-pop3d), with no run script in between, so fd 2 is
# the client's socket too. qmail is not in Debian 12: the session here
# stands in for qmail-pop3d after a login, which answers the password
# with "+OK". The client must read that answer, not a log line.
printf '#!/bin/sh\nprintf "+OK \\r\\n"\n' > "$T/qmail-pop3d"
chmod 755 "$T/qmail-pop3d"
xinetd_conf "$T/xinetd-man.conf" 118 "$BIN/pop3-wrapper" "-d $POPRELAY_DIR $T/qmail-pop3d"
# pop3-wrapper's line goes to syslog there: xinetd runs in a mount
# namespace of its own whose /dev is a fresh one, with the few devices a
# server needs and, as /dev/log, the socket of a stand-in syslogd.
background "$BIN/tests/unit/logsink" "$T/log.sock" 20 > "$T/syslog"
logsink=$lastpid
waitfor "logsink up" 100 test -S "$T/log.sock"
mkdir "$T/olddev"
background unshare -m sh -c '
  mount --rbind /dev "$0/olddev" && mount -t tmpfs -o mode=755 tmpfs /dev || exit 111
  for n in null zero full random urandom tty; do
    [ -e "$0/olddev/$n" ] || continue
    touch "/dev/$n" && mount --bind "$0/olddev/$n" "/dev/$n" || exit 111
  done
  touch /dev/log && mount --bind "$0/log.sock" /dev/log || exit 111
  ln -s /proc/self/fd /dev/fd
  exec "$@"' "$T" "$XINETD" -dontfork -f "$T/xinetd-man.conf" -pidfile "$T/xinetd.pid" 2>>"$T/xinetd.log"
xinetd=$lastpid
waitfor "xinetd up" 100 e2e_listening 118
t tcpclient -H -R -l test -i 127.0.0.8 127.0.0.1 118 sh -c 'head -1 <&6 | tr -d "\r"'
expect "xinetd as pop3-wrapper(8) writes it: the client reads the session's answer first" 0 "+OK "
ok "xinetd as pop3-wrapper(8) writes it: 127.0.0.8 is granted" stampfile 127.0.0.8
waitfor "the line in syslog" 100 grep -q "granted 127.0.0.8" "$T/syslog"
ok "xinetd as pop3-wrapper(8) writes it: the grant's line is in syslog, facility mail, level info" \
  grep -q "^<22>.* pop3-wrapper\[[0-9]*\]: info: granted 127.0.0.8 to ? uid 0\$" "$T/syslog"
stop $xinetd
stop $logsink

done_testing
