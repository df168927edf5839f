# End to end with Dovecot 2.3 (Debian's dovecot-pop3d), run from a config
# of the test's own: pop3-wrapper as the post-login script, set up as
# pop3-wrapper(8) and the README say (not set-gid, the relay directory
# owned by Dovecot's user, mode 0700, relay-open -w run by root); then
# Dovecot's checkpassword passdb, with pop3-wrapper after the password
# check (cvm-checkpassword, then pop3-wrapper, then checkpassword-reply).

. "$TOP/tests/lib.sh"
e2e_setup
DOVECOT_UID=$(id -u dovecot)
# what Dovecot lists: it counts each line end as CRLF
dovecot_listing () {
  i=0
  for f in "$T"/home/alice/Maildir/new/*; do
    i=$((i + 1))
    echo "$i $(( $(wc -c < "$f") + $(wc -l < "$f") ))"
  done
}
echo "alice:{PLAIN}secret:$E2E_UID:$E2E_UID::$T/home/alice::" > "$T/dovecot.passwd"
mkdir -p "$T/etc"
for v in POPRELAY_DIR POPRELAY_CACHE POPRELAY_RULES POPRELAY_CDB; do eval "printf '%s\n' \"\$$v\"" > "$T/etc/$v"; done
# A sanitizer build reserves terabytes of address space for its shadow
# memory, past the 256 MB Dovecot allows its services by default.
vsz=""
ldd "$BIN/pop3-wrapper" 2>/dev/null | grep -q -e libasan -e libubsan && vsz="default_vsz_limit = 0"
# dovecot_conf PASSDB-DRIVER PASSDB-ARGS [EXTRA]: a private configuration
# on 127.0.0.1:115, its files in $T
dovecot_conf () {
  cat > "$T/dovecot.conf" <<EOC
base_dir = $T/dovecot-run
state_dir = $T/dovecot-state
log_path = $T/dovecot.log
instance_name = poprelay-test
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
$vsz
mail_location = maildir:~/Maildir
passdb {
  driver = $1
  args = $2
}
userdb {
  driver = passwd-file
  args = $T/dovecot.passwd
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 115
  }
}
${3:-}
EOC
}
dovecot_start () {
  background dovecot -F -c "$T/dovecot.conf"
  dovecot_pid=$lastpid
  waitfor "Dovecot up" 200 e2e_listening 115
}
listing=$(dovecot_listing)
e2e_smtp_service 30
# errors_since N: the lines of Dovecot's log after its first N that
# Dovecot logged as errors
loglines () { wc -l < "$T/dovecot.log" | tr -d ' '; }
errors_since () { tail -n +$(( $1 + 1 )) "$T/dovecot.log" | grep ': Error: '; }

# --- the post-login script ---
cat > "$T/poprelay-login" <<EOS
#!/bin/sh
exec envdir $T/etc $BIN/pop3-wrapper -q -s pop3 "\$@"
EOS
chmod 755 "$T/poprelay-login"
chown dovecot "$POPRELAY_DIR"
chmod 0700 "$POPRELAY_DIR"
e2e_buckets
dovecot_conf passwd-file "$T/dovecot.passwd" "service pop3 {
  executable = pop3 pop3-postlogin
}
service pop3-postlogin {
  executable = script-login $T/poprelay-login
  user = dovecot
  unix_listener pop3-postlogin {
  }
}"
e2e_relay_open_service
dovecot_start
# (failed logins come from addresses of their own: Dovecot delays the next
# attempts from an address that failed)
t e2e_login 127.0.0.15 115 alice wrong
expect_grep "post-login: a wrong password is refused" 67 "denied"
no "post-login: the script does not run for a failed login, no stamp" stampfile 127.0.0.15
n=$(loglines)
t e2e_login 127.0.0.5 115
expect "post-login: alice logs in to Dovecot from 127.0.0.5 and gets her listing" 0 "$listing"
is "post-login, relay-open -w running: no Error line in Dovecot's log for the login" "$(errors_since $n)" ""
ok "post-login: pop3-wrapper granted 127.0.0.5" stampfile 127.0.0.5
# pop3-wrapper(8) gives the script -q, since Dovecot logs anything on its
# standard error as an error
no "post-login: with -q, no line of pop3-wrapper in Dovecot's log" grep -q "pop3-wrapper" "$T/dovecot.log"
is "post-login: the stamp records Dovecot's IP variable and Dovecot's uid" "$(grep -e '^uid ' -e '^via ' -e '^local ' "$(stampfile 127.0.0.5)")" "uid $DOVECOT_UID
local 127.0.0.1
via IP"
is "post-login: the stamp belongs to Dovecot's user" "$(stat -c %u "$(stampfile 127.0.0.5)")" "$DOVECOT_UID"
# README step 2 gives the relay directory to Dovecot's user, mode 0700, and
# step 5 runs relay-open -w as root; the grant must still take effect at
# the next SMTP connection, which needs pop3-wrapper's poke to reach the
# service.
is "post-login: the next SMTP connection from 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 30)" 250
no "post-login: pop3-wrapper could ask relay-open -w for the rebuild" grep -q "unable to ask relay-open for a rebuild" "$T/dovecot.log"
relay-open
is "post-login: after a build, 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 30)" 250
is "post-login: 127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 30)" 550
is "post-login: relay-open -l lists alice's grant" "$(relay-open -l | cut -d' ' -f1,2,5)" "127.0.0.5 user=alice status=granted"
# from cron only: no relay-open -w, so no fifo
stop "$relay_open_pid"
n=$(loglines)
t e2e_login 127.0.0.25 115
expect "post-login, cron only: alice logs in from 127.0.0.25" 0 "$listing"
ok "post-login, cron only: the grant is made" stampfile 127.0.0.25
is "post-login, cron only: no Error line in Dovecot's log for the login" "$(errors_since $n)" ""
stop "$dovecot_pid"

# --- the checkpassword passdb ---
# cvm-checkpassword switches to the mail user before it runs what follows,
# which only root may do: Dovecot's auth process must run as root, and
# Dovecot's checkpassword-reply refuses to answer for a process that
# switched users unless INSECURE_SETUID is set. pop3-wrapper runs as the
# mail user, and reads the address from Dovecot's TCPREMOTEIP: the relay
# directory must be writable by the mail users' group.
rm -rf "$POPRELAY_DIR"; mkdir "$POPRELAY_DIR"
chgrp "$E2E_UID" "$POPRELAY_DIR"; chmod 2770 "$POPRELAY_DIR"
e2e_buckets
cat > "$T/poprelay-checkpassword" <<EOS
#!/bin/sh
INSECURE_SETUID=1 CVM_PWFILE_PATH=$T/pwfile
export INSECURE_SETUID CVM_PWFILE_PATH
exec /usr/bin/cvm-checkpassword /usr/bin/cvm-pwfile \\
  envdir $T/etc $BIN/pop3-wrapper -q "\$@"
EOS
chmod 755 "$T/poprelay-checkpassword"
dovecot_conf checkpassword "$T/poprelay-checkpassword" "service auth {
  user = root
}"
e2e_relay_open_service
dovecot_start
t e2e_login 127.0.0.17 115 alice wrong
expect_grep "checkpassword: a wrong password is refused" 67 "denied"
no "checkpassword: a failed login never reaches pop3-wrapper, no stamp" stampfile 127.0.0.17
is "checkpassword: 127.0.0.17 may not relay" "$(e2e_rcpt 127.0.0.17 30)" 550
n=$(loglines)
t e2e_login 127.0.0.7 115
expect "checkpassword: alice logs in to Dovecot from 127.0.0.7" 0 "$listing"
ok "checkpassword: pop3-wrapper granted 127.0.0.7" stampfile 127.0.0.7
is "checkpassword: the stamp belongs to the mail user" "$(stat -c %u "$(stampfile 127.0.0.7)")" "$E2E_UID"
is "checkpassword, relay-open -w running: no Error line in Dovecot's log for the login" "$(errors_since $n)" ""
is "checkpassword: the stamp records Dovecot's TCPREMOTEIP" "$(grep -e '^uid ' -e '^via ' -e '^local ' "$(stampfile 127.0.0.7)")" "uid $E2E_UID
local 127.0.0.1:115
via TCPREMOTEIP"
is "checkpassword: the next SMTP connection from 127.0.0.7 may relay" "$(e2e_rcpt 127.0.0.7 30)" 250
is "checkpassword: 127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 30)" 550
stop "$relay_open_pid"
n=$(loglines)
t e2e_login 127.0.0.27 115
expect "checkpassword, cron only: alice logs in from 127.0.0.27" 0 "$listing"
ok "checkpassword, cron only: the grant is made" stampfile 127.0.0.27
is "checkpassword, cron only: no Error line in Dovecot's log for the login" "$(errors_since $n)" ""
# installed set-gid, pop3-wrapper believes no variable, and Dovecot gives
# the checkpassword program no socket: nothing can be granted there
sed -i "s|$BIN/pop3-wrapper|$E2E_WRAPPER|" "$T/poprelay-checkpassword"
t e2e_login 127.0.0.8 115
expect "checkpassword with a set-gid pop3-wrapper: the login still succeeds" 0 "$listing"
ok "checkpassword with a set-gid pop3-wrapper: no grant, fd 0 is not the client's socket" \
  grep -q "pop3-wrapper: warning: not granting relaying: the socket on fd 0: fd 0 is not a connected TCP socket" "$T/dovecot.log"
no "checkpassword with a set-gid pop3-wrapper: no stamp" stampfile 127.0.0.8
stop "$dovecot_pid"

done_testing
