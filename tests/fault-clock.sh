# fault-clock: the clock moved backwards and forwards. libfaketime (Debian's
# faketime package) gives relay-open and relay-clean a clock that is off
# from the kernel's, which dates the stamps: exactly what a stamp written
# before the system clock jumped looks like to them afterwards. (A time
# namespace cannot do this: it leaves CLOCK_REALTIME alone.)
#
# What must hold: a stamp grants while its age is at least -POPRELAY_SKEW
# and less than POPRELAY_TTL, by whatever clock the programs read; one
# dated further ahead never grants and relay-clean removes it, so it can
# never come to be trusted later; so no grant outlives TTL + SKEW seconds
# of real time after its login, whichever way the clock jumps, including
# under the two services when the clock jumps while they run.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
printf ':allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
sleep 1.1

FT=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -z "$FT" ]; then
  fail "libfaketime is missing (Debian package faketime; package/deps installs it)"
  done_testing
  exit 0
fi
# the sanitizer runtime wants to be the first library loaded; here it
# shares the place with libfaketime
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS
# at OFFSET seconds from the real clock: cmd
at () {
  off=$1; shift
  env LD_PRELOAD="$FT" FAKETIME="$off" NO_FAKE_STAT=1 DONT_FAKE_MONOTONIC=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$@"
}
granted () { decision "$1" "$POPRELAY_CDB" | grep -q RELAYCLIENT; }
t at +3600 relay-open -v
expect_grep "relay-open runs with a clock an hour ahead" 0 "built"

# --- one stamp, the clock at many offsets: granted when -60 <= age < 600 ---
TTL=600
grant 192.0.2.1
for c in "-86400 no" "-3700 no" "-70 no" "-50 yes" "-30 yes" "+0 yes" "+590 yes" "+605 no" "+86400 no" "+31536000 no"; do
  off=${c% *}; want=${c#* }
  at "$off" relay-open -t $TTL >/dev/null 2>&1
  if granted 192.0.2.1; then got=yes; else got=no; fi
  is "clock at $off s: a stamp just written grants: $want" "$got" "$want"
done
t at -3700 relay-open -l -t $TTL
expect_grep "relay-open -l, clock an hour back: the stamp is dated in the future" 0 "^192.0.2.1 .* status=future$"
t at +605 relay-open -l -t $TTL
expect_grep "relay-open -l, clock 605 s ahead: the stamp has expired" 0 "^192.0.2.1 .* expires-in=0s status=expired$"

# --- the clock went back further than the skew: the stamp is removed, and
# stays gone when the clock comes right again ---
t at -3700 relay-clean -t $TTL
expect_grep "relay-clean, clock an hour back: removes the stamp as future-dated" 0 "removed 0 expired, 1 future-dated"
no "it is gone" stampfile 192.0.2.1
relay-open -t $TTL >/dev/null 2>&1
no "the clock right again: nothing comes back" granted 192.0.2.1
# within the skew: relay-clean keeps it
grant 192.0.2.2
t at -30 relay-clean -t $TTL
expect_grep "relay-clean, clock 30 s back (within the skew): keeps it" 0 "kept 1 live"
# a stamp dated ten years ahead (written while the clock was wrong) is
# never trusted, and relay-clean removes it at the first pass
grant 192.0.2.3
touch -d "@$(( $(date +%s) + 315360000 ))" "$(stampfile 192.0.2.3)"
relay-open -f -t $TTL >/dev/null 2>&1
no "a stamp ten years ahead grants nothing" granted 192.0.2.3
t relay-clean -t $TTL
expect_grep "and relay-clean removes it" 0 "1 future-dated"
# the clock forward: relay-clean removes what expired by it, nothing else
grant 192.0.2.4
t at +605 relay-clean -t $TTL
expect_grep "relay-clean, clock 605 s ahead: the stamps have expired" 0 "removed 2 expired"
no "gone" stampfile 192.0.2.4

# --- the two services, the clock jumping while they run ---
TTL=3 SKEW=2
echo "+0" > "$T/clock"
svc () { exec env LD_PRELOAD="$FT" FAKETIME_TIMESTAMP_FILE="$T/clock" FAKETIME_NO_CACHE=1 NO_FAKE_STAT=1 DONT_FAKE_MONOTONIC=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$@"; }
rm -rf "$POPRELAY_DIR"; mkdir "$POPRELAY_DIR"
background svc relay-open -w -t $TTL -k $SKEW 2>>"$T/svc.log"
so=$lastpid
background svc relay-clean -w -q -t $TTL -k $SKEW 2>>"$T/svc.log"
sc=$lastpid
waitfor "relay-open -w up" 200 relay_open_listening
# revoked A: real seconds from A's stamp until the cdb stops granting A
revoked () {
  m=$(stat -c %.9Y "$(stampfile "$1")")
  i=0
  while [ $i -lt 300 ] && granted "$1"; do sleep 0.05; i=$((i + 1)); done
  awk -v m="$m" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - m }'
}
within () { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

grant 192.0.2.10
waitfor "granted" 100 granted 192.0.2.10
l=$(revoked 192.0.2.10)
ok "services, clock steady: revoked ${l} s after the login (TTL $TTL)" within "$l" $((TTL - 1)) $((TTL + 1))

grant 192.0.2.11
waitfor "granted" 100 granted 192.0.2.11
echo "-$SKEW" > "$T/clock"
l=$(revoked 192.0.2.11)
ok "services, clock set back by the skew ($SKEW s) after a login: revoked ${l} s after it, at most TTL + skew" within "$l" $((TTL - 1)) $((TTL + SKEW + 1))

echo "-3600" > "$T/clock"
t env TCPREMOTEIP=192.0.2.12 pop3-wrapper true
sleep 0.5
no "services, clock an hour back: a stamp (dated an hour ahead of it) is not granted" granted 192.0.2.12
waitfor "relay-clean -w removed it" 200 sh -c "! ls '$POPRELAY_DIR'/*/192.0.2.12 >/dev/null 2>&1"
no "and relay-clean -w removes it within a TTL" stampfile 192.0.2.12

echo "+0" > "$T/clock"
grant 192.0.2.13
waitfor "granted" 100 granted 192.0.2.13
echo "+3600" > "$T/clock"
l=$(revoked 192.0.2.13)
ok "services, clock an hour ahead after a login: revoked ${l} s after it, within TTL + skew" within "$l" 0 $((TTL + SKEW + 1))
is "the services said nothing" "$(cat "$T/svc.log")" ""
for p in $so $sc; do kill $p; wait $p; echo $?; done > "$T/status"
pids=""
is "both services stop on SIGTERM, exit 0, clock jumped or not" "$(cat "$T/status" | tr '\n' ' ')" "0 0 "

done_testing
