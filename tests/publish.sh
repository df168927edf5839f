#!/bin/sh
# relay-publish: one POP host pushing its grants to two SMTP hosts, each a
# network namespace of its own (tests/hosts.lib), sshd and relay-open -w
# running on the SMTP hosts as relay-publish(8) sets them up. What is
# checked is what each SMTP host's cdb says (tcprulescheck), and how the
# pushes fail and recover: a host unreachable, hung, with a full disk; a
# push killed half way; clocks apart; a sending host gone for good.
. "$TOP/tests/lib.sh"
. "$TOP/tests/hosts.lib"
hosts_test

TTL=60
KH=$T/known_hosts

# smtp NAME N: an SMTP host at 198.18.0.N: sshd, the sending host pop1's
# directory in $T/NAME/hosts, static rules, relay-open -v -w reading
# both, its pid in RO_NAME
smtp () {
  host_add "$1" "$2"
  host_sshd "$1" 22 "$KH"
  mkdir -p "$T/$1/hosts" "$T/$1/relay"
  chmod 755 "$T/$1/hosts"
  printf '198.18.0.99:deny\n:allow,MARK="static"\n' > "$T/$1/rules"
}

# smtp_open NAME: its relay-open -w
smtp_open () {
  on_bg "$1" env POPRELAY_DIR="$T/$1/relay" POPRELAY_HOSTS="$T/$1/hosts" POPRELAY_CACHE="$T/$1/cache" \
    POPRELAY_RULES="$T/$1/rules" POPRELAY_CDB="$T/$1/rules.cdb" POPRELAY_TTL=$TTL \
    relay-open -v -w 2>>"$T/$1/relay-open.log"
  eval "RO_$1=\$lastpid"
  waitfor "relay-open on $1" 100 grep -q built "$T/$1/relay-open.log"
}

# on_smtp NAME PROG ARGS...: PROG with NAME's settings
on_smtp () {
  _n=$1; shift
  env POPRELAY_DIR="$T/$_n/relay" POPRELAY_HOSTS="$T/$_n/hosts" POPRELAY_CACHE="$T/$_n/cache" \
    POPRELAY_RULES="$T/$_n/rules" POPRELAY_CDB="$T/$_n/rules.cdb" POPRELAY_TTL=$TTL "$@"
}

# relays NAME ADDR: NAME's cdb lets ADDR relay
relays () { decision "$2" "$T/$1/rules.cdb" | grep -q RELAYCLIENT; }
# static_deny NAME: NAME's cdb still holds the static rules' deny
static_deny () { decision 198.18.0.99 "$T/$1/rules.cdb" | grep -q deny; }
notrelays () { ! relays "$@"; }

hosts_start
hosts_account
: > "$KH"
host_add pop1 1
smtp smtp1 11
smtp smtp2 12
hosts_key pop1
hosts_sshconfig pop1 "$KH" smtp1:198.18.0.11:22 smtp2:198.18.0.12:22
# smtp2's directory on a small file system of its own, to fill
mount -t tmpfs -o size=512k,mode=755 tmpfs "$T/smtp2/hosts"
hosts_receive smtp1 pop1 "$T/smtp1/hosts"
hosts_receive smtp2 pop1 "$T/smtp2/hosts"
smtp_open smtp1
smtp_open smtp2

# the POP host's relay directory, its buckets made by a build
mkdir -p "$T/pop1/relay"
POPRELAY_DIR=$T/pop1/relay POPRELAY_CACHE=$T/pop1/cache POPRELAY_RULES=$T/pop1/rules POPRELAY_CDB=$T/pop1/rules.cdb POPRELAY_TTL=$TTL
export POPRELAY_DIR POPRELAY_CACHE POPRELAY_RULES POPRELAY_CDB POPRELAY_TTL
: > "$POPRELAY_RULES"
relay-open >/dev/null 2>&1

# --- usage and bad settings ---
t env -u POPRELAY_PUBLISH relay-publish
expect_grep "no destination: usage" 100 '^relay-publish: usage: '
t relay-publish 'bad host'
expect_grep "a destination with a space" 100 "bad destination 'bad host'\|bad destination bad host"
t relay-publish -- -oProxyCommand=x
expect_grep "a destination that ssh would take for an option" 100 'bad destination'
t relay-publish -i 0 smtp1
expect_grep "-i 0" 100 'bad -i'
t relay-publish -F relative smtp1
expect_grep "-F not absolute" 100 'bad ssh configuration'
t env POPRELAY_DIR="$T/nowhere" relay-publish smtp1
expect_grep "relay directory missing" 111 'unable to'

# --- the service ---
LOG=$T/pop1/publish.log
on_bg pop1 relay-publish -v -i 1 -x 4 -F "$T/pop1/ssh_config" smtp1 smtp2 2>>"$LOG"
PUB=$lastpid
ok "connected to smtp1" waitfor connect 200 grep -q 'connected to smtp1' "$LOG"
ok "connected to smtp2" waitfor connect 200 grep -q 'connected to smtp2' "$LOG"
ok "the first push to each host is all 256 buckets" \
  waitfor firstpush 200 sh -c "[ \$(grep -c 'pushed 256 buckets' '$LOG') = 2 ]"
ok "its own fifo in the relay directory's fifo directory" sh -c "ls '$POPRELAY_DIR/.rebuild' | grep -q '^relay-publish\.'"

# a login on the POP host opens relaying on both SMTP hosts
grant 192.0.2.7 alice
ok "login: relaying on smtp1" waitfor grant1 60 relays smtp1 192.0.2.7
ok "login: relaying on smtp2" waitfor grant2 60 relays smtp2 192.0.2.7
ok "only the one changed bucket went" waitfor onebucket 40 grep -q 'pushed 1 buckets to smtp1' "$LOG"
t on_smtp smtp1 relay-open -l
expect_grep "relay-open -l says where the grant came from" 0 '^192\.0\.2\.7 user=alice .*from=pop1'
ok "the static rules stay on smtp1" static_deny smtp1
f=$(stampfile 192.0.2.7)
b=$(basename "$(dirname "$f")")
is "the stamp keeps its time on the SMTP host (rsync -t)" \
  "$(stat -c %Y "$T/smtp1/hosts/pop1/$b/192.0.2.7")" "$(stat -c %Y "$f")"
is "pushed stamps are the receiving user's, mode 0640" \
  "$(stat -c '%u %a' "$T/smtp1/hosts/pop1/$b/192.0.2.7")" "$HOSTS_UID 640"
is "no temp file left in the incoming directory" "$(ls -A "$T/smtp1/hosts/pop1/.rsync")" ""

# removal travels (a revocation by hand, then relay-clean's expiry)
rm "$f"
ok "a removed stamp: no relaying on smtp1" waitfor revoke1 60 notrelays smtp1 192.0.2.7
ok "a removed stamp: no relaying on smtp2" waitfor revoke2 60 notrelays smtp2 192.0.2.7
grant 192.0.2.8 bob
ok "second login reaches smtp1" waitfor g8 60 relays smtp1 192.0.2.8
age 192.0.2.8 $((TTL + 5))
relay-clean >/dev/null 2>&1
ok "expired by relay-clean on the POP host: gone from smtp1's copy" \
  waitfor expired 60 sh -c "! ls '$T'/smtp1/hosts/pop1/*/192.0.2.8 >/dev/null 2>&1"

# junk pushed from the POP host grants nothing there either
b=$(ls "$POPRELAY_DIR" | grep -m1 '^[0-9a-f][0-9a-f]$')
echo x > "$POPRELAY_DIR/$b/192.0.2.077"
echo x > "$POPRELAY_DIR/$b/junk"
grant 192.0.2.9
ok "a login after junk reaches smtp1" waitfor g9 60 relays smtp1 192.0.2.9
sleep 1.5
ok "the junk names were pushed" test -e "$T/smtp1/hosts/pop1/$b/junk"
ok "a non-canonical name grants nothing" notrelays smtp1 192.0.2.77
ok "nor does the junk" notrelays smtp1 junk
rm -f "$POPRELAY_DIR/$b/192.0.2.077" "$POPRELAY_DIR/$b/junk"
# what rsync would leave in a bucket without --temp-dir: a dot-name
ab=$(basename "$(dirname "$(stampfile 192.0.2.9)")")
cp "$T/smtp1/hosts/pop1/$ab/192.0.2.9" "$T/smtp1/hosts/pop1/$ab/.192.0.2.10.Xy12Ab"
touch "$T/smtp1/hosts/pop1/$ab/.192.0.2.10.Xy12Ab"
on_smtp smtp1 relay-open -f >/dev/null 2>&1
ok "an rsync temp name in a pushed bucket grants nothing" notrelays smtp1 192.0.2.10
rm -f "$T/smtp1/hosts/pop1/$ab/.192.0.2.10.Xy12Ab"

# a sending host added while relay-open -w runs: taken in at SIGHUP
mkdir -p "$T/scratch"
env POPRELAY_DIR="$T/scratch" POPRELAY_CACHE="$T/scratchcache" relay-open >/dev/null 2>&1
env POPRELAY_DIR="$T/scratch" TCPREMOTEIP=192.0.2.11 USER=carol pop3-wrapper true >/dev/null 2>&1
mkdir -m 750 "$T/smtp1/hosts/pop9"
cp -rp "$T/scratch/$(basename "$(dirname "$(POPRELAY_DIR=$T/scratch stampfile 192.0.2.11)")")" "$T/smtp1/hosts/pop9/"
chmod 750 "$T"/smtp1/hosts/pop9/*
sleep 1
ok "a host directory added: not read before SIGHUP" notrelays smtp1 192.0.2.11
kill -HUP "$RO_smtp1"
ok "a host directory added: relay-open -w takes it in at SIGHUP" waitfor hup 100 relays smtp1 192.0.2.11
t on_smtp smtp1 relay-open -l
expect_grep "relay-open -l: the added host's grant" 0 '^192\.0\.2\.11 user=carol .*from=pop9$'
rm -rf "$T/smtp1/hosts/pop9"
# SIGHUPs in a row, some landing while a build is paced: none stops it
for i in 1 2 3 4 5 6 7 8; do kill -HUP "$RO_smtp1"; sleep 0.1; done
ok "relay-open -w still runs after SIGHUPs in a row" kill -0 "$RO_smtp1"
no "relay-open -w did not stop at a SIGHUP" grep -q 'info: stopping' "$T/smtp1/relay-open.log"

# --- clocks apart: a grant's time is the POP host's, carried by rsync -t;
# a stamp up to POPRELAY_SKEW (60 s) ahead counts, one further ahead does not
grant 192.0.2.20
age 192.0.2.20 -40
grant 192.0.2.21
age 192.0.2.21 -200
grant 192.0.2.22
ok "a POP host 40 s ahead: granted" waitfor skew1 60 relays smtp1 192.0.2.22
ok "a POP host 40 s ahead: granted (smtp1)" relays smtp1 192.0.2.20
ok "a POP host 200 s ahead (beyond POPRELAY_SKEW): not granted" notrelays smtp1 192.0.2.21
t on_smtp smtp1 relay-open -l
expect_grep "relay-open -l shows the stamp from the future" 0 '192\.0\.2\.21 .*from=pop1'

# --- a host unreachable: the other goes on, at once; it catches up
host_link smtp2 12 down
grant 192.0.2.30
ok "smtp2 unreachable: smtp1 has the grant at once" waitfor down1 40 relays smtp1 192.0.2.30
ok "smtp2 unreachable: the push to it fails, said once" waitfor downlog 400 grep -q 'push to smtp2 failed' "$LOG"
grant 192.0.2.31
ok "smtp2 unreachable: smtp1 still served within 2 s" waitfor down2 40 relays smtp1 192.0.2.31
ok "smtp2 never had the grant" notrelays smtp2 192.0.2.31
host_link smtp2 12 up
ok "smtp2 back: it catches up" waitfor back 800 relays smtp2 192.0.2.31
ok "smtp2 back: said so" waitfor backlog 100 grep -q 'pushed to smtp2 again' "$LOG"

# --- a host that hangs (its sshd and sessions stopped): killed at -x
hung=""
for q in /proc/[0-9]*; do
  [ "$(readlink "$q/ns/net")" = "$(readlink "/proc/$HOST_smtp2/ns/net")" ] || continue
  case "$(cat "$q/comm")" in sshd*|rsync*) hung="$hung ${q#/proc/}" ;; esac
done
for p in $hung; do kill -STOP "$p"; done
grant 192.0.2.40
ok "smtp2 hung: smtp1 has the grant at once" waitfor hung1 40 relays smtp1 192.0.2.40
ok "smtp2 hung: the push is killed at the time limit" waitfor hunglog 300 grep -q 'took longer than the time limit' "$LOG"
grant 192.0.2.41
ok "smtp2 hung: smtp1 still served" waitfor hung2 40 relays smtp1 192.0.2.41
for p in $hung; do kill -CONT "$p" 2>/dev/null; done
ok "smtp2 wakes: it catches up" waitfor hungback 800 relays smtp2 192.0.2.41

# --- a slow host: the bridge sends to smtp2 at 8 kbit/s (tbf)
nsenter -t "$HOSTS_BR" -n tc qdisc add dev v12 root tbf rate 8kbit burst 1600 latency 5s
grant 192.0.2.45
ok "smtp2 slow: smtp1 has the grant at once" waitfor slow1 40 relays smtp1 192.0.2.45
grant 192.0.2.46
ok "smtp2 slow: smtp1 has the next at once too" waitfor slow2 40 relays smtp1 192.0.2.46
ok "smtp2 slow: it gets them, later" waitfor slow3 600 relays smtp2 192.0.2.46
nsenter -t "$HOSTS_BR" -n tc qdisc del dev v12 root

# --- a full disk on smtp2: the push fails, what it had stays, nothing
# half written; freed, it catches up
before=$(on_smtp smtp2 relay-open -l 2>/dev/null | cut -d" " -f1-3 | sort)
skips=$(grep -c skipping "$T/smtp2/relay-open.log")
dd if=/dev/zero of="$T/smtp2/hosts/filler" bs=4k 2>/dev/null
n0=$(grep -c 'push to smtp2 failed\|took longer' "$LOG")
for i in 1 2 3 4 5 6 7 8 9; do grant "192.0.2.5$i"; done
ok "disk full: smtp1 has the grants" waitfor full1 40 relays smtp1 192.0.2.59
sleep 3
ok "disk full: the push to smtp2 failed" test "$(grep -c 'push to smtp2 failed\|took longer' "$LOG")" -gt "$n0"
ok "disk full: smtp2 does not relay for the new grants" notrelays smtp2 192.0.2.59
is "disk full: smtp2's grants as they were" "$(on_smtp smtp2 relay-open -l 2>/dev/null | cut -d" " -f1-3 | sort)" "$before"
is "disk full: no junk and no temp file in smtp2's buckets" \
  "$(find "$T/smtp2/hosts/pop1" -mindepth 2 -type f ! -size +0 | wc -l)" 0
is "disk full: relay-open on smtp2 skipped nothing half written" "$(grep -c skipping "$T/smtp2/relay-open.log")" "$skips"
rm "$T/smtp2/hosts/filler"
ok "space again: smtp2 catches up" waitfor full2 800 relays smtp2 192.0.2.59
ok "space again: the static rules stay on smtp2" static_deny smtp2

# --- a push killed half way: 5000 grants at once, the rsync killed as
# soon as it runs; the SMTP host never has a half-written stamp, and the
# next push completes
seq 1 5000 | awk '{ printf "10.%d.%d.%d\n", int($1 / 65536), int($1 / 256) % 256, $1 % 256 }' > "$T/many"
stop "$PUB"
"$BIN/tests/unit/mkstamps" "$POPRELAY_DIR" < "$T/many" >/dev/null
on_bg pop1 relay-publish -i 1 -x 20 -F "$T/pop1/ssh_config" smtp1 2>>"$LOG"
PUB=$lastpid
killed=0
i=0
while [ $i -lt 400 ] && [ $killed = 0 ]; do
  for q in /proc/[0-9]*; do
    [ "$(cat "$q/comm" 2>/dev/null)" = rsync ] || continue
    pp=$(awk '{ print $4 }' "$q/stat" 2>/dev/null)
    [ "$pp" = "$PUB" ] || continue
    sleep 0.2
    kill -KILL "${q#/proc/}" 2>/dev/null && killed=1
    break
  done
  i=$((i + 1)); sleep 0.02
done
is "a push was killed half way" "$killed" 1
# in the buckets (not .rsync, where rsync's temp files go): only whole
# stamps, named by their address, none empty
bad=$(find "$T/smtp1/hosts/pop1"/[0-9a-f][0-9a-f] -type f \( ! -regex '.*/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+' -o -size 0 \) | wc -l)
is "killed half way: only stamps in the buckets, no rsync temp file" "$bad" 0
ok "killed half way: the static rules stay" static_deny smtp1
ok "killed half way: the next push brings all 5000" \
  waitfor all 2400 sh -c "[ \$(find '$T/smtp1/hosts/pop1'/[0-9a-f][0-9a-f] -type f -name '10.*' | wc -l) = 5000 ]"
ok "killed half way: then granted" waitfor last 600 relays smtp1 10.0.19.136
sleep 1.1
t on_smtp smtp1 env POPRELAY_GRACE=1 relay-clean
expect "killed half way: relay-clean on the SMTP host" 0
is "killed half way: what rsync left in the incoming directory is gone" "$(ls -A "$T/smtp1/hosts/pop1/.rsync")" ""
stop "$PUB"
rm -rf "$POPRELAY_DIR"/[0-9a-f][0-9a-f]/10.*

# --- a sending host gone for good: its grants expire on time on the SMTP
# host, and relay-clean there removes them
grant 192.0.2.60
age 192.0.2.60 $((TTL - 6))
on_bg pop1 relay-publish -i 1 -F "$T/pop1/ssh_config" smtp1 2>>"$LOG"
PUB=$lastpid
ok "the last grant of a host about to go" waitfor last1 200 relays smtp1 192.0.2.60
stop "$PUB"
host_link pop1 1 down
ok "the host gone: its grant expires on time" waitfor gone 200 notrelays smtp1 192.0.2.60
t on_smtp smtp1 relay-clean -v
expect "relay-clean on the SMTP host" 0
ok "relay-clean removed the expired stamp from the host's directory" \
  sh -c "! ls '$T'/smtp1/hosts/pop1/*/192.0.2.60 >/dev/null 2>&1"

for h in smtp1 smtp2; do eval "stop \$RO_$h"; done
umount "$T/smtp2/hosts"
done_testing
