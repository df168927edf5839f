# End to end, the relay side broken under running servers: the relay
# directory missing, unwritable, of the wrong group, on a full disk; the
# cdb's disk full; a bad line in the static rules. Each time POP3 logins
# still succeed and list the mail, nothing is granted that should not be,
# rules.cdb is always there, and the SMTP service keeps answering with
# the last good rules.

. "$TOP/tests/lib.sh"
e2e_setup
# the cdb on a small file system of its own, to fill it later
mkdir "$T/cdbfs"
mount -t tmpfs -o size=64k,mode=755 tmpfs "$T/cdbfs"
trap 'umount "$T/cdbfs" "$POPRELAY_DIR" 2>/dev/null; cleanup' EXIT
POPRELAY_CDB=$T/cdbfs/rules.cdb
export POPRELAY_CDB
tcprules "$T/static.cdb" "$T/static.tmp" < "$POPRELAY_RULES"
e2e_relay_open_service
relay_open=$lastpid
e2e_pop_service 112
e2e_smtp_service 27
listing=$(e2e_listing)
t e2e_login 127.0.0.5 112
expect "a working set-up first: alice logs in from 127.0.0.5" 0 "$listing"
is "and 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 27)" 250
cp "$POPRELAY_CDB" "$T/good.cdb"
# smtp_as_before: the SMTP service answers as the last good rules say
smtp_as_before () {
  is "$1: rules.cdb is there" "$(test -s "$POPRELAY_CDB" && echo yes)" yes
  is "$1: the earlier grant still relays" "$(e2e_rcpt 127.0.0.5 27)" 250
  is "$1: a client with no grant may not relay" "$(e2e_rcpt 127.0.0.6 27)" 550
  is "$1: it still sends to local users, with the static variables" \
    "$(e2e_send 127.0.0.6 27 alice@example.org; e2e_queued 'from 127.0.0.6')" "250
RELAYCLIENT=(unset) MARK=static rules"
  rm -f "$T"/queue/*
  is "$1: the static deny still drops its client" "$(e2e_rcpt 127.0.0.9 27 alice@example.org)" dropped
}
# refused_login ADDR WHAT LOGLINE: a login that must succeed and grant
# nothing, saying why in the POP3 log
refused_login () {
  : > "$T/pop.log"
  t e2e_login "$1" 112
  expect "$2: the login from $1 succeeds and lists the mail" 0 "$listing"
  ok "$2: pop3-wrapper says why it granted nothing" grep -q -e "$3" "$T/pop.log"
  no "$2: no stamp for $1" stampfile "$1"
  is "$2: $1 may not relay" "$(e2e_rcpt "$1" 27)" 550
}

# --- the relay directory missing ---
mv "$POPRELAY_DIR" "$T/relay.away"
refused_login 127.0.0.10 "relay directory missing" "^pop3-wrapper: warning: unable to open relay directory $POPRELAY_DIR: No such file or directory\$"
smtp_as_before "relay directory missing"
t relay-open
expect "relay directory missing: a build keeps the static rules" 0 "relay-open: warning: relay directory $POPRELAY_DIR is missing: no grants"
ok "relay directory missing: the cdb is exactly the static rules' (what tcprules writes)" cmp "$POPRELAY_CDB" "$T/static.cdb"
is "relay directory missing: the static deny still drops its client" "$(e2e_rcpt 127.0.0.9 27 alice@example.org)" dropped
mv "$T/relay.away" "$POPRELAY_DIR"
relay-open
is "relay directory back: the earlier grant relays again after a build" "$(e2e_rcpt 127.0.0.5 27)" 250

# --- the relay directory unwritable, or of another group ---
# (read-only to the group: its buckets, still writable, give the group
# more than the relay directory does, and are no longer trusted)
chmod 2550 "$POPRELAY_DIR"
refused_login 127.0.0.11 "relay directory read-only" "^pop3-wrapper: warning: not granting relaying: $POPRELAY_DIR/[0-9a-f]* has an owner, group or mode that relay-open does not give a bucket"
chmod 2775 "$POPRELAY_DIR"
chgrp root "$POPRELAY_DIR"
refused_login 127.0.0.12 "relay directory of another group" "must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)"
chgrp "$E2E_GID" "$POPRELAY_DIR"
chmod 2777 "$POPRELAY_DIR"
refused_login 127.0.0.13 "relay directory writable by all" "must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)"
chmod 2775 "$POPRELAY_DIR"
refused_login 127.0.0.18 "relay directory others may search" "must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)"
chmod 2770 "$POPRELAY_DIR"
smtp_as_before "relay directory unwritable"

# --- the relay directory's disk full (the buckets there) ---
mount -t tmpfs -o size=16k,nr_inodes=300,mode=2770,gid=$E2E_GID tmpfs "$POPRELAY_DIR"
relay-open -o "$T/scratch.cdb" >/dev/null 2>&1   # makes the buckets
dd if=/dev/zero of="$POPRELAY_DIR/filler" bs=1k count=64 2>/dev/null
refused_login 127.0.0.14 "relay directory's disk full" "No space left on device"
is "relay directory's disk full: no temp file left" "$(find "$POPRELAY_DIR" -name '.tmp.*' | wc -l | tr -d ' ')" 0
umount "$POPRELAY_DIR"
smtp_as_before "relay directory's disk full"

# --- the cdb's disk full ---
dd if=/dev/zero of="$T/cdbfs/filler" bs=1k count=128 2>/dev/null
: > "$T/pop.log"
t e2e_login 127.0.0.15 112
expect "cdb's disk full: the login from 127.0.0.15 succeeds" 0 "$listing"
waitfor "relay-open -w failed to build" 100 grep -q "No space left on device" "$T/relay-open.log"
ok "cdb's disk full: relay-open -w says it cannot write" grep -q "relay-open: warning: .*rules.cdb.relay-open.tmp.*No space left on device" "$T/relay-open.log"
ok "cdb's disk full: the cdb is the last good one" cmp "$POPRELAY_CDB" "$T/good.cdb"
is "cdb's disk full: no temp file left beside it" "$(ls "$T/cdbfs" | tr '\n' ' ')" "filler rules.cdb "
is "cdb's disk full: the new grant is not in force" "$(e2e_rcpt 127.0.0.15 27)" 550
smtp_as_before "cdb's disk full"
ok "cdb's disk full: relay-open -w still runs" kill -0 "$relay_open"
sleep 2.5
is "cdb's disk full: relay-open -w tries every second, and says so once, not at each try" "$(grep -c 'No space left on device' "$T/relay-open.log")" 1
rm "$T/cdbfs/filler"
waitfor "relay-open -w builds again by itself" 60 grep -q "built .* again, after [0-9]* seconds of failed builds" "$T/relay-open.log"
ok "space again: relay-open -w builds by itself within seconds, and says so" grep -q "^relay-open: info: built $POPRELAY_CDB again, after [0-9]* seconds of failed builds\$" "$T/relay-open.log"
is "space again: the new grant is in force" "$(e2e_rcpt 127.0.0.15 27)" 250
cp "$POPRELAY_CDB" "$T/good.cdb"

# --- a bad line in the static rules ---
cp "$POPRELAY_RULES" "$T/rules.good"
echo '127.0.0.:allow,RELAYCLIENT="' >> "$POPRELAY_RULES"
: > "$T/relay-open.log"
t e2e_login 127.0.0.16 112
expect "bad rules line: the login from 127.0.0.16 succeeds" 0 "$listing"
waitfor "relay-open -w refused the rules" 100 grep -q "$POPRELAY_RULES:4" "$T/relay-open.log"
ok "bad rules line: relay-open -w names the file and line" grep -q "^relay-open: .*$POPRELAY_RULES:4: " "$T/relay-open.log"
ok "bad rules line: the cdb is the last good one" cmp "$POPRELAY_CDB" "$T/good.cdb"
is "bad rules line: the new grant is not in force" "$(e2e_rcpt 127.0.0.16 27)" 550
is "bad rules line: 127.0.0.15's grant still is" "$(e2e_rcpt 127.0.0.15 27)" 250
smtp_as_before "bad rules line"
ok "bad rules line: relay-open -w still runs" kill -0 "$relay_open"
t relay-open
expect_grep "bad rules line: a build by hand refuses it too, exit 100" 100 "$POPRELAY_RULES:4: "
cp "$T/rules.good" "$POPRELAY_RULES"
waitfor "relay-open -w builds once the rules are fixed" 80 grep -q "again, after" "$T/relay-open.log"
ok "rules fixed: relay-open -w builds by itself" grep -q "again, after" "$T/relay-open.log"
t relay-open
expect "rules fixed: a build by hand, as after any edit of the rules" 0 ""
is "rules fixed: the grant of the login made meanwhile is in force" "$(e2e_rcpt 127.0.0.16 27)" 250
is "and nothing was granted that should not be" "$(relay-open -l | cut -d' ' -f1 | sort | tr '\n' ' ')" "127.0.0.15 127.0.0.16 127.0.0.5 "

umount "$T/cdbfs"
done_testing
