# fault-relaydir: the relay directory in bad shape, beyond what the
# per-program tests cover: removed under a running service, on a read-only
# file system, out of inodes or blocks (with a grant to refresh), its
# buckets or the rebuild fifo replaced by symbolic links, files, fifos or
# nothing at all. Logins always run their session; nothing outside the
# relay directory is ever granted, read as a stamp or removed; a grant
# never outlives its TTL because its directory went away.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
tcprules "$T/static.cdb" "$T/static.tmp" < "$T/rules"
sleep 1.1   # rules that have settled
granted () { decision "$1" "$POPRELAY_CDB" | grep -q RELAYCLIENT; }
login () {  # login ADDR: a login, its output in $out, status in $rc
  t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP="$1" USER=u pop3-wrapper sh -c 'echo session; exit 7'
}
nstamps () { find "$1" -type f ! -name '.*' | wc -l | tr -d ' '; }

# --- missing ---
rmdir "$POPRELAY_DIR"
t relay-open -l
is "relay-open -l, relay directory missing: a warning, no listing, exit 0" "$rc|$out" "0|relay-open: warning: relay directory $POPRELAY_DIR is missing: no grants"
mkdir "$POPRELAY_DIR"
# removed under a running relay-open -w: its grants still end at their TTL
background relay-open -w -t 3 2>>"$T/svc.log"
svc=$lastpid
waitfor "service up" 200 relay_open_listening
grant 192.0.2.1
waitfor "granted" 200 granted 192.0.2.1
expiry=$(( $(stat -c %Y "$(stampfile 192.0.2.1)") + 3 ))
rm -rf "$POPRELAY_DIR"
login 192.0.2.2
is "relay directory removed: a login says so and runs its session" "$rc|$(printf '%s\n' "$out" | tail -n 1)" "7|session"
waitfor "revoked" 120 sh -c "! TCPREMOTEIP=192.0.2.1 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
ok "relay directory removed: the grant ends at its expiry all the same (by $(date +%s), expiry $expiry)" test "$(date +%s)" -le $((expiry + 2))
is "relay directory removed: the static rules stay" "$(decision 192.0.2.9 "$POPRELAY_CDB")" "$(decision 192.0.2.9 "$T/static.cdb")"
ok "relay directory removed: the service keeps running" kill -0 $svc
stop $svc
mkdir "$POPRELAY_DIR"

# --- read-only ---
mkdir "$T/ro"
mount -t tmpfs -o size=1m tmpfs "$T/ro"
mkdir "$T/ro/relay"
POPRELAY_DIR=$T/ro/relay
grant 192.0.2.3; grant 192.0.2.4; age 192.0.2.4 100000
mount -o remount,ro "$T/ro"
login 192.0.2.5
expect_grep "read-only: a login says so" 7 "Read-only file system"
is "read-only: and runs its session" "$(printf '%s\n' "$out" | tail -n 1)" session
t relay-clean
expect_grep "read-only: relay-clean cannot clean, exit 111" 111 "unable to write in relay directory $POPRELAY_DIR: Read-only file system"
ok "read-only: the expired stamp is still there" stampfile 192.0.2.4
t relay-open
expect "read-only: relay-open builds from it, and says once that it cannot make the missing buckets" 0 "relay-open: warning: unable to make bucket $(printf '%s\n' "$out" | grep -o "$POPRELAY_DIR/[0-9a-f]*") (and maybe others): Read-only file system"
ok "read-only: the live grant is in" granted 192.0.2.3
no "read-only: the expired one is not" granted 192.0.2.4
t relay-open -w
expect_grep "read-only: relay-open -w cannot make its fifo: exit 111" 111 "unable to listen on $POPRELAY_DIR/.rebuild/relay-open\.[0-9a-f]*: Read-only file system"
umount "$T/ro"

# --- full: out of inodes, out of blocks ---
mkdir "$T/full"
mount -t tmpfs -o size=64k,nr_inodes=40 tmpfs "$T/full"
mkdir "$T/full/relay"
POPRELAY_DIR=$T/full/relay
grant 192.0.2.10
s=$(stampfile 192.0.2.10)
touch -d '@'"$(( $(date +%s) - 600 ))" "$s"
before=$(stat -c '%Y %s' "$s"); cbefore=$(cat "$s")
i=0; while [ $i -lt 60 ] && touch "$T/full/f$i" 2>/dev/null; do i=$((i + 1)); done
login 192.0.2.11
expect_grep "no inode left: a login says so" 7 "No space left on device"
is "no inode left: and runs its session" "$(printf '%s\n' "$out" | tail -n 1)" session
login 192.0.2.10
expect_grep "no inode left: a refresh says it failed" 7 "unable to write stamp"
is "no inode left: the old stamp is untouched, time and contents" "$(stat -c '%Y %s' "$s")|$(cat "$s")" "$before|$cbefore"
relay-open >/dev/null 2>&1
ok "no inode left: the old grant still grants, until its own expiry" granted 192.0.2.10
is "no inode left: no temp file anywhere" "$(find "$T/full" -name '.tmp.*' | wc -l | tr -d ' ')" 0
rm -f "$T"/full/f*
dd if=/dev/zero of="$T/full/filler" bs=4k 2>/dev/null
login 192.0.2.12
expect_grep "no block left: a login says so" 7 "No space left on device"
is "no block left: no temp file" "$(find "$T/full" -name '.tmp.*' | wc -l | tr -d ' ')" 0
touch -d '@1000000000' "$s"
t relay-clean -c "$T/cache2"
expect_grep "full: relay-clean still removes expired stamps" 0 "removed 1 expired"
no "full: the expired stamp is gone" stampfile 192.0.2.10
umount "$T/full"
# the cache on a full file system: builds go on, one warning
POPRELAY_DIR=$T/relay
grant 192.0.2.13
sleep 1.1   # a bucket unchanged for a second goes into the cache
mount -t tmpfs -o size=16k,mode=700 tmpfs "$T/cache" 2>/dev/null || { mkdir -p "$T/cache"; mount -t tmpfs -o size=16k,mode=700 tmpfs "$T/cache"; }
mkdir "$T/cache/scan"
dd if=/dev/zero of="$T/cache/filler" bs=1k 2>/dev/null
t relay-open -f
expect_grep "cache full: the build succeeds, with a warning" 0 "unable to write the scan cache"
is "cache full: one warning, not one per bucket" "$(printf '%s\n' "$out" | grep -c 'scan cache')" 1
ok "cache full: the grant is in" granted 192.0.2.13
umount "$T/cache"
mkdir -p "$T/nocache"
mount -t tmpfs -o size=16k,nr_inodes=1 tmpfs "$T/nocache"
cp "$POPRELAY_CDB" "$T/before.cdb"
grant 192.0.2.14
t relay-open -c "$T/nocache/cache"
expect_grep "no room for the cache directory: exit 111, saying so" 111 "unable to create cache directory $T/nocache/cache: No space left on device"
ok "no room for the cache directory: the cdb is unchanged" cmp "$POPRELAY_CDB" "$T/before.cdb"
umount "$T/nocache"

# --- links, files and fifos where a bucket or a stamp goes ---
rm -rf "$POPRELAY_DIR"; mkdir "$POPRELAY_DIR"
grant 192.0.2.20
b=$(dirname "$(stampfile 192.0.2.20 || echo "$T/none/x")")
rm -rf "$b"
mkdir "$T/elsewhere"
cp /dev/null "$T/elsewhere/192.0.2.20"
touch -d '@1000000000' "$T/elsewhere/192.0.2.20"
ln -s "$T/elsewhere" "$b"
t relay-open
expect_grep "a bucket that is a symbolic link is skipped with a warning" 0 "skipping $b.*: a symbolic link"
no "and what it points to grants nothing" granted 192.0.2.20
login 192.0.2.20
expect_grep "a login into a bucket that is a symbolic link refuses, and runs its session" 7 "unable to open $b"
is "it wrote nothing where the link points" "$(ls "$T/elsewhere")" 192.0.2.20
is "and changed nothing there" "$(stat -c %Y "$T/elsewhere/192.0.2.20")" 1000000000
t relay-clean
expect_grep "relay-clean leaves a bucket that is a symbolic link, saying so" 0 "leaving $b.*: a symbolic link"
ok "and removes nothing where it points, expired or not" test -e "$T/elsewhere/192.0.2.20"
rm "$b"; echo x > "$b"
t relay-open
expect_grep "a bucket that is a file is skipped with a warning" 0 "skipping $b.*: "
grant 192.0.2.21
relay-open >/dev/null 2>&1
ok "and the other buckets still grant" sh -c "[ '$(dirname "$(stampfile 192.0.2.21)")' = '$b' ] || TCPREMOTEIP=192.0.2.21 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
rm -f "$b"
grant 192.0.2.22
s=$(stampfile 192.0.2.22); rm "$s"; mkfifo "$s"
t timeout 10 relay-open
expect_grep "a fifo named like a stamp: skipped, and the build does not hang on it" 0 "skipping $s: not a regular file"
no "the fifo grants nothing" granted 192.0.2.22
t timeout 10 relay-open -l
is "relay-open -l does not hang on it either" "$rc" 0
t timeout 10 relay-clean
expect_grep "relay-clean leaves the fifo, saying so" 0 "leaving $s: not a regular file"
login 192.0.2.22
expect_grep "a login replaces the fifo with its stamp" 7 "granted 192.0.2.22"
ok "the stamp is a regular file now" test -f "$s"
# an empty bucket
grant 192.0.2.23
rm "$(stampfile 192.0.2.23)"
t relay-open -f
expect "a bucket left empty: nothing to say" 0 ""
# the relay directory through a symbolic link: the administrator's choice
ln -s "$POPRELAY_DIR" "$T/relay-link"
t env POPRELAY_DIR="$T/relay-link" TCPREMOTEIP=192.0.2.24 pop3-wrapper true
relay-open -d "$T/relay-link" >/dev/null 2>&1
ok "a relay directory reached through a symbolic link works" granted 192.0.2.24

# --- the fifo directory replaced ---
rm -f "$POPRELAY_DIR/.rebuild"
echo x > "$POPRELAY_DIR/.rebuild"
login 192.0.2.30
expect_grep "a file where the fifo directory goes: the login warns" 7 "unable to ask relay-open for a rebuild through $POPRELAY_DIR/.rebuild: Invalid argument"
is "and runs its session" "$(printf '%s\n' "$out" | tail -n 1)" session
is "and the file is as it was" "$(cat "$POPRELAY_DIR/.rebuild")" x
t timeout 10 relay-open -w
expect_grep "a file where the fifo directory goes: relay-open -w cannot listen, exit 111" 111 "unable to listen on $POPRELAY_DIR/.rebuild/relay-open\.[0-9a-f]*: Not a directory"
rm "$POPRELAY_DIR/.rebuild"; ln -s "$T/elsewhere" "$POPRELAY_DIR/.rebuild"
login 192.0.2.31
expect_grep "a symbolic link where the fifo directory goes: the login warns, follows nothing" 7 "unable to ask relay-open for a rebuild"
t timeout 10 relay-open -w
expect_grep "a symbolic link where the fifo directory goes: relay-open -w cannot listen, exit 111" 111 "unable to listen on $POPRELAY_DIR/.rebuild"
rm "$POPRELAY_DIR/.rebuild"

done_testing
