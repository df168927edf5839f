# relay-open: how grants merge with the static rules (judged by each
# tcpserver flavour's own tcprulescheck), which stamps count, what happens
# to bad input, a full disk, a killed run and concurrent runs.

. "$TOP/tests/lib.sh"
setup_relay
U6=$TOP/.deps/ucspi-tcp-ipv6/usr/bin

cat > "$T/rules" <<'EOR'
# static rules of a qmail host
127.:allow,RELAYCLIENT=""
10.1.:allow,QMAILQUEUE="/bin/scan1"
10.9.:deny
10.2.3.4:allow,QMAILQUEUE="/bin/exact"
10.3.:allow,RELAYCLIENT="@relay.example"
=host.example:deny
:allow,QMAILQUEUE="/bin/scan",RBLSMTPD=""
EOR
tcprules "$T/static.cdb" "$T/static.tmp" < "$T/rules"

# --- merge, IPv4, ucspi-tcp ---
for a in 192.0.2.7 10.1.2.3 10.9.0.1 10.2.3.4 10.3.0.1; do grant $a; done
t relay-open
expect_grep "a build with a denied grant warns and succeeds" 0 "not granting 10.9.0.1: $T/rules:4 denies it"

is "default rule: its variables plus RELAYCLIENT" "$(decision 192.0.2.7 "$T/rules.cdb")" \
  "rule 192.0.2.7: set environment variable QMAILQUEUE=/bin/scan set environment variable RBLSMTPD= set environment variable RELAYCLIENT= allow connection"
is "prefix rule: its variables plus RELAYCLIENT" "$(decision 10.1.2.3 "$T/rules.cdb")" \
  "rule 10.1.2.3: set environment variable QMAILQUEUE=/bin/scan1 set environment variable RELAYCLIENT= allow connection"
is "static deny stays a deny" "$(decision 10.9.0.1 "$T/rules.cdb")" "rule 10.9.: deny connection"
is "exact static rule: its variables kept, RELAYCLIENT added" "$(decision 10.2.3.4 "$T/rules.cdb")" \
  "rule 10.2.3.4: set environment variable QMAILQUEUE=/bin/exact set environment variable RELAYCLIENT= allow connection"
is "RELAYCLIENT already set by the static rule is kept" "$(decision 10.3.0.1 "$T/rules.cdb")" \
  "rule 10.3.0.1: set environment variable RELAYCLIENT=@relay.example allow connection"
for a in 192.0.2.8 10.1.9.9 10.9.9.9 127.0.0.1 10.2.3.5; do
  is "ungranted $a: what the static rules alone say" "$(decision $a "$T/rules.cdb")" "$(decision $a "$T/static.cdb")"
done
is "host rules still apply to ungranted clients" "$(decision 192.0.2.9 "$T/rules.cdb" TCPREMOTEHOST=host.example)" "rule =host.example: deny connection"

# extra variables for grants
t relay-open -e ',RBLSMTPD="-extra",QMAILQUEUE="/bin/grantscan"'
expect_grep "POPRELAY_ENV given with -e" 0 "not granting 10.9.0.1"
is "extra variables replace the static ones of the same name" "$(decision 192.0.2.7 "$T/rules.cdb")" \
  "rule 192.0.2.7: set environment variable RBLSMTPD=-extra set environment variable QMAILQUEUE=/bin/grantscan set environment variable RELAYCLIENT= allow connection"
is "ungranted clients do not get the extra variables" "$(decision 192.0.2.8 "$T/rules.cdb")" "$(decision 192.0.2.8 "$T/static.cdb")"
t relay-open -e 'RBLSMTPD=""'
expect "a bad -e is refused" 100 'relay-open: fatal: bad -e RBLSMTPD="": expected a comma and NAME=<q>value<q> here'

# never-grant list, and addresses never granted
t env POPRELAY_NEVER="10.1.0.0/16 192.0.2.7" relay-open
expect_grep "POPRELAY_NEVER: warned" 0 "not granting 10.1.2.3: it is in POPRELAY_NEVER"
is "POPRELAY_NEVER: not granted" "$(decision 10.1.2.3 "$T/rules.cdb")" "$(decision 10.1.2.3 "$T/static.cdb")"
is "POPRELAY_NEVER: the other address not granted" "$(decision 192.0.2.7 "$T/rules.cdb")" "$(decision 192.0.2.7 "$T/static.cdb")"
t env POPRELAY_NEVER="10.1.0.0/8" relay-open
expect_grep "a bad POPRELAY_NEVER is refused, naming the entry" 100 "bad POPRELAY_NEVER: .*10.1.0.0/8"
is "and the cdb stays as it was" "$(decision 10.1.2.3 "$T/rules.cdb")" "$(decision 10.1.2.3 "$T/static.cdb")"
mkdir -p "$T/relay/00"
b=$(ls -d "$T"/relay/*/ | head -1)
for junk in 0.0.0.0 224.0.0.1 255.255.255.255 ::; do
  # a stamp for an address that is never a client, written by hand in its own bucket
  grant $junk 2>/dev/null
done
t relay-open
is "unspecified, multicast, broadcast: no stamp is even written" "$(ls "$T"/relay/*/ | grep -c -e '^0\.0\.0\.0$' -e '^224\.' -e '^255\.' -e '^::$')" "0"

# --- stale, future and junk stamps ---
rm -rf "$T/relay"; mkdir "$T/relay"
for a in 192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5; do grant $a; done
age 192.0.2.1 1780          # live for 20 more seconds (a build may wait a second for new rules to settle)
age 192.0.2.2 1801          # expired
age 192.0.2.3 -30           # ahead, within POPRELAY_SKEW (60)
age 192.0.2.4 -3600         # far in the future: never trusted
t relay-open
expect "stale and future stamps: no warning" 0 ""
is "a stamp younger than the TTL grants" "$(decision 192.0.2.1 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "a stale stamp grants nothing, relay-clean or not" "$(decision 192.0.2.2 "$T/rules.cdb")" "$(decision 192.0.2.2 "$T/static.cdb")"
is "a stamp slightly ahead grants" "$(decision 192.0.2.3 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "a stamp far in the future grants nothing" "$(decision 192.0.2.4 "$T/rules.cdb")" "$(decision 192.0.2.4 "$T/static.cdb")"
t relay-open -t 60
is "POPRELAY_TTL is honoured (-t 60)" "$(decision 192.0.2.1 "$T/rules.cdb")" "$(decision 192.0.2.1 "$T/static.cdb")"

b5=$(dirname "$(stampfile 192.0.2.5)")
echo junk > "$b5/notes.txt"
ln -s /etc/passwd "$b5/192.0.2.99"
mkdir "$T/relay/junkdir"
echo x > "$b5/.tmp.1.abc"
cp "$b5/192.0.2.5" "$b5/0192.0.2.5"
# a good address whose stamp stands in another address's bucket
wrong=$(for i in $(seq 1 200); do a=198.18.0.$i; echo "bucket $a" | "$BIN/tests/unit/t-stamp" | grep -q " $(basename "$b5")\$" || { echo $a; break; }; done)
cp "$b5/192.0.2.5" "$b5/$wrong"
mkdir "$b5/10.10.10.10" 2>/dev/null
t relay-open
expect_grep "junk is skipped with a warning, not fatal" 0 "skipping $b5/notes.txt: not the name of a stamp in this bucket"
expect_grep "a symlink named like a stamp is skipped" 0 "skipping $b5/192.0.2.99: "
expect_grep "a non-canonical name is skipped" 0 "skipping $b5/0192.0.2.5: not the name"
is "the good stamp beside the junk still grants" "$(decision 192.0.2.5 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "the symlink grants nothing" "$(decision 192.0.2.99 "$T/rules.cdb")" "$(decision 192.0.2.99 "$T/static.cdb")"
is "the non-canonical name grants nothing" "$(decision 192.0.2.5 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
expect_grep "a stamp in the wrong bucket is skipped" 0 "skipping $b5/$wrong: not the name of a stamp in this bucket"
is "a stamp in the wrong bucket grants nothing" "$(decision $wrong "$T/rules.cdb")" "$(decision $wrong "$T/static.cdb")"
expect_grep "a directory named like a stamp is skipped" 0 "skipping $b5/10.10.10.10: "
expect_grep "junk at the top of the relay directory is reported" 0 "skipping $T/relay/junkdir\\|junkdir" 
cdb -l -m "$T/static.cdb" | sort -u > "$T/static.keys"
is "every key beyond the static ones is one whole IPv4 address: no empty key, no prefix, no temp file" \
  "$(cdb -l -m "$T/rules.cdb" | sort -u | comm -23 - "$T/static.keys" | grep -cv '^[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}$')" 0
rm -rf "$T/relay/junkdir" "$b5/10.10.10.10" "$b5/notes.txt" "$b5/192.0.2.99" "$b5/.tmp.1.abc" "$b5/0192.0.2.5" "$b5/$wrong"

# an unreadable stamp, seen by a relay-open that is not root (the relay
# directory's group, as a relay-open -l run by a member of it)
grant 192.0.2.50
s=$(stampfile 192.0.2.50)
chgrp -R 65534 "$T/relay"; chmod 755 "$T"; chmod 750 "$T/relay" "$T"/relay/*; chmod 644 "$T/rules"; chmod 640 "$T"/relay/*/*
chmod 000 "$s"
mkdir -p "$T/nobody"; chown 65534 "$T/nobody"
t setpriv --reuid=65534 --regid=65534 --clear-groups env POPRELAY_CACHE="$T/nobody/cache" POPRELAY_CDB="$T/nobody/rules.cdb" relay-open
expect_grep "an unreadable stamp is skipped with a warning" 0 "skipping $s: unreadable"
is "an unreadable stamp grants nothing" "$(decision 192.0.2.50 "$T/nobody/rules.cdb")" "$(decision 192.0.2.50 "$T/static.cdb")"
is "the others still grant" "$(decision 192.0.2.5 "$T/nobody/rules.cdb" | grep -c RELAYCLIENT)" 1
rm -f "$s"

# --- bad input leaves the old cdb ---
relay-open >/dev/null 2>&1
cp "$T/rules.cdb" "$T/good.cdb"
cp "$T/rules" "$T/rules.good"
printf '1.2.3.4:allow\n1.2.3.5:allowance\n' >> "$T/rules"
t relay-open
expect "a bad static line: file:line, exit 100" 100 "relay-open: fatal: $T/rules:10: expected a comma and NAME=<q>value<q> here"
ok "a bad static line: the old cdb stays" cmp "$T/rules.cdb" "$T/good.cdb"
is "a bad static line: no temp file left" "$(ls "$T" | grep -c relay-open.tmp)" 0
cp "$T/rules.good" "$T/rules"
t relay-open -r "$T/missing-rules"
expect "a missing rules file: exit 111, the static rules are not dropped" 111 "relay-open: warning: unable to read $T/missing-rules: No such file or directory"
ok "a missing rules file: the old cdb stays" cmp "$T/rules.cdb" "$T/good.cdb"
chmod 600 "$T/rules"
t setpriv --reuid=65534 --regid=65534 --clear-groups env POPRELAY_CACHE="$T/nobody/cache" POPRELAY_CDB="$T/nobody/rules.cdb" relay-open
expect "an unreadable rules file: exit 111" 111 "relay-open: warning: unable to read $T/rules: Permission denied"
chmod 644 "$T/rules"
chmod 700 "$T/relay"
t setpriv --reuid=65534 --regid=65534 --clear-groups env POPRELAY_CACHE="$T/nobody/cache" POPRELAY_CDB="$T/nobody/rules.cdb" relay-open
expect "an unreadable relay directory: exit 111" 111 "relay-open: fatal: unable to open relay directory $T/relay: Permission denied"
chmod 755 "$T/relay"
t relay-open -d "$T/no-such-relay"
expect "a missing relay directory: static rules only, with a warning" 0 "relay-open: warning: relay directory $T/no-such-relay is missing: no grants"
ok "a missing relay directory: the cdb is the static one" cmp "$T/rules.cdb" "$T/static.cdb"
relay-open >/dev/null 2>&1
cp "$T/rules.cdb" "$T/before-options.cdb"
t relay-open -o "$T/no-such-dir/rules.cdb"
expect "an unwritable target: exit 111" 111 "relay-open: warning: unable to create $T/no-such-dir/rules.cdb.relay-open.tmp: No such file or directory"
for bad in "-t 0" "-t x" "-k -1" "-T ucspi-tcp6" "-d relative" "-x"; do
  t relay-open $bad
  case $bad in -x) expect_grep "usage error ($bad)" 100 "^relay-open: usage: " ;; *) expect_grep "bad option value ($bad): clear error" 100 "^relay-open: fatal: bad ${bad%% *} " ;; esac
done
ok "an unwritable target and bad options leave the cdb as it was" cmp "$T/rules.cdb" "$T/before-options.cdb"

# --- full disk ---
mkdir "$T/small"
mount -t tmpfs -o size=48k tmpfs "$T/small"
cp "$T/good.cdb" "$T/small/rules.cdb"
for i in $(seq 1 600); do grant 198.51.$((i / 250)).$((i % 250 + 1)); done
t relay-open -o "$T/small/rules.cdb"
expect_grep "a full disk: exit 111, saying so" 111 "No space left on device"
ok "a full disk: the old cdb stays" cmp "$T/small/rules.cdb" "$T/good.cdb"
is "a full disk: no temp file left" "$(ls "$T/small")" "rules.cdb"
umount "$T/small"

# --- a killed run leaves the old or the new cdb, and its temp file goes ---
rm -rf "$T/relay"; mkdir "$T/relay"
# 20000 grants written straight into the buckets, as pop3-wrapper would
awk 'BEGIN { for (i = 0; i < 20000; i++) print "10." int(i / 65536) "." int(i / 256) % 256 "." i % 256 }' > "$T/addrs"
"$BIN/tests/unit/mkstamps" "$T/relay" < "$T/addrs"
relay-open >/dev/null 2>&1
cp "$T/rules.cdb" "$T/new.cdb"
cp "$T/good.cdb" "$T/rules.cdb"
cp "$T/good.cdb" "$T/old.cdb"
bad=0; killed=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
  cp "$T/old.cdb" "$T/rules.cdb"
  relay-open -f >/dev/null 2>&1 & p=$!
  sleep "0.0$i"
  kill -9 $p 2>/dev/null && killed=$((killed + 1))
  wait $p 2>/dev/null
  cmp -s "$T/rules.cdb" "$T/old.cdb" || cmp -s "$T/rules.cdb" "$T/new.cdb" || bad=$((bad + 1))
done
is "SIGKILL at 12 points of a build: rules.cdb is always the old or the new complete file" "$bad" 0
t relay-open
expect "the next run after a kill succeeds" 0 ""
is "and no temp file is left" "$(ls "$T" | grep -c relay-open.tmp)" 0
ok "and its cdb is the new one" cmp "$T/rules.cdb" "$T/new.cdb"

# --- concurrent runs, and a request made during a build is not lost ---
rm -rf "$T/relay"; mkdir "$T/relay"
"$BIN/tests/unit/mkstamps" "$T/relay" < "$T/addrs"
pl=""
for i in 1 2 3 4 5 6 7 8; do relay-open -f > "$T/c$i.out" 2>&1 & pl="$pl $!"; grant 203.0.113.$i; done
st=0; for p in $pl; do wait $p || st=1; done
is "8 concurrent runs all succeed" "$st$(cat "$T"/c*.out)" 0
miss=0; for i in 1 2 3 4 5 6 7 8; do decision 203.0.113.$i "$T/rules.cdb" | grep -q RELAYCLIENT || miss=$((miss + 1)); done
is "every login made during the concurrent runs is granted when they are done" "$miss" 0
relay-open -f >/dev/null 2>&1 & slow=$!
sleep 0.02
grant 203.0.113.99
relay-open >/dev/null 2>&1
is "a run made during another's build returns after a build that has its grant" "$(decision 203.0.113.99 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
wait $slow

# Two cdbs built from one cache directory (two SMTP services): a run for
# one must never take the other's build as its own. Each loop grants an
# address of its own, builds its cdb, and checks that the cdb has it.
# loop CDB RULES NET: 20 grants and builds, the misses counted in CDB.miss
loop () {
  : > "$1.miss"
  for i in $(seq 1 20); do
    grant "$3.$i"
    relay-open -o "$1" -r "$2" >/dev/null 2>&1 || echo "exit $? at $i" >> "$1.miss"
    decision "$3.$i" "$1" | grep -q RELAYCLIENT || echo "$3.$i" >> "$1.miss"
  done
}
printf ':allow,SERVICE="a"\n' > "$T/rules-a"
printf ':allow,SERVICE="b"\n' > "$T/rules-b"
touch -d '-10 sec' "$T/rules-a" "$T/rules-b"
# deterministic: while a third build holds the lock (its rules file was
# just written, so it waits a second for it to settle), a.cdb and b.cdb
# are both asked for; whichever builds first must not serve the other
printf ':allow,SERVICE="c"\n' > "$T/rules-c"
relay-open -o "$T/c.cdb" -r "$T/rules-c" >/dev/null 2>&1 & lc=$!
sleep 0.3
grant 198.51.102.1; relay-open -o "$T/a.cdb" -r "$T/rules-a" >/dev/null 2>&1 & la=$!
grant 198.51.102.2; relay-open -o "$T/b.cdb" -r "$T/rules-b" >/dev/null 2>&1 & lb=$!
wait $lc; wait $la; wait $lb
is "two cdbs asked for during a third build: a.cdb is built with its grant" "$(decision 198.51.102.1 "$T/a.cdb" | grep -c RELAYCLIENT)" 1
is "two cdbs asked for during a third build: b.cdb is built with its grant" "$(decision 198.51.102.2 "$T/b.cdb" | grep -c RELAYCLIENT)" 1
loop "$T/a.cdb" "$T/rules-a" 198.51.100 & la=$!
loop "$T/b.cdb" "$T/rules-b" 198.51.101 & lb=$!
wait $la; wait $lb
is "two cdbs, one cache: every build of a.cdb had its own grant" "$(cat "$T/a.cdb.miss" | tr '\n' ' ')" ""
is "two cdbs, one cache: every build of b.cdb had its own grant" "$(cat "$T/b.cdb.miss" | tr '\n' ' ')" ""

# --- the scan cache: changes are seen, damage is not trusted ---
rm -rf "$T/relay" "$T/cache"; mkdir "$T/relay"
t relay-open
is "the first build makes the 256 buckets" "$(ls "$T/relay" | grep -c '^[0-9a-f][0-9a-f]$')" 256
for a in 192.0.2.1 192.0.2.2 192.0.2.3; do grant $a; done
sleep 1.1   # older than a second: cacheable
relay-open >/dev/null 2>&1
t relay-open -v
expect_grep "a second build reads no bucket" 0 "read 0 of 256 buckets"
is "one cache file per bucket" "$(ls "$T/cache/scan" | wc -l | tr -d ' ')" "$(ls "$T/relay" | wc -l | tr -d ' ')"
grant 192.0.2.4
rm "$(stampfile 192.0.2.2)"
t relay-open -v
expect_grep "after a login and a removal, only those buckets are read" 0 "read 2 of 256 buckets"
is "the new grant is in" "$(decision 192.0.2.4 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "the removed grant is out" "$(decision 192.0.2.2 "$T/rules.cdb" | grep -c RELAYCLIENT)" 0
# on a file system with sub-millisecond times a bucket is cached once it
# has stood 50 ms, elsewhere a second
grant 192.0.2.5
sleep 0.2
relay-open >/dev/null 2>&1
t relay-open -v
case $(stat -c %y "$(dirname "$(stampfile 192.0.2.5)")") in
  *.???000000\ *) expect_grep "a bucket changed 0.2 s ago, on a file system with whole-millisecond times, is read again" 0 "read 1 of 256 buckets" ;;
  *) expect_grep "a bucket changed 0.2 s ago, on a file system with finer times, is taken from the cache" 0 "read 0 of 256 buckets" ;;
esac
# a login right after a build, in the bucket it just read: seen each time
miss=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  grant 198.51.100.$i; relay-open >/dev/null 2>&1
  [ "$(decision 198.51.100.$i "$T/rules.cdb" | grep -c RELAYCLIENT)" = 1 ] || miss=$((miss + 1))
done
is "20 logins, each followed at once by a build: every one is in the cdb" "$miss" 0
sleep 1.1
relay-open >/dev/null 2>&1
# one byte of each file flipped (setting it would leave the ~1 in 256
# that already held that value undamaged)
for f in "$T"/cache/scan/*; do perl -e 'open(F, "+<", $ARGV[0]) or die; seek(F, 40, 0); read(F, $c, 1); seek(F, 40, 0); print F chr(ord($c) ^ 0xff)' "$f"; done
t relay-open -v
expect_grep "a damaged cache is not trusted: every bucket is read again" 0 "read $(ls "$T/relay" | wc -l) of 256 buckets"
is "and the grants are right" "$(for a in 192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4; do decision $a "$T/rules.cdb" | grep -c RELAYCLIENT; done | tr -d '\n')" 1011

chmod 777 "$T/cache/scan"
t relay-open -v
expect_grep "a scan cache others could write is not trusted" 0 "warning: not using the scan cache $T/cache/scan: it must be a directory of this user that no one else can write"
expect_grep "and every bucket is read" 0 "read $(ls "$T/relay" | wc -l) of 256 buckets"
chmod 700 "$T/cache/scan"

# --- listing ---
age 192.0.2.3 1801
USER='eve l' TCPREMOTEIP=10.9.0.1 pop3-wrapper true 2>/dev/null
t relay-open -l
expect_grep "list: a live grant, with user and time left" 0 "^192.0.2.1 user=user granted=20[0-9-]*T[0-9:]*Z expires-in=1[0-9]*s status=granted$"
expect_grep "list: a stale stamp" 0 "^192.0.2.3 user=user .* expires-in=0s status=expired$"
expect_grep "list: a denied one, with its rule's line, user name escaped" 0 "^10.9.0.1 user=eve\\\\x20l .* status=denied rule-line=4$"
t relay-open -l -c "$T/no-cache-yet"
is "list before any build (no cache directory yet): no warning, nothing made" "$(printf '%s\n' "$out" | grep -c -v '^[0-9]') $(test -e "$T/no-cache-yet" && echo made)" "0 "

# --- POPRELAY_USERMAX: a cap on one user's grants, the newest win ---
rm -rf "$T/relay"; mkdir "$T/relay"
printf ':allow\n10.7.7.:deny\n' > "$T/rules-cap"
touch -d '-10 sec' "$T/rules-cap"
for a in 10.5.0.1 10.5.0.2 10.5.0.3 10.5.0.4; do grant $a alice; done
grant 10.6.0.1 bob; grant 10.7.7.7 alice
age 10.5.0.1 400; age 10.5.0.2 300; age 10.5.0.3 200; age 10.5.0.4 100
t relay-open -r "$T/rules-cap" -m 2
expect_grep "-m 2: alice's older grants are refused, with the reason" 0 "warning: not granting 10.5.0.2: its user has POPRELAY_USERMAX newer grants"
for a in 10.5.0.3 10.5.0.4 10.6.0.1; do
  is "-m 2: $a granted (alice's two newest, bob's)" "$(decision $a "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
done
for a in 10.5.0.1 10.5.0.2; do
  is "-m 2: $a, one of alice's older ones, not granted" "$(decision $a "$T/rules.cdb" | grep -c RELAYCLIENT)" 0
done
is "-m 2: her newest stamp, under a static deny, does not count against her" "$(relay-open -l -r "$T/rules-cap" -m 2 | grep '^10.7.7.7 ' | sed 's/.*status=//')" "denied rule-line=2"
is "-l -m 2: the refused ones are listed over-cap" "$(relay-open -l -r "$T/rules-cap" -m 2 | grep over-cap | cut -d' ' -f1 | sort | tr '\n' ' ')" "10.5.0.1 10.5.0.2 "
t env POPRELAY_USERMAX=3 relay-open -r "$T/rules-cap"
is "POPRELAY_USERMAX=3: three of alice's" "$(for a in 10.5.0.1 10.5.0.2 10.5.0.3 10.5.0.4; do decision $a "$T/rules.cdb" | grep -c RELAYCLIENT; done | tr -d '\n')" 0111
t relay-open -r "$T/rules-cap"
is "no cap (the default): all of them" "$(for a in 10.5.0.1 10.5.0.2 10.5.0.3 10.5.0.4; do decision $a "$T/rules.cdb" | grep -c RELAYCLIENT; done | tr -d '\n')" 1111
sleep 1.1; relay-open -r "$T/rules-cap" -m 2 >/dev/null 2>&1
grant 10.5.0.1 alice
t relay-open -r "$T/rules-cap" -m 2
is "-m 2 from the scan cache: a new login of alice's wins over her older grants" "$(for a in 10.5.0.1 10.5.0.2 10.5.0.3 10.5.0.4; do decision $a "$T/rules.cdb" | grep -c RELAYCLIENT; done | tr -d '\n')" 1001

# --- link-local addresses: not granted unless asked ---
rm -rf "$T/relay"; mkdir "$T/relay"
for a in 169.254.7.1 fe80::7; do
  t env TCPREMOTEIP=$a pop3-wrapper true
  expect "a login from link-local $a: not granted" 0 "pop3-wrapper: warning: not granting relaying to $a: it is a link-local address (see POPRELAY_LINKLOCAL)"
  env POPRELAY_LINKLOCAL=1 TCPREMOTEIP=$a pop3-wrapper true 2>/dev/null
  ok "with POPRELAY_LINKLOCAL=1, pop3-wrapper grants $a" stampfile $a
done
t relay-open -T ucspi-tcp-ipv6
expect_grep "relay-open does not grant a link-local stamp either" 0 "not granting fe80::7: it is a link-local address"
is "169.254.7.1 not in the cdb" "$(decision 169.254.7.1 "$T/rules.cdb" | grep -c RELAYCLIENT)" 0
t relay-open -T ucspi-tcp-ipv6 -L 1
is "-L 1: 169.254.7.1 granted" "$(decision 169.254.7.1 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "-L 1: fe80::7 granted" "$(TCPRULESCHECK=$U6/tcprulescheck decision fe80::7 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1

# --- IPv6, ucspi-tcp-ipv6 keys, checked with its own tcprulescheck ---
rm -rf "$T/relay"; mkdir "$T/relay"
cat > "$T/rules6" <<'EOR'
::1:allow,RELAYCLIENT="",FROM="loopback"
2001:db8::bad:deny
2001:db8:::allow,QMAILQUEUE="/bin/scan6"
2001:db8::allow,P="short prefix"
10.:allow,QMAILQUEUE="/bin/scan4"
:allow,QMAILQUEUE="/bin/scan"
EOR
"$U6/tcprules" "$T/static6.cdb" "$T/static6.tmp" < "$T/rules6"
for a in ::1 2001:db8::5 2001:db8:0:1::7 2001:db8::bad 2001:db8:0:1:1:1:1:1 1:0:0:2:0:0:0:3 ::ffff:10.1.2.3 2001:DB8:1::A; do grant $a; done
t relay-open -T ucspi-tcp-ipv6 -r "$T/rules6"
expect_grep "ucspi-tcp-ipv6: a denied IPv6 grant warns" 0 "not granting 2001:db8::bad: $T/rules6:2 denies it"
T6="$U6/tcprulescheck"
is "IPv6 ::1: exact static rule kept" "$(TCPRULESCHECK=$T6 decision ::1 "$T/rules.cdb")" "rule ::1: set environment variable RELAYCLIENT= set environment variable FROM=loopback allow connection"
is "IPv6 prefix ending in ::" "$(TCPRULESCHECK=$T6 decision 2001:db8::5 "$T/rules.cdb")" "rule 2001:db8::5: set environment variable QMAILQUEUE=/bin/scan6 set environment variable RELAYCLIENT= allow connection"
is "IPv6 shorter prefix" "$(TCPRULESCHECK=$T6 decision 2001:db8:0:1::7 "$T/rules.cdb")" "rule 2001:db8:0:1::7: set environment variable P=short prefix set environment variable RELAYCLIENT= allow connection"
is "IPv6 static deny respected" "$(TCPRULESCHECK=$T6 decision 2001:db8::bad "$T/rules.cdb")" "rule 2001:db8::bad: deny connection"
is "IPv6 key: a single zero group compressed, as ucspi-tcp-ipv6 writes it" "$(TCPRULESCHECK=$T6 decision 2001:db8::1:1:1:1:1 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "IPv6 key: the longest zero run compressed" "$(TCPRULESCHECK=$T6 decision 1:0:0:2::3 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "IPv6 key: lowercase" "$(TCPRULESCHECK=$T6 decision 2001:db8:1::a "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "v4-mapped login grants the dotted quad, under its IPv4 prefix rule" "$(TCPRULESCHECK=$T6 decision 10.1.2.3 "$T/rules.cdb")" "rule 10.1.2.3: set environment variable QMAILQUEUE=/bin/scan4 set environment variable RELAYCLIENT= allow connection"
for a in ::2 2001:db9::1 10.9.9.9 2001:db8::6; do
  is "IPv6 ungranted $a: the static rules alone" "$(TCPRULESCHECK=$T6 decision $a "$T/rules.cdb")" "$(TCPRULESCHECK=$T6 decision $a "$T/static6.cdb")"
done
# tcpserver -6 gives an IPv4 client ::ffff:a.b.c.d: the grant has that key
# too, with the static record that text finds (here the default one)
is "v4-mapped text of tcpserver -6: granted, under the record its own text finds" "$(TCPRULESCHECK=$T6 decision ::ffff:10.1.2.3 "$T/rules.cdb")" "rule ::ffff:10.1.2.3: set environment variable QMAILQUEUE=/bin/scan set environment variable RELAYCLIENT= allow connection"
is "v4-mapped text of an address that did not log in: the static rules alone" "$(TCPRULESCHECK=$T6 decision ::ffff:10.1.2.4 "$T/rules.cdb")" "$(TCPRULESCHECK=$T6 decision ::ffff:10.1.2.4 "$T/static6.cdb")"

# An address whose key would end in "::" cannot be granted under
# ucspi-tcp-ipv6: its tcpserver also looks that text up as a prefix of
# other clients' addresses (2001:db8:1:2:: would open 2001:db8:1:2::5, and
# 2001:db8:: all of 2001:db8::/32's text that starts so)
for a in 2001:db8:1:2:: 2001:db8:7:: 2001:db8:1:2:3:4:5:0; do grant $a; done
t relay-open -T ucspi-tcp-ipv6 -r "$T/rules6"
expect_grep "a key ending in :: is refused, with the reason" 0 "warning: not granting 2001:db8:1:2::: no key can grant it alone: its ucspi-tcp-ipv6 key ends in \"::\", which that tcpserver also matches as a prefix of other addresses"
expect_grep "a single trailing zero group too (ucspi-tcp-ipv6 compresses it)" 0 "warning: not granting 2001:db8:1:2:3:4:5:0: no key can grant it alone"
for a in 2001:db8:1:2::5 2001:db8:1:2::1:5 2001:db8:1:2:: 2001:db8:7::1 2001:db8:7:: 2001:db8:1:2:3:4:5:1 2001:db8:1:2:3:4:5::; do
  is "no grant reaches $a through a key ending in ::" "$(TCPRULESCHECK=$T6 decision $a "$T/rules.cdb")" "$(TCPRULESCHECK=$T6 decision $a "$T/static6.cdb")"
done
cdb -l -m "$T/static6.cdb" | sort -u > "$T/static6.keys"
is "every key a grant added ends in a digit or a hex letter: none is a prefix" \
  "$(cdb -l -m "$T/rules.cdb" | sort -u | comm -23 - "$T/static6.keys" | grep -c -v '[0-9a-f]$')" 0
t relay-open -l -T ucspi-tcp-ipv6 -r "$T/rules6"
expect_grep "list: a key ending in :: is no-key, with the reason" 0 "^2001:db8:7:: user=user .* status=no-key (its ucspi-tcp-ipv6 key ends in"

# a static deny of either text denies the address in both
printf '::ffff:10.1.2.3:deny\n' | cat - "$T/rules6" > "$T/rules6d"
t relay-open -T ucspi-tcp-ipv6 -r "$T/rules6d"
expect_grep "a deny of the ::ffff: text refuses the grant" 0 "not granting 10.1.2.3: $T/rules6d:1 denies it"
is "and the dotted quad is not granted either" "$(TCPRULESCHECK=$T6 decision 10.1.2.3 "$T/rules.cdb" | grep -c RELAYCLIENT)" 0
# rules written for IPv4 with a deny default: the ::ffff: text of an
# address they allow falls to the default; that text gets no key, the
# dotted quad keeps its grant
printf '10.1.:allow,QMAILQUEUE="/bin/scan4"\n:deny\n' > "$T/rules6v4"
t relay-open -T ucspi-tcp-ipv6 -r "$T/rules6v4"
is "a deny default: the dotted quad of an allowed prefix is granted" "$(TCPRULESCHECK=$T6 decision 10.1.2.3 "$T/rules.cdb")" "rule 10.1.2.3: set environment variable QMAILQUEUE=/bin/scan4 set environment variable RELAYCLIENT= allow connection"
is "a deny default: its ::ffff: text, which only the default rule covers, stays denied" "$(TCPRULESCHECK=$T6 decision ::ffff:10.1.2.3 "$T/rules.cdb")" "rule : deny connection"

t relay-open -T ucspi-tcp -r "$T/rules"
expect_grep "ucspi-tcp (IPv4 only): an IPv6 grant is skipped with a warning" 0 "not granting 2001:db8::5: no key can grant it alone: IPv6, and POPRELAY_TCPRULES is ucspi-tcp"
is "ucspi-tcp (IPv4 only): no ::ffff: key" "$(cdb -l -m "$T/rules.cdb" | grep -c ffff)" 0
is "ucspi-tcp: the v4-mapped login is still granted" "$(decision 10.1.2.3 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
is "ucspi-tcp: no IPv6 key in the cdb" "$(cdb -l -m "$T/rules.cdb" | grep -c :)" 0

# --- output file mode, whatever the umask ---
(umask 077; relay-open >/dev/null 2>&1)
is "the cdb is mode 0644 whatever the umask" "$(stat -c %a "$T/rules.cdb")" 644

done_testing
