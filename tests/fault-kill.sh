# fault-kill: every program killed with SIGKILL at random moments of its
# work. relay-open, one-shot or service: rules.cdb is always the old or the
# new complete file, the lock is never left held, and the temp files (the
# cdb's, the scan cache's) go at a later run. pop3-wrapper: a stamp is
# whole or absent, never part of one; its temp files go with relay-clean
# after the grace period. relay-clean: a live stamp is never removed, and
# the next pass finishes the job. pop3-wrapper -h: a holder killed while
# it refreshes leaves a whole stamp and no lock held; a session killed at
# any moment leaves no holder behind. The moments are drawn at random over
# each program's measured running time; the seed is printed.
# FAULT_KILLS (default 25) is how many kills the one-shot relay-open gets.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
sleep 1.1
SEED=${KILL_SEED:-$(date +%s)}
echo "fault-kill: seed $SEED"
# delays N MAX: N random delays in seconds, from 0 to MAX
delays () { awk -v n="$1" -v max="$2" -v seed="$SEED" 'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%.4f\n", rand() * max }'; }
ms () { date +%s%N | cut -c1-13; }
timed () { s=$(ms); "$@" >/dev/null 2>&1; e=$(ms); echo $((e - s)); }

# --- relay-open, one-shot, 20000 grants ---
relay-open >/dev/null 2>&1
cp "$POPRELAY_CDB" "$T/old.cdb"
awk 'BEGIN { for (i = 0; i < 20000; i++) print "10." int(i / 65536) "." int(i / 256) % 256 "." i % 256 }' > "$T/addrs"
ok "mkstamps writes 20000 stamps" "$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" < "$T/addrs"
sleep 1.1
took=$(timed relay-open -f)
cp "$POPRELAY_CDB" "$T/new.cdb"
echo "fault-kill: a build of 20000 grants takes $took ms"
bad=0; killed=0; n=0
for d in $(delays "${FAULT_KILLS:-25}" "$(awk -v t="$took" 'BEGIN { printf "%.3f", t * 1.3 / 1000 }')"); do
  cp "$T/old.cdb" "$POPRELAY_CDB"
  relay-open -f >/dev/null 2>&1 & p=$!
  sleep "$d"
  kill -9 $p 2>/dev/null && killed=$((killed + 1))
  wait $p 2>/dev/null
  n=$((n + 1))
  cmp -s "$POPRELAY_CDB" "$T/old.cdb" || cmp -s "$POPRELAY_CDB" "$T/new.cdb" || { bad=$((bad + 1)); cp "$POPRELAY_CDB" "$T/bad.$bad.cdb"; }
done
is "relay-open killed at $n random moments ($killed while it ran): rules.cdb always the old or the new complete file" "$bad" 0
ok "some kills landed while it ran" test "$killed" -gt 5
t timeout 20 relay-open
expect "after the kills, the lock is free and a build succeeds" 0 ""
ok "and writes the new file" cmp "$POPRELAY_CDB" "$T/new.cdb"
is "the cdb's temp file is gone" "$(ls "$T" | grep -c 'relay-open.tmp')" 0
# scan cache temp files a killed run left (and one as it would leave, in
# case no kill landed while a cache file was written): removed once old
echo x > "$POPRELAY_CACHE/scan/00.tmp.4194304"
ls "$POPRELAY_CACHE/scan" | grep '\.tmp\.' > "$T/cachetmp"
for f in $(cat "$T/cachetmp"); do touch -d '@1000000000' "$POPRELAY_CACHE/scan/$f"; done
relay-open >/dev/null 2>&1
is "scan cache temp files of killed runs ($(wc -l < "$T/cachetmp" | tr -d ' ')) are removed once old" "$(ls "$POPRELAY_CACHE/scan" | grep -c '\.tmp\.')" 0

# --- relay-open -w killed during its rebuilds ---
background relay-open -w 2>>"$T/svc.log"
svc=$lastpid
waitfor "service up" 400 relay_open_listening
bad=0; k=0
for d in $(delays 8 "$(awk -v t="$took" 'BEGIN { printf "%.3f", t * 1.3 / 1000 }')"); do
  cp "$POPRELAY_CDB" "$T/before.cdb"
  k=$((k + 1))
  a=10.200.0.$k
  grant $a
  sleep "$d"
  kill -9 $svc; wait $svc 2>/dev/null
  pids=$(printf '%s\n' $pids | grep -vx "$svc" | tr '\n' ' ')
  if ! cmp -s "$POPRELAY_CDB" "$T/before.cdb"; then
    cdb -s "$POPRELAY_CDB" >/dev/null 2>&1 || bad=$((bad + 1))
    decision $a "$POPRELAY_CDB" | grep -q RELAYCLIENT || bad=$((bad + 1))
  fi
  background relay-open -w 2>>"$T/svc.log"
  svc=$lastpid
  waitfor "service up again" 400 sh -c "TCPREMOTEIP=$a tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
done
is "relay-open -w killed in $k rebuilds: the cdb was the one before or a whole new one with the grant" "$bad" 0
miss=0; for i in $(seq 1 $k); do decision 10.200.0.$i "$POPRELAY_CDB" | grep -q RELAYCLIENT || miss=$((miss + 1)); done
is "restarted, the service has every grant made around the kills" "$miss" 0
stop $svc
is "no temp file left" "$(ls "$T" | grep -c 'relay-open.tmp')" 0

# --- pop3-wrapper killed while it writes ---
# (each part in a relay directory of its own: nothing of the part before
# can touch it)
POPRELAY_DIR=$T/relay-wrapper
mkdir "$POPRELAY_DIR"
took=$(timed env TCPREMOTEIP=192.0.2.1 USER=k pop3-wrapper true)
partial=0; n=0
for d in $(delays 40 "$(awk -v t="$took" 'BEGIN { printf "%.4f", t * 1.5 / 1000 }')"); do
  n=$((n + 1))
  a=192.0.2.$((n % 20 + 1))
  env TCPREMOTEIP=$a USER=k$n pop3-wrapper true >/dev/null 2>&1 & p=$!
  sleep "$d"
  kill -9 $p 2>/dev/null
  wait $p 2>/dev/null
done
for s in $(find "$POPRELAY_DIR" -type f ! -name '.*'); do
  c=$(cat "$s")
  case $c in "user k"*"
via TCPREMOTEIP") ;; *) partial=$((partial + 1)) ;; esac
done
is "pop3-wrapper killed at $n random moments: every stamp is whole" "$partial" 0
temps=$(find "$POPRELAY_DIR" -name '.tmp.*' | wc -l | tr -d ' ')
echo "fault-kill: the kills left $temps stamp temp files"
t relay-clean -q -g 1
sleep 1.1
t relay-clean -q -g 1
is "relay-clean removes them once older than the grace period" "$(find "$POPRELAY_DIR" -name '.tmp.*' | wc -l | tr -d ' ')" 0
t env TCPREMOTEIP=192.0.2.1 USER=after pop3-wrapper true
expect_grep "no bucket lock is left held: the next login goes through" 0 "192.0.2.1 \\(to\\|for\\) after"
is "without waiting for a lock" "$(printf '%s\n' "$out" | grep -c 'unable to lock')" 0

# --- pop3-wrapper -h: the holder killed, the session killed ---
# TTL 1: a holder rewrites its stamp every third of a second, so that
# kills land during its writes too. Each login runs under
# tests/unit/reaper, which reaps its holder and returns once it is gone.
# The holders of one round run at once, each killed at its own moment.
rm -rf "$POPRELAY_DIR"; mkdir "$POPRELAY_DIR"
mkdir -p "$T/pw"; cp "$BIN/pop3-wrapper" "$T/pw/pop3-wrapper"
PW=$T/pw/pop3-wrapper; REAPER=$BIN/tests/unit/reaper
holderof () { sed -n 's/^holder \([0-9]*\):[0-9]*$/\1/p' "$(stampfile "$1")" 2>/dev/null | grep .; }
whole () {
  bad=0
  for s in $(find "$POPRELAY_DIR" -type f ! -name '.*'); do
    case $(cat "$s") in "user $1"*"
via TCPREMOTEIP"|"user $1"*"
via TCPREMOTEIP
holder "[0-9]*:[0-9]*) ;; *) bad=$((bad + 1)) ;; esac
  done
  echo $bad
}
# (waitfor sets d, n and i: these loops use other names)
hn=0
for hd in $(delays 12 1); do
  hn=$((hn + 1))
  env TCPREMOTEIP=192.0.2.$((100 + hn)) USER=h$hn "$REAPER" "$PW" -q -t 1 -h 30 sleep 1.5 >/dev/null 2>&1 &
  eval "hd$hn=$hd"
done
for k in $(seq 1 $hn); do waitfor "holder $k" 100 holderof 192.0.2.$((100 + k)); done
: > "$T/landed"
for k in $(seq 1 $hn); do
  eval "hd=\$hd$k"
  ( sleep "$hd"; kill -9 "$(holderof 192.0.2.$((100 + k)))" 2>/dev/null && echo x >> "$T/landed" ) &
done
wait
landed=$(wc -l < "$T/landed" | tr -d ' ')
echo "fault-kill: $landed of $hn holder kills landed while the holder ran"
is "holders killed at $hn random moments of their refreshes ($landed while they ran): every stamp is whole" "$(whole h)" 0
is "no holder is left" "$(holders "$PW")" ""
t env TCPREMOTEIP=192.0.2.101 USER=after pop3-wrapper true
expect_grep "no bucket lock is left held by a killed holder: the next login goes through" 0 "192.0.2.101 \\(to\\|for\\) after"
is "without waiting for a lock" "$(printf '%s\n' "$out" | grep -c 'unable to lock')" 0
sleep 1.1
t relay-clean -q -t 1 -g 1
is "the temp files of killed holders go with relay-clean" "$(find "$POPRELAY_DIR" -name '.tmp.*' | wc -l | tr -d ' ')" 0

# the session (pop3-wrapper's own process, then the program it runs)
# killed at random: during the login, around the fork, or once the
# session runs; its holder, if it was started, ends at once (pidfd)
took=$(timed "$REAPER" env TCPREMOTEIP=192.0.2.99 "$PW" -q -t 1 -h 30 true)
rm -rf "$POPRELAY_DIR"/*/*
hn=0
for hd in $(delays 8 "$(awk -v t="$took" 'BEGIN { printf "%.4f", t * 1.5 / 1000 }')") $(delays 6 0.6); do
  hn=$((hn + 1))
  rm -f "$T/spid.$hn"
  env REAPER_PID="$T/spid.$hn" TCPREMOTEIP=192.0.2.$((150 + hn)) USER=k$hn "$REAPER" "$PW" -q -t 1 -h 30 sleep 3 >/dev/null 2>&1 &
  ( k=0; while [ ! -s "$T/spid.$hn" ] && [ $k -lt 100 ]; do sleep 0.01; k=$((k + 1)); done
    sleep "$hd"; kill -9 "$(cat "$T/spid.$hn")" ) 2>/dev/null &
done
s=$(ms)
wait
e=$(ms)
ok "sessions killed at $hn random moments: every holder ended at once, the last reaped $((e - s)) ms after the first kill" test $((e - s)) -lt 1500
is "no holder is left" "$(holders "$PW")" ""
is "every stamp is whole" "$(whole k)" 0
t env TCPREMOTEIP=192.0.2.151 USER=after pop3-wrapper true
expect_grep "and the next login goes through without a lock held" 0 "192.0.2.151 \\(to\\|for\\) after"

# --- relay-clean killed in the middle of a pass ---
POPRELAY_DIR=$T/relay-clean POPRELAY_CACHE=$T/cache-clean
mkdir "$POPRELAY_DIR"
awk 'BEGIN { for (i = 0; i < 6000; i++) print "10.50." int(i / 250) "." i % 250 + 1 }' | "$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" 100000
awk 'BEGIN { for (i = 0; i < 500; i++) print "10.60." int(i / 250) "." i % 250 + 1 }' > "$T/live"
"$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" < "$T/live"
cp -a "$POPRELAY_DIR" "$T/relay.copy"
took=$(timed relay-clean -q -c "$T/c0")
POPRELAY_DIR=$T/relay-clean2
cp -a "$T/relay.copy" "$POPRELAY_DIR"
echo "fault-kill: a pass removing 6000 stamps takes $took ms"
lost=0; n=0; killed=0
for d in $(delays 12 "$(awk -v t="$took" 'BEGIN { printf "%.3f", t * 1.2 / 1000 }')"); do
  n=$((n + 1))
  relay-clean -q >/dev/null 2>&1 & p=$!
  sleep "$d"
  kill -9 $p 2>/dev/null && killed=$((killed + 1))
  wait $p 2>/dev/null
  lost=$((lost + 500 - $(find "$POPRELAY_DIR" -type f -name '10.60.*' | wc -l)))
done
is "relay-clean killed at $n random moments ($killed while it ran): no live stamp removed" "$lost" 0
t relay-clean -q
expect "the next pass completes" 0 ""
is "and only the live stamps are left" "$(find "$POPRELAY_DIR" -type f ! -name '.*' | wc -l | tr -d ' ')" 500

# --- a bucket being made, killed at each of its steps ---
# (strace kills the process at the Nth call of one system call: no timing
# involved). A bucket is made under a temp name, given its owner and mode,
# and renamed into place: a kill at any step leaves a temp directory and no
# bucket, never a bucket with the wrong mode that locks others out.
POPRELAY_DIR=$T/relay-made; POPRELAY_CACHE=$T/cache-made
mkdir "$POPRELAY_DIR"; chgrp 4242 "$POPRELAY_DIR"; chmod 2770 "$POPRELAY_DIR"
for call in mkdirat fchmod renameat2; do
  strace -f -o /dev/null -e trace=$call -e inject=$call:signal=SIGKILL:when=1 env TCPREMOTEIP=127.0.0.5 pop3-wrapper -q true 2>/dev/null
  is "made as the relay directory's owner, killed at $call: no bucket with another mode or owner" \
    "$(find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '[0-9a-f][0-9a-f]' ! -perm 2770 | wc -l | tr -d ' ')" 0
  env TCPREMOTEIP=127.0.0.5 pop3-wrapper -q true 2>/dev/null
  ok "killed at $call: the next login grants" stampfile 127.0.0.5
  rm -f "$(stampfile 127.0.0.5)"
  rmdir "$(dirname "$(stampfile 127.0.0.5 2>/dev/null || echo "$POPRELAY_DIR/x/x")")" 2>/dev/null
  rm -rf "$POPRELAY_DIR"/[0-9a-f][0-9a-f]
done
for call in mkdirat fchmod renameat2; do
  strace -f -o /dev/null -e trace=$call -e inject=$call:signal=SIGKILL:when=2 relay-open >/dev/null 2>&1
  is "relay-open killed at its second $call: no bucket with another mode or owner" \
    "$(find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '[0-9a-f][0-9a-f]' \( ! -perm 2770 -o ! -group 4242 \) | wc -l | tr -d ' ')" 0
done
left=$(find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '.tmp.d.*' | wc -l | tr -d ' ')
ok "the kills left temp directories at the top ($left)" test "$left" -gt 0
relay-open >/dev/null 2>&1
is "the next build makes every bucket" "$(find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '[0-9a-f][0-9a-f]' -perm 2770 -group 4242 | wc -l | tr -d ' ')" 256
find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '.tmp.d.*' -exec touch -d '-1 hour' {} +
t relay-clean -g 600
expect_grep "relay-clean removes the temp directories once past the grace period" 0 "removed 0 expired, 0 future-dated, $left abandoned temp"
is "none is left" "$(find "$POPRELAY_DIR" -mindepth 1 -maxdepth 1 -name '.tmp.*' | wc -l | tr -d ' ')" 0

done_testing
