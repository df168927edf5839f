# watch: relay-open -w keeping the grants in memory, told of changes by
# inotify. Whatever happens to the relay directory (a stamp renamed in or
# out, touched by hand, a bucket replaced or made anew, an event queue that
# overflows, the service restarted in the middle of a stream of logins),
# the cdb it writes holds, at the next quiet point, the same records as a
# build from scratch (relay-open -f). Where inotify cannot be had, it says
# so and reads through the cache; a refresh of a live grant costs no build.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
printf '127.:allow,RELAYCLIENT=""\n10.99.:deny\n:allow,QMAILQUEUE="/bin/scan"\n' > "$POPRELAY_RULES"
touch -d '-10 sec' "$POPRELAY_RULES"
relay-open >/dev/null 2>&1   # the buckets

# same: the service's cdb holds the records of a build from scratch
same () {
  relay-open -f -o "$T/scratch.cdb" 2>/dev/null
  cdb -d "$POPRELAY_CDB" | sort > "$T/a"
  cdb -d "$T/scratch.cdb" | sort > "$T/b"
  cmp -s "$T/a" "$T/b"
}
# quiet DESC: wait until the service's cdb holds what a build from scratch
# holds, and say so
quiet () {
  waitfor "$1" 200 same
  if same; then pass; else fail "$1: the service's cdb is not a build from scratch" "$(diff "$T/a" "$T/b" | head -20)"; fi
}
builds () { grep -c 'info: built' "$T/svc.log"; }

awk 'BEGIN { for (i = 0; i < 3000; i++) print "10.7." int(i / 250) "." i % 250 + 1 }' > "$T/addrs"
"$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" < "$T/addrs"
background relay-open -v -w 2>>"$T/svc.log"
svc=$lastpid
waitfor "service up" 200 grep -q 'info: built' "$T/svc.log"
ok "it says it watches the relay directory" grep -q "info: watching 1 of 1 relay directories through inotify" "$T/svc.log"
quiet "at start, the cdb is a build from scratch"

# --- logins, removals, touches ---
for i in 1 2 3 4 5; do grant 10.8.0.$i; done
quiet "five new grants"
ok "its builds say they read no bucket: they looked at the stamps they were told of" \
  grep -q 'inotify: looked at [0-9]* stamps, read 0 buckets again' "$T/svc.log"
rm "$(stampfile 10.8.0.3)"
quiet "a stamp removed (a revocation by hand)"
is "the revoked address is out" "$(decision 10.8.0.3 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
# (utime without opening the file, as perl does: coreutils' touch opens
# it, which is another event)
f=$(stampfile 10.7.0.9); perl -e '$t = time - 7200; utime $t, $t, $ARGV[0] or die' "$f"
quiet "a stamp's time set back two hours by hand: its grant ends"
is "the touched stamp no longer grants" "$(decision 10.7.0.9 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
touch "$f"
quiet "touched again to now: it grants again"
is "the touched stamp grants again" "$(decision 10.7.0.9 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
grant 10.99.0.1
quiet "a grant under a static deny"
n=$(builds)
grant 10.8.0.1
sleep 0.5
is "a refresh of a live grant costs no build" "$(builds)" "$n"

# --- the static rules changed under the service ---
# What each bucket grants is kept from build to build while its addresses
# stay; new rules must be judged anew everywhere, at the next build.
ok "builds judge only the stamps whose addresses are new" \
  grep -q 'inotify: looked at [0-9]* stamps, read 0 buckets again, judged [0-9] stamps anew' "$T/svc.log"
cp "$POPRELAY_RULES" "$T/rules.saved"
printf '127.:allow,RELAYCLIENT=""\n10.99.:deny\n10.7.1.:deny\n:allow,QMAILQUEUE="/bin/scan2"\n' > "$POPRELAY_RULES"
grant 10.8.1.1
quiet "rules that deny 10.7.1. and change the default's value, at the next build"
is "a grant the new rules deny is out" "$(decision 10.7.1.9 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
is "the default's new value is in" "$(cdb -q "$POPRELAY_CDB" 10.7.0.9 | grep -c scan2)" 1
cp "$T/rules.saved" "$POPRELAY_RULES"
grant 10.8.1.2
quiet "the old rules back, at the next build"
is "the grant is back" "$(decision 10.7.1.9 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1

# --- a bucket replaced, made anew, junk in it ---
b=$(dirname "$(stampfile 10.8.0.2)")
mv "$b" "$T/old-bucket"
quiet "a bucket taken away: its grants go"
is "the taken bucket's grant is out" "$(decision 10.8.0.2 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
relay-clean -q >/dev/null 2>&1
ok "relay-clean makes it anew, empty" test -d "$b"
quiet "the new, empty bucket"
mv -T -f "$T/old-bucket" "$b" 2>/dev/null || { rm -rf "$b" ; mv "$T/old-bucket" "$b" ; }
quiet "the bucket replaced by another (the one taken away): its grants come back"
is "its grant is in again" "$(decision 10.8.0.2 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
chmod o+rwx "$b"
quiet "a bucket opened to others: its stamps grant nothing"
relay-clean -q >/dev/null 2>&1
is "relay-clean makes it anew, right again" "$(stat -c %a "$b")" "$(printf '%o' $(( 0$(stat -c %a "$POPRELAY_DIR") & 02770 )))"
quiet "and the service reads the new one"
echo x > "$(dirname "$(stampfile 10.8.0.4)")/notes"
quiet "junk in a bucket"
ok "the junk is reported" grep -q "skipping .*/notes: not the name of a stamp in this bucket" "$T/svc.log"

# --- an event queue that overflows ---
# The service stopped, more changes than the kernel queues (16384 events),
# then let go: it reads every bucket again and misses nothing.
kill -STOP $svc
awk 'BEGIN { for (i = 0; i < 5000; i++) print "10.9." int(i / 250) "." i % 250 + 1 }' | "$BIN/tests/unit/mkstamps" "$POPRELAY_DIR"
for a in $(head -n 200 "$T/addrs"); do rm -f "$(stampfile $a)"; done
kill -CONT $svc
quiet "an event queue that overflowed"
ok "the service read every bucket again" awk '/buckets again/ { n = $0; sub(/.* read /, "", n); sub(/ buckets again.*/, "", n); if (n + 0 >= 256) found = 1 } END { exit !found }' "$T/svc.log"

# --- the service restarted in the middle of a stream of logins ---
( i=0; while [ $i -lt 60 ]; do grant 10.10.$((i / 250)).$((i % 250 + 1)); i=$((i + 1)); done ) &
stream=$!
sleep 0.3
stop $svc
background relay-open -v -w 2>>"$T/svc.log"
svc=$lastpid
wait $stream
quiet "restarted in the middle of a stream of logins"
miss=0; i=0; while [ $i -lt 60 ]; do decision 10.10.$((i / 250)).$((i % 250 + 1)) "$POPRELAY_CDB" | grep -q RELAYCLIENT || miss=$((miss + 1)); i=$((i + 1)); done
is "every login of the stream is granted" "$miss" 0
stop $svc

# --- a stamp made while a build runs, with no poke after it ---
# A build takes in the kernel's events as it goes, so that its queue never
# overflows during a long build; what it took in must be looked at right
# after, not left until the next event. With 100k grants a build takes
# tens of milliseconds: a login (a poke) starts one, and stamps written
# by hand a few milliseconds later land in the middle of it.
awk 'BEGIN { for (i = 0; i < 100000; i++) print "10.20." int(i / 250) % 256 "." i % 250 + 1 }' | "$BIN/tests/unit/mkstamps" -e "$POPRELAY_DIR"
background relay-open -v -w 2>>"$T/svc.log"
svc=$lastpid
waitfor "service up with 100k grants" 400 sh -c "TCPREMOTEIP=10.20.0.1 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
late=0; r=0
while [ $r -lt 5 ]; do
  sleep 0.5
  grant 10.21.$r.1
  sleep 0.005
  echo 10.21.$r.2 | "$BIN/tests/unit/mkstamps" "$POPRELAY_DIR"
  waitfor "the stamp written by hand" 60 sh -c "TCPREMOTEIP=10.21.$r.2 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT" || late=$((late + 1))
  r=$((r + 1))
done
is "stamps written by hand during a build are granted within 3 s, with no event after them" "$late" 0
stop $svc
rm -rf "$POPRELAY_DIR"/?? && relay-open >/dev/null 2>&1

# --- no inotify to be had: the cache, every build, and it says so ---
# (a user namespace whose inotify watches are few: /proc/sys/user is that
# namespace's own)
grant 10.11.0.1
# (stopped with SIGTERM alone: timeout(1) follows it with SIGCONT, which
# can catch LeakSanitizer's exit-time stop of the threads in the
# sanitizer pass and hang it)
unshare -U -r sh -c 'echo 3 > /proc/sys/user/max_inotify_watches || exit 1
  relay-open -v -w & p=$!
  sleep 3; kill $p; i=0
  while [ -n "$(ps -o stat= -p $p | grep -v "^Z")" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  [ $i -lt 200 ] || { echo "watch.sh: relay-open -w still ran 10 s after SIGTERM: killing it"; kill -KILL $p; }
  wait $p' > "$T/nowatch.log" 2>&1
ok "no inotify watches left: it says it reads through the scan cache" grep -q "unable to watch $POPRELAY_DIR (reading it again at each build, through the scan cache)" "$T/nowatch.log"
ok "and builds all the same" grep -q "info: built $POPRELAY_CDB: .* read [0-9]* of 256 buckets" "$T/nowatch.log"
is "with the grant" "$(decision 10.11.0.1 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1

done_testing
