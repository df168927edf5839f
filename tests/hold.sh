# hold: pop3-wrapper -h, the holder on its own. The session gets exactly
# what it gets without -h (descriptors, variables, signals, no pending
# SIGCHLD, its exit status); the holder refreshes every TTL/3 while the
# session runs and stops at the session's end, at POPRELAY_HOLD, when
# the stamp is removed, when it was stopped past the TTL; killed, it
# leaves the session alone; without pidfd_open (the /proc fallback) it
# outlives the session by one interval at most and never refreshes after
# it; with the client's socket on descriptor 2 (inetd) it keeps none of
# the connection and logs to syslog. Every run is under tests/unit/reaper,
# which returns once the holder has been reaped.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
unset PROTO TCPREMOTEIP SSLREMOTEIP IP REMOTE_HOST TCPLOCALIP TCPLOCALPORT LOCAL_IP USER SERVICE AUTHORIZED POPRELAY_TTL POPRELAY_HOLD 2>/dev/null
REAPER=$BIN/tests/unit/reaper
mkdir "$T/pw"
cp "$BIN/pop3-wrapper" "$T/pw/pop3-wrapper"
PW=$T/pw/pop3-wrapper

# hw ADDR ARGS...: a login from ADDR through the test's pop3-wrapper with
# ARGS, under the reaper
hw () {
  a=$1; shift
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP="$a" USER=holly "$REAPER" "$PW" "$@"
}
# th cmd args...: t, with standard output and standard error in files of
# their own (a holder keeps quiet when its descriptor 2 is a copy of 0
# or 1: see pop3-wrapper(8)); $out is the one, then the other
th () {
  "$@" > "$T/th.out" 2> "$T/th.err"
  rc=$?
  out=$(cat "$T/th.out" "$T/th.err")
}
holderpid () { s=$(stampfile "$1") && sed -n 's/^holder \([0-9]*\):[0-9]*$/\1/p' "$s" | grep .; }
mtime_ns () { stat -c %.9Y "$(stampfile "$1")" 2>/dev/null | tr -d .; }
ms () { date +%s%N | cut -c1-13; }
running () { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# --- the session sees what it sees without -h ---
# each view is the session itself, so that no shell changes what it got
# same VIEW...: the session VIEW, without -h and with; $a and $b
same () {
  a=$(hw 192.0.2.1 -q -t 30 "$@" 2>/dev/null | sed 's/\[[0-9]*\]//; s/ [A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]* / /; s|/proc/[0-9]*/|/proc/PID/|')
  b=$(hw 192.0.2.1 -q -t 30 -h 60 "$@" 2>/dev/null | sed 's/\[[0-9]*\]//; s/ [A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]* / /; s|/proc/[0-9]*/|/proc/PID/|')
}
same perl -e 'select(undef, undef, undef, 0.3); exec @ARGV' ls -l /proc/self/fd
is "-h: the session has the descriptors it has without" "$b" "$a"
ok "(and that was a held grant)" grep -q '^holder ' "$(stampfile 192.0.2.1)"
same env
is "-h: the session has the variables it has without" "$b" "$a"
same grep -e '^Sig[PBIC]' -e '^ShdPnd' /proc/self/status   # (SigQ counts the whole uid's)
is "-h: the session has the signal mask and dispositions it has without" "$b" "$a"
blockchld='use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGCHLD)) or die; exec @ARGV or die'
blocked () {
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.1 \
    perl -e "$blockchld" "$REAPER" "$PW" -q -t 30 "$@" grep -e '^Sig[PBIC]' -e '^ShdPnd' /proc/self/status 2>/dev/null
}
a=$(blocked); b=$(blocked -h 60)
is "-h with SIGCHLD blocked: no SIGCHLD left pending for a child the session never had" "$b" "$a"
is "(SIGCHLD was blocked: bit 17 of the mask)" "$(printf '%s\n' "$a" | grep -c '^SigBlk:.*[13579bdf]....$')" 1
th hw 192.0.2.1 -q -t 30 -h 60 sh -c 'exit 7'
expect "-h: the session's exit status is pop3-wrapper's" 7 ""

# --- while the session runs, and no longer ---
s=$(ms)
th hw 192.0.2.2 -t 3 -h 60 sh -c 'sleep 2.5'
e=$(ms)
expect_grep "the holder says what it holds, and for how long at most" 0 "^pop3-wrapper: info: holding 192.0.2.2 while the session, pid [0-9]*, runs, 60 s at most$"
expect_grep "it refreshes every TTL/3 (1 s) and ends with the session" 0 "^pop3-wrapper: info: released 192.0.2.2 after 2 s and [23] refreshes: the session ended$"
ok "it was reaped within half a second of the session's end ($((e - s)) ms)" test $((e - s)) -lt 3000
is "the stamp records the login's time, and its holder" "$(grep -c -e "^time $(( s / 1000 ))" -e "^time $(( s / 1000 + 1 ))" "$(stampfile 192.0.2.2)")|$(grep -c '^holder [0-9]*:[0-9]*$' "$(stampfile 192.0.2.2)")" "1|1"
m=$(mtime_ns 192.0.2.2)
ok "the last refresh was in the session's last second" test $(( m / 1000000 )) -ge $(( s + 1500 ))
t relay-open -t 3 -l
expect_grep "relay-open -l: the hold has ended" 0 "^192.0.2.2 .* status=granted hold=ended$"

# four at once: the cap, the stamp removed, the holder stopped past the
# TTL, the holder killed
hw 192.0.2.41 -t 2 -h 3 sh -c 'sleep 5.5' > /dev/null 2> "$T/h41" &
p41=$!
hw 192.0.2.51 -t 3 -h 60 sh -c 'sleep 3' > /dev/null 2> "$T/h51" &
p51=$!
hw 192.0.2.61 -t 2 -h 60 sh -c 'sleep 5' > /dev/null 2> "$T/h61" &
p61=$!
hw 192.0.2.71 -t 3 -h 60 sh -c 'sleep 3; exit 5' > /dev/null 2> "$T/h71" &
p71=$!
pids="$pids $p41 $p51 $p61 $p71"
login=$(ms)
for a in 41 51 61 71; do waitfor "holder of 192.0.2.$a" 100 holderpid 192.0.2.$a; done
h51=$(holderpid 192.0.2.51); h61=$(holderpid 192.0.2.61); h71=$(holderpid 192.0.2.71)
ok "four holders run ($h51 $h61 $h71...)" test -n "$h51" -a -n "$h61" -a -n "$h71"
rm "$(stampfile 192.0.2.51)"
kill -STOP "$h61"; m61=$(mtime_ns 192.0.2.61)
kill -9 "$h71"; m71=$(mtime_ns 192.0.2.71)
sleep 2.3
kill -CONT "$h61"
wait $p51; wait $p71; rc71=$?
ok "the stamp removed: the holder stops at its next refresh" grep -q "released 192.0.2.51 after [0-9]* s and [0-9]* refresh[a-z]*: its stamp was removed or is no longer live$" "$T/h51"
no "and does not make it again" stampfile 192.0.2.51
is "the holder killed: the session runs on and exits with its status" "$rc71" 5
is "the holder killed: the stamp is no longer refreshed" "$(mtime_ns 192.0.2.71)" "$m71"
wait $p61
ok "stopped past the TTL (2 s): the holder stops at once when continued, the stamp being expired" \
  grep -q "released 192.0.2.61 after [0-9]* s and [0-9]* refresh[a-z]*: its stamp was removed or is no longer live$" "$T/h61"
is "and leaves the expired stamp as it was" "$(mtime_ns 192.0.2.61)" "$m61"
sleep "$(awk -v l="$login" -v n="$(ms)" 'BEGIN { d = (l + 5300 - n) / 1000; print (d > 0 ? d : 0) }')"
t relay-open -t 2 -l
expect_grep "POPRELAY_HOLD 3, TTL 2: 5.3 s after the login, the session still running, the grant has expired" 0 "^192.0.2.41 .* status=expired hold=ended$"
wait $p41
ok "the holder said why it let go" grep -q "released 192.0.2.41 after 3 s and [0-9]* refreshes: POPRELAY_HOLD is reached$" "$T/h41"
m=$(mtime_ns 192.0.2.41)
ok "no refresh at or after POPRELAY_HOLD seconds" test $(( m / 1000000 )) -lt $(( login + 3000 ))
pids=$(printf '%s\n' $pids | grep -vx -e $p41 -e $p51 -e $p61 -e $p71 | tr '\n' ' ')

# --- nothing to hold ---
th hw 224.0.0.1 -t 3 -h 60 true
expect "an address never granted: no holder" 0 "pop3-wrapper: warning: not granting relaying to 224.0.0.1: it is a multicast address"
th env POPRELAY_TTL=x "$REAPER" "$PW" -h 60 true
expect_grep "a bad setting: no grant, no holder" 0 "^pop3-wrapper: warning: not granting relaying: bad POPRELAY_TTL"
is "(and no holding line)" "$(printf '%s\n' "$out" | grep -c holding)" 0
th hw 192.0.2.3 -t 3 -h 0 true
is "-h 0: no holder" "$(printf '%s\n' "$out" | grep -c holding)|$(grep -c '^holder' "$(stampfile 192.0.2.3)")" "0|0"
th hw 192.0.2.4 -q -t 3 -h 60 sh -c 'sleep 0.5'
expect "-q: no line from the holder either" 0 ""
ok "-q: the holder ran" grep -q '^holder ' "$(stampfile 192.0.2.4)"
s=$(ms)
th hw 192.0.2.5 -t 3 -h 60 "$T/no-such-session"
e=$(ms)
expect_grep "the session cannot be run: 127, and the holder ends at once" 127 "released 192.0.2.5 after 0 s and [01] refresh[a-z]*: the session ended$"
ok "(within half a second: $((e - s)) ms)" test $((e - s)) -lt 500

# --- without pidfd_open: /proc, at each refresh ---
# strace makes pidfd_open fail as on a kernel before 5.3, and waits for
# every process of the tree, the holder too
s=$(ms)
th strace -f -qq -o /dev/null -e trace=pidfd_open -e inject=pidfd_open:error=ENOSYS \
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.6 "$PW" -t 3 -h 10 sh -c 'sleep 1.5; date +%s%N > end'
e=$(ms)
expect_grep "no pidfd_open: the holder refreshes, and sees the session's end" 0 "released 192.0.2.6 after 2 s and 2 refreshes: the session ended$"
ok "it outlived the session by one interval (1 s) at most ($((e - s)) ms in all)" test $((e - s)) -lt 2800
ok "and refreshed nothing after it" test "$(mtime_ns 192.0.2.6)" -le "$(cat end)"
strace -f -qq -o /dev/null -e trace=pidfd_open -e inject=pidfd_open:error=ENOSYS \
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.7 "$PW" -t 3 -h 10 sh -c 'echo $$ > session; exec sleep 30' > /dev/null 2> "$T/h7" &
st=$!; pids="$pids $st"
waitfor "held" 100 holderpid 192.0.2.7
sleep 0.3
kill -9 "$(cat session)"; s=$(ms)
wait $st 2>/dev/null; e=$(ms)   # (strace dies of the session's SIGKILL)
pids=$(printf '%s\n' $pids | grep -vx $st | tr '\n' ' ')
ok "no pidfd_open, the session killed with SIGKILL: the holder ends within one interval ($((e - s)) ms)" test $((e - s)) -lt 1300
ok "saying so" grep -q "released 192.0.2.7 after [0-9]* s and [0-9]* refresh[a-z]*: the session ended$" "$T/h7"

# --- the client on descriptor 2 too (inetd): none of it kept, syslog ---
background "$BIN/tests/unit/logsink" "$T/log.sock" 20 > "$T/syslog"
logsink=$lastpid
waitfor "logsink up" 100 test -S "$T/log.sock"
mkdir "$T/olddev"
background "$REAPER" unshare -m sh -c '
  mount --rbind /dev "$0/olddev" && mount -t tmpfs -o mode=755 tmpfs /dev || exit 111
  for n in null zero full random urandom; do touch "/dev/$n" && mount --bind "$0/olddev/$n" "/dev/$n" || exit 111; done
  touch /dev/log && mount --bind "$0/log.sock" /dev/log || exit 111
  exec "$@"' "$T" tcpserver -H -R -l test 127.0.0.1 2610 sh -c 'exec 2>&1; exec "$0" "$@"' \
  "$PW" -t 3 -h 60 sh -c 'read x; echo bye' 2>>"$T/servers.log"
srv=$lastpid
waitfor "tcpserver up" 100 e2e_listening 2610
background tcpclient -H -R -l test -i 127.0.0.9 127.0.0.1 2610 sh -c 'i=0; while [ ! -e go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; echo quit >&7; cat <&6' > "$T/client"
client=$lastpid
waitfor "held" 100 holderpid 127.0.0.9
h=$(holderpid 127.0.0.9)
is "fd 2 the client's socket: the holder's 0, 1 and 2 are /dev/null" "$(stat -L -c %t:%T "/proc/$h/fd/0" "/proc/$h/fd/1" "/proc/$h/fd/2" | tr '\n' ' ')" "1:3 1:3 1:3 "
# the session's end of the connection, and the sockets of the holder
# that are not Unix ones (syslog's is)
csock=$(readlink "/proc/$(cat /proc/"$srv"/task/*/children | tr ' ' '\n' | while read c; do cat /proc/"$c"/task/*/children; done | tr ' ' '\n' | grep . | head -1)/fd/0")
inet=$(for f in /proc/"$h"/fd/*; do l=$(readlink "$f"); case $l in socket:*) n=${l#socket:[}; n=${n%]}; awk -v n="$n" '$7 == n { f = 1 } END { exit !f }' /proc/net/unix || echo "$l" ;; esac; done)
is "and no socket but syslog's (the session's is $csock)" "$inet" ""

touch go
wait $client
pids=$(printf '%s\n' $pids | grep -vx $client | tr '\n' ' ')
is "the client reads the session's answer and nothing of the holder's" "$(tr -d '\r' < "$T/client")" "bye"
waitfor "the holder ends" 40 sh -c "! test -e /proc/$h"
ok "the holder ends with the session" test $? = 0
waitfor "the holder's lines in syslog" 100 grep -q "released 127.0.0.9" "$T/syslog"
ok "its lines are in syslog, facility mail" grep -q "^<22>.* pop3-wrapper\[$h\]: info: holding 127.0.0.9 while" "$T/syslog"
ok "both of them" grep -q "^<22>.* pop3-wrapper\[$h\]: info: released 127.0.0.9 after " "$T/syslog"
stop $srv
stop $logsink

done_testing
