# fault-rules: the static rules file changing while relay-open builds,
# replaced by rename or rewritten in place, quickly or with a writer that
# stalls halfway: every cdb written is the old rules or the new ones,
# whole, never a mix or a half. And a rules file that disappears, turns
# unreadable or is a directory under a running service: the cdb stays as
# it was, and the service recovers when the file is back.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay

# two versions that share no key: any mix of them shows
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "10.%d.%d.:allow,QMAILQUEUE=\"/bin/a\"\n", int(i / 256), i % 256; print ":allow,QMAILQUEUE=\"/bin/a\"" }' > "$T/A"
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "11.%d.%d.:deny\n", int(i / 256), i % 256; print ":allow,QMAILQUEUE=\"/bin/b\"" }' > "$T/B"
tcprules "$T/A.cdb" "$T/A.tmp" < "$T/A"
tcprules "$T/B.cdb" "$T/B.tmp" < "$T/B"

# builds SECONDS: relay-open again and again for that long; counts the
# builds that succeeded, those that failed, and the cdb files that are
# neither A nor B (kept as bad.N.cdb)
builds () {
  end=$(( $(date +%s) + $1 ))
  ok_=0; failed_=0; bad_=0
  while [ "$(date +%s)" -lt "$end" ]; do
    if relay-open 2>>"$T/builds.err"; then
      ok_=$((ok_ + 1))
      if ! cmp -s "$POPRELAY_CDB" "$T/A.cdb" && ! cmp -s "$POPRELAY_CDB" "$T/B.cdb"; then
        bad_=$((bad_ + 1))
        echo "fault-rules: a build that is neither version: $(cdb -s "$POPRELAY_CDB" 2>&1 | head -1), $(cdb -l -m "$POPRELAY_CDB" 2>/dev/null | cut -d. -f1 | sort | uniq -c | tr '\n' ' ')"
      fi
    else
      failed_=$((failed_ + 1))
    fi
  done
}

# --- replaced by rename, as sed -i, most editors and tcprules users do ---
# (a burst of quick replacements, then others a second or so apart: a
# build uses a file once it has stood for a second)
cp "$T/A" "$T/rules"
(
  i=0
  while [ $i -lt 100 ]; do
    cp "$T/B" "$T/rules.new" && mv "$T/rules.new" "$T/rules"
    cp "$T/A" "$T/rules.new" && mv "$T/rules.new" "$T/rules"
    i=$((i + 1))
  done
  for d in 1.3 0.3 1.4; do
    sleep $d; cp "$T/B" "$T/rules.new" && mv "$T/rules.new" "$T/rules"
    sleep $d; cp "$T/A" "$T/rules.new" && mv "$T/rules.new" "$T/rules"
  done
) &
w=$!
builds 6
wait $w
is "rules replaced by rename 206 times: $ok_ builds, $failed_ failed, each cdb the old rules or the new, whole" "$bad_" 0
ok "rules replaced by rename: builds succeeded" test "$ok_" -gt 0

# --- rewritten in place, and by a writer that stalls halfway ---
: > "$T/builds.err"
(
  i=0
  while [ $i -lt 2 ]; do
    cat "$T/B" > "$T/rules"; sleep 1.3
    { head -c 300000 "$T/A"; sleep 0.2; tail -c +300001 "$T/A"; } > "$T/rules"; sleep 1.3
    i=$((i + 1))
  done
) &
w=$!
builds 6
wait $w
is "rules rewritten in place 4 times, 2 of them stalling halfway for 0.2 s (less than the second relay-open waits for): $ok_ builds, $failed_ failed, never a mix or a half" "$bad_" 0
ok "rules rewritten in place: builds succeeded" test "$ok_" -gt 0
is "every build that gave up ($failed_) said why, and nothing else was said" "$(grep -vc 'it kept changing while it was read' "$T/builds.err")" 0
cp "$T/A" "$T/rules"
sleep 1.1
relay-open

# a build waits for a file changed less than a second ago to stay put
cp "$T/B" "$T/rules"
s=$(date +%s%N)
t relay-open
e=$(date +%s%N)
expect "a build right after the rules changed succeeds" 0 ""
ok "and it is the new rules" cmp "$POPRELAY_CDB" "$T/B.cdb"
ok "it waited for the file to be a second old (took $(( (e - s) / 1000000 )) ms)" test $(( (e - s) / 1000000 )) -ge 900
sleep 1.1
s=$(date +%s%N)
relay-open
e=$(date +%s%N)
ok "a build with settled rules does not wait (took $(( (e - s) / 1000000 )) ms)" test $(( (e - s) / 1000000 )) -lt 900

# --- under the service: the rules go, turn unreadable, become a directory ---
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
tcprules "$T/static.cdb" "$T/static.tmp" < "$T/rules"
# all as nobody, so that permissions count
chmod 755 "$T"; chmod 644 "$T/rules"
mkdir -p "$T/svc"; chown 65534 "$T/svc"; chown -R 65534 "$POPRELAY_DIR"
grant () { setpriv --reuid=65534 --regid=65534 --clear-groups env TCPREMOTEIP="$1" USER=u pop3-wrapper true >/dev/null 2>&1; }
export POPRELAY_CDB="$T/svc/rules.cdb" POPRELAY_CACHE="$T/svc/cache"
sleep 1.1
background setpriv --reuid=65534 --regid=65534 --clear-groups relay-open -v -w 2>>"$T/svc.log"
svc=$lastpid
waitfor "service up" 200 grep -q built "$T/svc.log"
grant 192.0.2.1
waitfor "granted" 200 sh -c "TCPREMOTEIP=192.0.2.1 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
cp "$POPRELAY_CDB" "$T/good.cdb"
n=$(grep -c 'unable to read' "$T/svc.log")

mv "$T/rules" "$T/rules.away"
grant 192.0.2.2
waitfor "a failed rebuild" 200 sh -c "[ \$(grep -c 'unable to read' '$T/svc.log') -gt $n ]"
ok "rules file gone: the service says so" grep -q "unable to read $T/rules: No such file or directory" "$T/svc.log"
ok "rules file gone: the cdb is the one before" cmp "$POPRELAY_CDB" "$T/good.cdb"
mv "$T/rules.away" "$T/rules"
grant 192.0.2.3
waitfor "rebuilt" 300 sh -c "TCPREMOTEIP=192.0.2.3 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
is "rules back: the service builds again, with the grant made meanwhile" "$(decision 192.0.2.2 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
is "and the static rules" "$(decision 127.0.0.1 "$POPRELAY_CDB")" "$(decision 127.0.0.1 "$T/static.cdb")"

cp "$POPRELAY_CDB" "$T/good.cdb"
n=$(grep -c 'unable to read' "$T/svc.log")
chmod 600 "$T/rules"
grant 192.0.2.4
waitfor "a failed rebuild" 200 sh -c "[ \$(grep -c 'unable to read' '$T/svc.log') -gt $n ]"
ok "rules unreadable: the service says so" grep -q "unable to read $T/rules: Permission denied" "$T/svc.log"
ok "rules unreadable: the cdb is the one before" cmp "$POPRELAY_CDB" "$T/good.cdb"
chmod 644 "$T/rules"
grant 192.0.2.5
waitfor "rebuilt" 300 sh -c "TCPREMOTEIP=192.0.2.5 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
is "rules readable again: the service builds again" "$(decision 192.0.2.4 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1

cp "$POPRELAY_CDB" "$T/good.cdb"
n=$(grep -c 'unable to read' "$T/svc.log")
mv "$T/rules" "$T/rules.away"; mkdir "$T/rules"
grant 192.0.2.6
waitfor "a failed rebuild" 200 sh -c "[ \$(grep -c 'unable to read' '$T/svc.log') -gt $n ]"
ok "rules a directory: the service says so" grep -q "unable to read $T/rules: Is a directory" "$T/svc.log"
ok "rules a directory: the cdb is the one before" cmp "$POPRELAY_CDB" "$T/good.cdb"
rmdir "$T/rules"; mv "$T/rules.away" "$T/rules"
stop $svc

# --- builds that keep failing: tried every second, said once a minute ---
# (libfaketime runs the service's clock, and its poll timeouts, twenty
# times as fast: seven seconds are two minutes and twenty seconds to it)
FT=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
rm -f "$T/shout.log"
# (a sanitizer build must be told that libfaketime comes first; timeout
# --foreground sends SIGTERM alone, with no SIGCONT after it, which could
# catch LeakSanitizer's exit-time stop of the threads and hang it)
timeout --foreground 7 env LD_PRELOAD="$FT" FAKETIME='+0 x20' ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  relay-open -w -r "$T/no-such-rules" 2> "$T/shout.log"
tries=$(grep -c "unable to read $T/no-such-rules" "$T/shout.log")
shouts=$(grep -c "warning: no build of $POPRELAY_CDB has succeeded for [0-9]* seconds: grants that expired meanwhile still relay until one does" "$T/shout.log")
ok "failing builds: the service says so once a minute ($shouts times in about 140 s)" test "$shouts" -ge 1 -a "$shouts" -le 3
ok "failing builds: each failure's own line comes out with a shout only ($tries lines)" test "$tries" -le $(( shouts + 1 ))
ok "failing builds: the service kept running until stopped" grep -q "succeeded for" "$T/shout.log"

done_testing
