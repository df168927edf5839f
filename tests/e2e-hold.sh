# End to end, a long IMAP session (pop3-wrapper -h): mailfront's
# imapfront-auth checks the password and runs the set-gid pop3-wrapper,
# which runs Dovecot's imap; a client logs in and stays in IDLE for
# several TTLs (2 s here) and keeps relaying; when it leaves, the grant
# ends on time, and the holder with it. Beside it, the same service
# without -h: no process more than today, and the grant ends a TTL after
# the login, the client still connected. The session killed with SIGKILL:
# the client's connection closes at once (the holder keeps no copy of
# it) and the holder ends. Then Dovecot's own IMAP login with the
# post-login script, where the program pop3-wrapper runs ends at once:
# so does the holder. The servers run under tests/unit/reaper, a child
# subreaper, which reaps orphans as init does.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
e2e_setup
POPRELAY_TTL=2
export POPRELAY_TTL
REAPER=$BIN/tests/unit/reaper
REAPER_LOG=$T/reaped
export REAPER_LOG
cat > "$T/imap.conf" <<EOC
base_dir = $T/dovecot-base
log_path = /dev/stderr
mail_location = maildir:~/Maildir
ssl = no
EOC
mkdir -p "$T/dovecot-base"
chmod 644 "$T/imap.conf"

# idle.pl FROM PORT STOP: logs in as alice from FROM, selects the inbox
# and idles ("idling" once the server said so) until the file STOP
# appears (then DONE and LOGOUT, "logged out") or the server closes the
# connection ("closed by the server"); 60 s at most
cat > "$T/idle.pl" <<'EOP'
use strict; use warnings; use IO::Socket::INET; use IO::Select;
$| = 1;
my ($from, $port, $stop) = @ARGV;
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, LocalAddr => $from, Timeout => 10)
  or do { print "cannot connect: $!\n"; exit 1 };
$s->autoflush(1);
sub upto { my $tag = shift; while (defined(my $l = <$s>)) { return $l if $l =~ /^\Q$tag\E / } print "closed by the server\n"; exit 2 }
upto('*');
print $s "a LOGIN alice secret\r\n"; upto('a') =~ /^a OK/ or do { print "login refused\n"; exit 1 };
print $s "b SELECT INBOX\r\n"; upto('b');
print $s "c IDLE\r\n"; upto('+');
print "idling\n";
my $sel = IO::Select->new($s);
for (my $i = 0; $i < 600 && ! -e $stop; $i++) {
  next unless $sel->can_read(0.1);
  my $l = <$s>;
  if (!defined $l) { print "closed by the server\n"; exit 2 }
}
print $s "DONE\r\n"; upto('c');
print $s "d LOGOUT\r\n"; upto('d');
print "logged out\n";
EOP

# idle FROM PORT: starts idle.pl in the background, its output in
# $T/idle.FROM, and waits until it idles
idle () {
  rm -f "$T/stop.$1"
  background perl "$T/idle.pl" "$1" "$2" "$T/stop.$1" > "$T/idle.$1" 2>&1
  waitfor "$1 idles" 200 grep -q '^idling$' "$T/idle.$1"
}
leave () { touch "$T/stop.$1"; waitfor "$1 logs out" 100 grep -q '^logged out$' "$T/idle.$1"; }

# process facts, from /proc
children () { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ' | sed 's/ $//'; }
statfield () { sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f"$2"; }   # 2 ppid, 4 session
exe_of () { readlink /proc/"$1"/exe 2>/dev/null; }
tcpserver_of () { for c in $(children "$1"); do [ "$(exe_of "$c")" = /usr/bin/tcpserver ] && echo "$c"; done; }
gone () { [ ! -e "/proc/$1" ]; }
# what a session was given: its descriptors 0, 1 and 2, its signal mask
# and ignored signals (the rest is Dovecot's own, and Dovecot writes its
# process title over its environment)
shape () {
  for f in 0 1 2; do printf '%s %s\n' "$f" "$(readlink "/proc/$1/fd/$f" | sed 's/:.*//; s|^/.*|file|')"; done
  grep -e '^SigBlk' -e '^SigIgn' /proc/"$1"/status
}
mtime () { stat -c %Y "$(stampfile "$1")" 2>/dev/null; }

e2e_relay_open_service
# the same IMAP service twice: 143 holds (-h 60), 144 does not
for svc in "143 -h 60" "144"; do
  set -- $svc
  port=$1; shift
  background env CVM_SASL_PLAIN=/usr/bin/cvm-pwfile "$REAPER" tcpserver -H -R -l imap 127.0.0.1 "$port" \
    imapfront-auth "$E2E_WRAPPER" -s imap "$@" doveconf -c "$T/imap.conf" -e /usr/lib/dovecot/imap 2>>"$T/imap.log"
  eval "reaper$port=\$lastpid"
  waitfor "IMAP service $port up" 100 e2e_listening "$port"
done
e2e_smtp_service 29
tcp143=$(tcpserver_of "$reaper143"); tcp144=$(tcpserver_of "$reaper144")
ok "the services run (tcpserver $tcp143 and $tcp144)" test -n "$tcp143" -a -n "$tcp144"

# --- two clients stay in IDLE: 127.0.0.5 held, 127.0.0.7 not ---
idle 127.0.0.5 143; ok "127.0.0.5 logs in to the holding service and idles" test $? = 0
idle 127.0.0.7 144; ok "127.0.0.7 logs in to the other one and idles" test $? = 0
login7=$(date +%s)
waitfor "a holder runs" 40 grep -q 'info: holding 127.0.0.5' "$T/imap.log"
s5=$(children "$tcp143"); s7=$(children "$tcp144")
h=$(holders "$E2E_WRAPPER")
is "one holder runs, for the held session only" "$(printf '%s\n' $h | wc -l | tr -d ' ')" 1
is "the holder says whose session it watches" "$(sed -n 's/.*holding 127.0.0.5 while the session, pid \([0-9]*\), runs, 60 s at most$/\1/p' "$T/imap.log")" "$s5"
is "tcpserver's only child is the session" "$(printf '%s\n' $s5 | wc -l | tr -d ' ')" 1
is "the held session has no child" "$(children "$s5")" ""
is "the holder is the subreaper's child, not tcpserver's nor the session's" "$(statfield "$h" 2)" "$reaper143"
is "the holder leads a session of its own" "$(statfield "$h" 4)" "$h"
is "the holder's working directory is /" "$(readlink "/proc/$h/cwd")" /
is "the holder's descriptors: /dev/null, /dev/null, the log, its pidfd; no socket" \
  "$(for f in /proc/"$h"/fd/*; do printf '%s:%s ' "${f##*/}" "$(readlink "$f")"; done)" \
  "0:/dev/null 1:/dev/null 2:$T/imap.log 3:anon_inode:[pidfd] "
is "between refreshes the holder's effective group is the user's; the relay group is only saved" \
  "$(awk '/^Gid:/ { print $3, $4 }' "/proc/$h/status")" "$E2E_UID $E2E_GID"
is "the held session has the descriptors 0, 1, 2 and the signals of the other one" "$(shape "$s5")" "$(shape "$s7")"
is "the held session is not in the holder's process group" "$([ "$(statfield "$s5" 3)" != "$(statfield "$h" 3)" ] && echo apart)" apart
is "the other service: its session only, no holder" "$(children "$tcp144")|$(children "$s7")" "$s7|"
is "relay-open -l: 127.0.0.5 held by the holder, 127.0.0.7 not held" "$(relay-open -l | cut -d' ' -f1,5,6 | sort)" "127.0.0.5 status=granted held-by=$h
127.0.0.7 status=granted"

# three TTLs and more in IDLE: 127.0.0.5 keeps relaying
first=$(mtime 127.0.0.5)
relayed=""
for i in 1 2 3 4; do
  sleep 1.7
  relayed="$relayed $(e2e_rcpt 127.0.0.5 29)"
done
is "127.0.0.5, idle for seven seconds (TTL 2), may relay all along" "$relayed" " 250 250 250 250"
ok "its stamp was refreshed meanwhile" test "$(mtime 127.0.0.5)" -ge $((first + 5))
ok "127.0.0.7 (no hold) is still connected" grep -q '^idling$' "$T/idle.127.0.0.7"
ok "yet its grant ended a TTL after its login" test "$(date +%s)" -ge $((login7 + 3))
is "127.0.0.7 may not relay, though still connected" "$(e2e_rcpt 127.0.0.7 29)" 550
leave 127.0.0.7

# --- 127.0.0.5 leaves: the holder goes at once, the grant on time ---
leave 127.0.0.5; ok "127.0.0.5 logs out" test $? = 0
left=$(date +%s)
waitfor "the holder has ended and been reaped" 20 gone "$h"; ok "the holder ends with the session, within a second" test $? = 0
ok "the subreaper reaped it" grep -qx "reaped $h" "$REAPER_LOG"
ok "it says why" grep -q "info: released 127.0.0.5 after [0-9]* s and [0-9]* refresh[a-z]*: the session ended$" "$T/imap.log"
last=$(mtime 127.0.0.5)
ok "the last refresh was within a second of the end" test "$last" -ge $((left - 2))
is "right after, 127.0.0.5 may still relay (the grant runs out its TTL)" "$(e2e_rcpt 127.0.0.5 29)" 250
is "relay-open -l: the hold has ended" "$(relay-open -l | grep '^127.0.0.5 ' | cut -d' ' -f6)" "hold=ended"
sleep "$(awk -v l="$last" -v n="$(date +%s.%N)" 'BEGIN { d = l + 1 + 2 + 0.5 - n; print (d > 0 ? d : 0) }')"
is "a TTL after the last refresh (and a second), 127.0.0.5 may no longer relay" "$(e2e_rcpt 127.0.0.5 29)" 550
is "no holder is left" "$(holders "$E2E_WRAPPER")" ""

# --- the session killed with SIGKILL ---
idle 127.0.0.6 143
waitfor "a holder for 127.0.0.6" 40 grep -q 'info: holding 127.0.0.6' "$T/imap.log"
s6=$(children "$tcp143"); h=$(holders "$E2E_WRAPPER")
ok "127.0.0.6 idles, held ($s6, holder $h)" test -n "$s6" -a -n "$h"
kill -9 "$s6"
waitfor "the client sees the connection close" 20 grep -q '^closed by the server$' "$T/idle.127.0.0.6"
ok "SIGKILL of the session: the client's connection closes at once (no copy of it is left open)" test $? = 0
waitfor "the holder ends" 20 gone "$h"; ok "SIGKILL of the session: the holder ends within a second" test $? = 0
m=$(mtime 127.0.0.6); sleep 1.2
is "and the stamp is no longer refreshed" "$(mtime 127.0.0.6)" "$m"
stop "$reaper143"; stop "$reaper144"

# --- Dovecot's own login, post-login script: the holder ends at once ---
echo "alice:{PLAIN}secret:$E2E_UID:$E2E_UID::$T/home/alice::" > "$T/dovecot.passwd"
cat > "$T/poprelay-login" <<EOS
#!/bin/sh
exec $BIN/pop3-wrapper -d $POPRELAY_DIR -t 2 -h 60 -s imap "\$@" 2>>$T/postlogin.log
EOS
chmod 755 "$T/poprelay-login"
: > "$T/postlogin.log"
chown dovecot "$POPRELAY_DIR" "$T/postlogin.log"
chmod 0700 "$POPRELAY_DIR"
e2e_buckets
cat > "$T/dovecot.conf" <<EOC
base_dir = $T/dovecot-run
state_dir = $T/dovecot-state
log_path = $T/dovecot.log
instance_name = poprelay-test
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
$(ldd "$BIN/pop3-wrapper" 2>/dev/null | grep -q libasan && echo "default_vsz_limit = 0")
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $T/dovecot.passwd
}
userdb {
  driver = passwd-file
  args = $T/dovecot.passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 145
  }
}
service imap {
  executable = imap imap-postlogin
}
service imap-postlogin {
  executable = script-login $T/poprelay-login
  user = dovecot
  unix_listener imap-postlogin {
  }
}
EOC
background "$REAPER" dovecot -F -c "$T/dovecot.conf"
dovecot=$lastpid
waitfor "Dovecot up" 200 e2e_listening 145
idle 127.0.0.8 145; ok "Dovecot: 127.0.0.8 logs in and idles" test $? = 0
waitfor "the holder is done" 40 grep -q 'info: released 127.0.0.8' "$T/postlogin.log"
ok "Dovecot post-login: the program pop3-wrapper ran ends at once, and the holder with it" \
  grep -q "info: released 127.0.0.8 after 0 s and [01] refresh[a-z]*: the session ended$" "$T/postlogin.log"
ok "the grant was made all the same" stampfile 127.0.0.8
leave 127.0.0.8
stop "$dovecot"

done_testing
