# relay-clean: expiry at the boundary, refreshes while it cleans, temp
# files, junk, a bad directory, dry runs, and the supervised mode revoking
# a grant within about a second of its expiry.

. "$TOP/tests/lib.sh"
setup_relay
fresh () { rm -rf "$POPRELAY_DIR"; mkdir -p "$POPRELAY_DIR"; }
# setmtime ADDR EPOCH: give ADDR's stamp an exact time (fractions allowed)
setmtime () {
  f=$(stampfile "$1") || return 1
  cp "$f" "$f.m" && touch -d "@$2" "$f.m" && mv "$f.m" "$f"
}
now () { date +%s.%N; }
calc () { awk "BEGIN { printf \"%.6f\", $1 }"; }
# within LATE LOW HIGH: LOW <= LATE < HIGH
within () { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }
exists () { stampfile "$1" >/dev/null; }

# --- the boundary: a grant lasts exactly POPRELAY_TTL seconds ---
fresh
grant 192.0.2.1; grant 192.0.2.2; grant 192.0.2.3
n=$(now)
setmtime 192.0.2.1 "$(calc "$n - 9.5")"     # half a second left
setmtime 192.0.2.2 "$(calc "$n - 10.2")"    # just expired
setmtime 192.0.2.3 "$(calc "$n + 3600")"    # an hour ahead: not trusted
NOSVC="relay-clean: warning: no relay-open -w service listens on $POPRELAY_DIR/.rebuild: expired grants stay in the cdb until the next rebuild"
t relay-clean -t 10
expect "summary line, and a word that nobody rebuilds the cdb" 0 "relay-clean: info: removed 1 expired, 1 future-dated, 0 abandoned temp; kept 1 live, 0 temp; junk 0
$NOSVC"
ok "half a second before its expiry, a grant stays" exists 192.0.2.1
no "just past its expiry, it goes" exists 192.0.2.2
no "a stamp from the future goes" exists 192.0.2.3
sleep 0.6
t relay-clean -t 10
expect "after its expiry, the same grant goes" 0 "relay-clean: info: removed 1 expired, 0 future-dated, 0 abandoned temp; kept 0 live, 0 temp; junk 0
$NOSVC"
no "it is gone" exists 192.0.2.1

# --- temp files after the grace period; junk stays and is reported ---
fresh
grant 192.0.2.4
b=$(dirname "$(stampfile 192.0.2.4)")
echo x > "$b/.tmp.111.old"; touch -d '@1000000000' "$b/.tmp.111.old"
echo x > "$b/.tmp.222.new"
echo x > "$b/notes"
echo x > "$POPRELAY_DIR/README"
t relay-clean -n -g 600
expect_grep "dry run: lists the abandoned temp file" 0 "^would remove $b/.tmp.111.old (abandoned temp file)$"
expect_grep "dry run: lists junk it would leave" 0 "^would leave $b/notes (not the name of a stamp in this bucket)$"
expect_grep "dry run: summary" 0 "relay-clean: info: would remove 0 expired, 0 future-dated, 1 abandoned temp; kept 1 live, 1 temp; junk 2"
ok "dry run: nothing removed" test -f "$b/.tmp.111.old"
t relay-clean -g 600
expect "temp files and junk: one warning per junk, one summary" 0 "relay-clean: warning: leaving $b/notes: not the name of a stamp in this bucket
relay-clean: warning: leaving $POPRELAY_DIR/README: not a bucket
relay-clean: info: removed 0 expired, 0 future-dated, 1 abandoned temp; kept 1 live, 1 temp; junk 2"
no "the abandoned temp file is gone" test -e "$b/.tmp.111.old"
ok "a temp file within its grace period stays" test -f "$b/.tmp.222.new"
ok "junk is left in place" test -f "$b/notes"
ok "junk at the top is left in place" test -f "$POPRELAY_DIR/README"
ok "the live stamp stays" exists 192.0.2.4
# a build reads the bucket and caches it; a pass after that still reports
# the junk, whatever the cache says
sleep 1.1; relay-open >/dev/null 2>&1; relay-open >/dev/null 2>&1
t relay-clean -g 600
expect_grep "junk is reported at every pass, even when the bucket is cached" 0 "^relay-clean: warning: leaving $b/notes: not the name of a stamp in this bucket$"
t relay-clean -q
expect "-q: no summary" 0 "relay-clean: warning: leaving $b/notes: not the name of a stamp in this bucket
relay-clean: warning: leaving $POPRELAY_DIR/README: not a bucket"

# --- a bad directory: a clear error, exit 111, nothing removed ---
t relay-clean -d "$T/missing"
expect "missing relay directory" 111 "relay-clean: fatal: unable to open relay directory $T/missing: No such file or directory"
fresh
grant 192.0.2.5; age 192.0.2.5 100000
chmod 755 "$T" "$POPRELAY_DIR" "$POPRELAY_DIR"/*
t setpriv --reuid=65534 --regid=65534 --clear-groups env POPRELAY_CACHE="$T/nocache" relay-clean relay-open
expect "unwritable relay directory" 111 "relay-clean: warning: unable to write in relay directory $POPRELAY_DIR: Permission denied"
ok "unwritable: nothing removed" exists 192.0.2.5
t relay-clean -t 0
expect "bad -t" 100 "relay-clean: fatal: bad -t 0: not a number of seconds from 1 to 31536000"
t env POPRELAY_GRACE=x relay-clean
expect "bad POPRELAY_GRACE" 100 "relay-clean: fatal: bad POPRELAY_GRACE: not a number of seconds from 1 to 31536000"
t relay-clean -w -n
expect_grep "-w with -n: usage" 100 "^relay-clean: usage: "

# --- chained to relay-open, djb-style, and poking the service ---
fresh
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$POPRELAY_RULES"
grant 192.0.2.6; grant 192.0.2.7
relay-open
age 192.0.2.6 100000
t relay-clean relay-open
expect "relay-clean relay-open: cleans, then builds" 0 "relay-clean: info: removed 1 expired, 0 future-dated, 0 abandoned temp; kept 1 live, 0 temp; junk 0"
is "the expired grant left rules.cdb" "$(decision 192.0.2.6 "$POPRELAY_CDB")" "rule : set environment variable QMAILQUEUE=/bin/scan allow connection"
is "the live one stayed" "$(decision 192.0.2.7 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
t relay-clean false
expect "the chained program's exit status is relay-clean's" 1 "relay-clean: info: removed 0 expired, 0 future-dated, 0 abandoned temp; kept 1 live, 0 temp; junk 0"
relay-open -w > "$T/svc.log" 2>&1 &
svc=$!; pids="$pids $svc"
waitfor "service up" 100 relay_open_listening
age 192.0.2.7 100000
t relay-clean
expect "without a program: pokes the relay-open service" 0 "relay-clean: info: removed 1 expired, 0 future-dated, 0 abandoned temp; kept 0 live, 0 temp; junk 0"
waitfor "the service dropped the grant" 100 sh -c "! TCPREMOTEIP=192.0.2.7 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
is "the service dropped the expired grant" "$?" 0
stop $svc
t relay-clean
expect_grep "no service and no program: says the grant stays until the next build" 0 "kept 0 live"

# --- refreshes hammered while cleaning: a refreshed grant is never lost ---
fresh
seq 1 1500 | awk '{ print "10.1." int($1 / 250) "." $1 % 250 + 1 }' > "$T/all"
head -60 "$T/all" > "$T/hot"
# all of them expired long ago
"$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" 100000 < "$T/all"
: > "$T/refreshed"
(
  r=0
  while [ $r -lt 8 ]; do
    while read -r a; do
      TCPREMOTEIP=$a USER=hot pop3-wrapper true 2>/dev/null && echo "$a" >> "$T/refreshed"
    done < "$T/hot"
    r=$((r + 1))
  done
) &
hammer=$!
cleans=0; lost=0
while kill -0 $hammer 2>/dev/null && [ $cleans -lt 200 ]; do
  relay-clean -q -t 3600 2>/dev/null
  cleans=$((cleans + 1))
  # once refreshed, a stamp is live for an hour: it must stay
  for a in $(sort -u "$T/refreshed"); do exists "$a" || lost=$((lost + 1)); done
done
wait $hammer
relay-clean -q -t 3600 2>/dev/null
for a in $(sort -u "$T/refreshed"); do exists "$a" || lost=$((lost + 1)); done
is "$(wc -l < "$T/refreshed" | tr -d ' ') refreshes against $cleans cleaning passes: no refreshed grant lost" "$lost" 0
is "every expired grant that was not refreshed is gone" "$(find "$POPRELAY_DIR" -type f | wc -l | tr -d ' ')" "$(sort -u "$T/hot" | wc -l | tr -d ' ')"

# --- supervised: a grant stops relaying within about a second of its expiry ---
# (relay-clean -w chained to a one-shot relay-open: no relay-open service
# whose own timer could do the work)
fresh
grant 192.0.2.20
relay-open
background relay-clean -w -t 3 relay-open 2>>"$T/clean.log"
cl=$lastpid
s=$(stampfile 192.0.2.20)
expiry=$(calc "$(stat -c %.9Y "$s") + 3")
granted_until=""
i=0
while [ $i -lt 120 ]; do
  if ! decision 192.0.2.20 "$POPRELAY_CDB" | grep -q RELAYCLIENT; then granted_until=$(date +%s.%N); break; fi
  sleep 0.05; i=$((i + 1))
done
late=$(calc "${granted_until:-0} - $expiry")
ok "relay-clean -w: revoked by tcprulescheck's judgement" test -n "$granted_until"
ok "relay-clean -w: revoked within a second of its expiry, not before (late by ${late}s)" within "$late" -0.05 1.0
# a grant made while it sleeps is revoked on time too
grant 192.0.2.21
relay-open
s=$(stampfile 192.0.2.21)
expiry=$(calc "$(stat -c %.9Y "$s") + 3")
granted_until=""
i=0
while [ $i -lt 120 ]; do
  if ! decision 192.0.2.21 "$POPRELAY_CDB" | grep -q RELAYCLIENT; then granted_until=$(date +%s.%N); break; fi
  sleep 0.05; i=$((i + 1))
done
late=$(calc "${granted_until:-0} - $expiry")
ok "relay-clean -w: a later grant is revoked within a second too (late by ${late}s)" within "$late" -0.05 1.0
stop $cl

# the same with both services, as the README runs them
fresh
background relay-open -w 2>>"$T/svc2.log"
so=$lastpid
waitfor "service up" 100 relay_open_listening
background relay-clean -w -t 2 2>>"$T/clean2.log"
sc=$lastpid
TCPREMOTEIP=192.0.2.22 USER=x pop3-wrapper true 2>/dev/null
waitfor "granted" 100 sh -c "TCPREMOTEIP=192.0.2.22 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
ok "two services: granted at once" sh -c "TCPREMOTEIP=192.0.2.22 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
s=$(stampfile 192.0.2.22)
expiry=$(calc "$(stat -c %.9Y "$s") + 2")
sleep 1
i=0; granted_until=""
while [ $i -lt 80 ]; do
  if ! decision 192.0.2.22 "$POPRELAY_CDB" | grep -q RELAYCLIENT; then granted_until=$(date +%s.%N); break; fi
  sleep 0.05; i=$((i + 1))
done
late=$(calc "${granted_until:-0} - $expiry")
ok "two services: revoked within a second of its expiry, not before (late by ${late}s)" within "$late" -0.05 1.0
no "two services: the stamp is gone" exists 192.0.2.22
stop $sc; stop $so

# --- a busy host: a grant expires every 5 ms; the passes come in batches ---
# 400 stamps expiring one after the other over two seconds: a pass at each
# expiry would make about 200 passes; at most ten a second, and never more
# than a fifth of the time, makes about 25. All go all the same.
fresh
awk 'BEGIN { for (i = 0; i < 400; i++) print "10.5." int(i / 250) "." i % 250 + 1 }' > "$T/many"
"$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" < "$T/many"
find "$POPRELAY_DIR" -type f -name '10.5.*' > "$T/manyfiles"
is "400 stamps made" "$(wc -l < "$T/manyfiles" | tr -d ' ')" 400
perl -MTime::HiRes=time,utime -e '
  my $base = time + 1 - 3;
  my $i = 0;
  while (my $f = <STDIN>) { chomp $f; my $t = $base + 0.005 * $i++; utime $t, $t, $f or die "$f: $!\n" }' < "$T/manyfiles"
background relay-clean -w -t 3 2>>"$T/busy.log"
cb=$lastpid
sleep 3.6
stop $cb
passes=$(grep -c 'info: removed' "$T/busy.log")
ok "400 expiries 5 ms apart: $passes passes, no more than 40" test "$passes" -le 40
is "all 400 expired stamps are gone" "$(find "$POPRELAY_DIR" -type f -name '10.5.*' | wc -l | tr -d ' ')" 0

# --- a bucket lock that a user holds for ever never stops expiry ---
# A mail user can stop their own pop3-wrapper while it holds a bucket's
# lock. The cron line "relay-clean relay-open" must still end, and the
# expired grant leave the cdb.
fresh
printf ':allow\n' > "$POPRELAY_RULES"; touch -d '-10 sec' "$POPRELAY_RULES"
grant 192.0.2.44
relay-open -t 2 >/dev/null 2>&1
is "the grant is in the cdb" "$(decision 192.0.2.44 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
bucket=$(dirname "$(stampfile 192.0.2.44)")
sh -c 'exec 9<"$1"; flock -x 9; kill -STOP $$' locker "$bucket" &
locker=$!; pids="$pids $locker"
# it stops itself once it holds the lock
waitfor "the lock is held" 40 sh -c "ps -o stat= -p $locker | grep -q T"
sleep 2.1
s0=$(date +%s%N)
t timeout 10 relay-clean -t 2 relay-open -t 2
s1=$(date +%s%N)
expect_grep "a held lock: relay-clean leaves that bucket's stale stamps, says so, and runs relay-open" 0 "warning: leaving the stale stamps of $bucket to the next pass: its lock is held"
ok "and it took no time waiting ($(( (s1 - s0) / 1000000 )) ms)" test $(( (s1 - s0) / 1000000 )) -lt 3000
is "the expired grant is out of the cdb all the same" "$(decision 192.0.2.44 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
ok "its stamp is still there, for the next pass" exists 192.0.2.44
t timeout 10 relay-clean -t 2
expect_grep "alone, a pass that had to leave stale stamps exits 111 and has the cdb rebuilt" 111 "left in locked buckets 1"
relay-clean -v -w -t 2 > "$T/held.log" 2>&1 &
svc=$!; pids="$pids $svc"
waitfor "relay-clean -w made a pass" 100 grep -q 'left in locked buckets 1' "$T/held.log"
waitfor "and tries the bucket again within seconds" 100 sh -c "[ \$(grep -c 'left in locked buckets 1' '$T/held.log') -ge 2 ]"
ok "relay-clean -w tries the bucket again within seconds" test "$(grep -c 'left in locked buckets 1' "$T/held.log")" -ge 2
s0=$(date +%s%N)
kill -TERM $svc
waitfor "relay-clean -w stops on SIGTERM" 40 sh -c "! kill -0 $svc 2>/dev/null"
s1=$(date +%s%N)
ok "relay-clean -w stops on SIGTERM at once, lock or no lock ($(( (s1 - s0) / 1000000 )) ms)" test $(( (s1 - s0) / 1000000 )) -lt 1500
wait $svc 2>/dev/null
kill -KILL $locker; wait $locker 2>/dev/null
t relay-clean -t 2
expect_grep "once the lock is free, the next pass removes the stamp" 0 "removed 1 expired"

done_testing
