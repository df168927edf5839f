# fault-target: where the cdb goes is in bad shape: a directory relay-open
# may not write, a read-only file system, a directory or a symbolic link
# where the cdb is, something in the way of its temp file. Each time
# relay-open exits 111 with one clear line, the cdb tcpserver reads stays
# the complete old one, no temp file is left, and the next build after
# the repair succeeds; a symbolic link is replaced, never written through.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
sleep 1.1
grant 192.0.2.1
chmod 755 "$T"; chmod 644 "$T/rules"
asuser () { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
mkdir "$T/own"; chown 65534 "$T/own"
chown -R 65534 "$POPRELAY_DIR"

# --- a directory relay-open may not write ---
mkdir "$T/cdbdir"
relay-open -o "$T/cdbdir/rules.cdb" >/dev/null 2>&1
cp "$T/cdbdir/rules.cdb" "$T/old.cdb"
grant 192.0.2.2
chown -R 65534 "$POPRELAY_DIR"
t asuser env POPRELAY_CACHE="$T/own/cache" relay-open -o "$T/cdbdir/rules.cdb"
expect "target directory not writable: exit 111, one line" 111 "relay-open: warning: unable to create $T/cdbdir/rules.cdb.relay-open.tmp: Permission denied"
ok "the cdb is the complete old one" cmp "$T/cdbdir/rules.cdb" "$T/old.cdb"
is "no temp file" "$(ls "$T/cdbdir")" rules.cdb
chown 65534 "$T/cdbdir"
t asuser env POPRELAY_CACHE="$T/own/cache" relay-open -o "$T/cdbdir/rules.cdb"
expect "made writable: the next build succeeds" 0 ""
is "with the grant made meanwhile" "$(decision 192.0.2.2 "$T/cdbdir/rules.cdb" | grep -c RELAYCLIENT)" 1
is "mode 0644, so that tcpserver's user can read it" "$(stat -c %a "$T/cdbdir/rules.cdb")" 644

# --- a read-only file system ---
mkdir "$T/ro"
mount -t tmpfs -o size=1m tmpfs "$T/ro"
relay-open -o "$T/ro/rules.cdb" >/dev/null 2>&1
cp "$T/ro/rules.cdb" "$T/old.cdb"
mount -o remount,ro "$T/ro"
grant 192.0.2.3
t relay-open -o "$T/ro/rules.cdb"
expect "read-only file system: exit 111, one line" 111 "relay-open: warning: unable to create $T/ro/rules.cdb.relay-open.tmp: Read-only file system"
ok "the cdb is the complete old one" cmp "$T/ro/rules.cdb" "$T/old.cdb"
mount -o remount,rw "$T/ro"
t relay-open -o "$T/ro/rules.cdb"
expect "writable again: the next build succeeds" 0 ""
is "with the grant" "$(decision 192.0.2.3 "$T/ro/rules.cdb" | grep -c RELAYCLIENT)" 1
umount "$T/ro"

# --- a directory where the cdb goes ---
mkdir -p "$T/t1/rules.cdb/inside"
t relay-open -o "$T/t1/rules.cdb"
expect_grep "a directory where the cdb goes: exit 111" 111 "^relay-open: warning: unable to write $T/t1/rules.cdb.relay-open.tmp and rename it to $T/t1/rules.cdb: Is a directory$"
is "the directory is untouched, no temp file" "$(ls "$T/t1") $(ls "$T/t1/rules.cdb")" "rules.cdb inside"

# --- something in the way of the temp file ---
mkdir -p "$T/t2"
relay-open -o "$T/t2/rules.cdb" >/dev/null 2>&1
cp "$T/t2/rules.cdb" "$T/old.cdb"
mkdir "$T/t2/rules.cdb.relay-open.tmp"
t relay-open -o "$T/t2/rules.cdb"
expect_grep "a directory where the temp file goes: exit 111" 111 "^relay-open: warning: unable to create $T/t2/rules.cdb.relay-open.tmp: Is a directory$"
ok "the cdb is the complete old one" cmp "$T/t2/rules.cdb" "$T/old.cdb"
rmdir "$T/t2/rules.cdb.relay-open.tmp"
echo "a temp file left by a killed run" > "$T/t2/rules.cdb.relay-open.tmp"
t relay-open -o "$T/t2/rules.cdb"
expect "a temp file left behind is replaced: the build succeeds" 0 ""
is "and nothing is left but the cdb" "$(ls "$T/t2")" rules.cdb
ln -s "$T/outside" "$T/t2/rules.cdb.relay-open.tmp"
echo "outside" > "$T/outside"
t relay-open -o "$T/t2/rules.cdb"
expect "a symbolic link where the temp file goes is removed, not followed" 0 ""
is "what it pointed to is untouched" "$(cat "$T/outside")" outside

# --- a symbolic link where the cdb goes ---
mkdir -p "$T/t3"
echo "not a cdb" > "$T/elsewhere"
ln -s "$T/elsewhere" "$T/t3/rules.cdb"
t relay-open -o "$T/t3/rules.cdb"
expect "a symbolic link where the cdb goes: the build succeeds" 0 ""
ok "the link is replaced by the cdb" test -f "$T/t3/rules.cdb" -a ! -L "$T/t3/rules.cdb"
is "and what it pointed to is untouched" "$(cat "$T/elsewhere")" "not a cdb"

done_testing
