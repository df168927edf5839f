# valgrind: the main paths of the three programs run clean under
# valgrind's memcheck: no invalid read or write, no use of an
# uninitialised value, no leak (definite, indirect or possible), each
# program with its usual exit status. Valgrind cannot run the sanitizer
# build: with BIN set to one, this checks the plain build in the source
# tree instead, and says so.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay

P=$BIN
if ldd "$BIN/relay-open" 2>/dev/null | grep -q libasan; then
  echo "valgrind.sh: $BIN is a sanitizer build: checking the plain build in $TOP"
  P=$TOP
fi
cat > "$T/rules" <<'EOR'
127.:allow,RELAYCLIENT=""
10.9.:deny
10.1.:allow,QMAILQUEUE="/bin/scan1"
:allow,QMAILQUEUE="/bin/scan",RBLSMTPD=""
EOR
VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --track-fds=no"

# vg DESC RC [VAR=value...] PROG ARGS...: PROG from the build, with
# those variables, under valgrind, exits RC and valgrind reports nothing
vg () {
  d=$1; want=$2; shift 2
  e=""
  while case $1 in *=*) true ;; *) false ;; esac; do e="$e $1"; shift; done
  p=$1; shift
  out=$(env $e $VG "$P/$p" "$@" 2>&1)
  rc=$?
  if [ "$rc" = 99 ] || printf '%s\n' "$out" | grep -q '^==[0-9]*=='; then
    fail "valgrind: $d" "valgrind reports errors (exit $rc):" "$out"
  elif [ "$rc" != "$want" ]; then
    fail "valgrind: $d" "wanted exit $want, got $rc:" "$out"
  else
    pass
  fi
}

# pop3-wrapper: a new grant, a refresh, settings it refuses, an IPv6 and
# a v4-mapped login; the session run (exec), and one that cannot be run,
# so that its exit and the leak check happen under valgrind
vg "pop3-wrapper: a new grant, the session runs" 0 TCPREMOTEIP=192.0.2.1 USER=alice pop3-wrapper true
vg "pop3-wrapper: a refresh" 0 TCPREMOTEIP=192.0.2.1 USER=alice pop3-wrapper -s pop3 true
vg "pop3-wrapper: IPv6" 0 PROTO=TCP6 TCP6REMOTEIP=2001:db8::7 USER=bob pop3-wrapper true
vg "pop3-wrapper: v4-mapped" 0 TCPREMOTEIP=::ffff:10.1.2.3 USER=carol pop3-wrapper true
vg "pop3-wrapper: a denied address (stamp written, relay-open refuses it)" 0 TCPREMOTEIP=10.9.0.1 USER=dave pop3-wrapper true
vg "pop3-wrapper: bad settings, the session still runs" 0 POPRELAY_TTL=x POPRELAY_NEVER=oops TCPREMOTEIP=192.0.2.2 pop3-wrapper -k 99999 true
vg "pop3-wrapper: never granted" 0 TCPREMOTEIP=224.0.0.1 pop3-wrapper -n 10.0.0.0/8 true
vg "pop3-wrapper: the session cannot be found (exit 127, leak check)" 127 TCPREMOTEIP=192.0.2.3 USER=erin pop3-wrapper "$T/no-such-session"
vg "pop3-wrapper: usage error" 100 pop3-wrapper
is "pop3-wrapper under valgrind wrote its stamps (not for bad settings or a never-granted address)" "$(find "$POPRELAY_DIR" -type f ! -name '.*' | wc -l | tr -d ' ')" 5
# the holder (pop3-wrapper -h) is a fork of pop3-wrapper, under valgrind
# too: its report goes to its descriptor 2, which it keeps here (a file,
# not the session's standard output), so the leak check of its exit is
# read there. Valgrind 3.19 does not know pidfd_open (it says so in a
# "--PID-- WARNING" line): under it the holder takes its /proc way; the
# pidfd way runs under the sanitizers. vgh DESC WHY ARGS...: pop3-wrapper ARGS, whose holder ends
# saying WHY
vgh () {
  d=$1; why=$2; shift 2
  rm -f "$T/vgh.err"
  env TCPREMOTEIP=192.0.2.9 USER=holly $VG "$P/pop3-wrapper" "$@" > /dev/null 2> "$T/vgh.err"
  rc=$?
  i=0; while [ $i -lt 200 ] && ! grep -q 'info: released 192.0.2.9' "$T/vgh.err"; do sleep 0.05; i=$((i + 1)); done
  sleep 0.5   # the holder's own report follows its last line
  out=$(cat "$T/vgh.err")
  if [ "$rc" = 99 ] || printf '%s\n' "$out" | grep -q '^==[0-9]*=='; then
    fail "valgrind: $d" "valgrind reports errors (exit $rc):" "$out"
  elif [ "$rc" != 0 ] || ! printf '%s\n' "$out" | grep -q "info: released 192.0.2.9 after [0-9]* s and [0-9]* refresh[a-z]*: $why"; then
    fail "valgrind: $d" "wanted exit 0 and the holder's release, got $rc:" "$out"
  else
    pass
  fi
}
vgh "pop3-wrapper -h: the holder refreshes, and ends with the session" "the session ended" -t 2 -h 60 sleep 1.5
vgh "pop3-wrapper -h: the holder ends at POPRELAY_HOLD" "POPRELAY_HOLD is reached" -t 2 -h 1 sleep 2

# relay-open: a build with grants, a deny, junk; a listing; a bad rules
# line; ucspi-tcp-ipv6 keys; a scan from the cache
b=$(dirname "$(stampfile 192.0.2.1 || echo "$T/none/x")")
echo junk > "$b/notes"
vg "relay-open: a build" 0 relay-open -e ',RBLSMTPD="-x"' -n 192.0.2.3
is "relay-open under valgrind granted" "$(decision 192.0.2.1 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
sleep 1.1
vg "relay-open: a build from the cache" 0 relay-open -v
vg "relay-open: ucspi-tcp-ipv6 keys" 0 relay-open -f -T ucspi-tcp-ipv6
vg "relay-open -l" 0 relay-open -l
cp "$T/rules" "$T/rules.good"
printf '1.2.3.4:allowx\n' >> "$T/rules"
vg "relay-open: a bad rules line" 100 relay-open
cp "$T/rules.good" "$T/rules"
vg "relay-open: a missing rules file" 111 relay-open -r "$T/missing"
vg "relay-open: bad option" 100 relay-open -t 0

# vgstop PID LOG DESC: stop a service run under valgrind with SIGTERM;
# it must exit 0 with nothing from valgrind in its log
vgstop () {
  kill "$1"; wait "$1"; rc=$?
  pids=$(printf '%s\n' $pids | grep -vx "$1" | tr '\n' ' ')
  if [ "$rc" != 0 ] || grep -q '^==[0-9]*==' "$2"; then
    fail "$3" "exit $rc:" "$(cat "$2")"
  else
    pass
  fi
}

# relay-open -w: builds at start, at each poke, stops on SIGTERM; a
# leak per rebuild would show at its exit
rm -f "$T/vgsvc.log"
$VG "$P/relay-open" -v -w > "$T/vgsvc.log" 2>&1 &
svc=$!; pids="$pids $svc"
waitfor "service up" 400 grep -q built "$T/vgsvc.log"
for a in 192.0.2.20 192.0.2.21 192.0.2.22; do
  grant $a
  waitfor "rebuilt for $a" 400 sh -c "TCPREMOTEIP=$a tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
done
vgstop "$svc" "$T/vgsvc.log" "valgrind: relay-open -w, four builds and SIGTERM"
is "relay-open -w under valgrind built at start and for each login" "$(grep -c built "$T/vgsvc.log")" 4

# relay-clean: a pass removing expired and future stamps and an old temp
# file, a dry run, the chained form, the service
age 192.0.2.3 100000
age 192.0.2.20 -100000
echo x > "$b/.tmp.1.old"; touch -d '@1000000000' "$b/.tmp.1.old"
vg "relay-clean -n" 0 relay-clean -n
vg "relay-clean: a pass" 0 relay-clean
no "relay-clean under valgrind removed the expired stamp" stampfile 192.0.2.3
vg "relay-clean chained (valgrind ends at the exec)" 0 relay-clean true
vg "relay-clean: bad setting" 100 POPRELAY_GRACE=0 relay-clean
vg "relay-clean: missing relay directory" 111 relay-clean -d "$T/missing"
age 192.0.2.21 100000
$VG "$P/relay-clean" -w -t 1800 > "$T/vgclean.log" 2>&1 &
cl=$!; pids="$pids $cl"
waitfor "relay-clean -w pass" 400 grep -q 'removed 1 expired' "$T/vgclean.log"
vgstop "$cl" "$T/vgclean.log" "valgrind: relay-clean -w, a pass and SIGTERM"

done_testing
