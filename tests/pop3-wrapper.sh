# pop3-wrapper: where the address comes from, what is refused, how the
# stamp is written, that the session always runs, and that a local user
# cannot forge a grant against a set-gid installation.

. "$TOP/tests/lib.sh"
setup_relay
unset PROTO TCPREMOTEIP SSLREMOTEIP IP REMOTE_HOST TCPLOCALIP TCPLOCALPORT USER SERVICE AUTHORIZED 2>/dev/null

# pw VAR=value... : a login through pop3-wrapper with only these
# variables; the session prints "session" and exits 7
pw () {
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" "$@" pop3-wrapper sh -c 'echo session; exit 7' </dev/null 2>&1
}
nstamps () { find "$POPRELAY_DIR" -type f ! -name '.*' | wc -l | tr -d ' '; }
fresh () { rm -rf "$POPRELAY_DIR"; mkdir -p "$POPRELAY_DIR"; }
NOSVC="pop3-wrapper: info: no relay-open -w service is set up: the grant takes effect at the next relay-open run"
STALE="pop3-wrapper: warning: no relay-open -w service listens on $POPRELAY_DIR/.rebuild: the grant waits for the next rebuild"

# --- every address source ---
fresh
t pw PROTO=TCP TCPREMOTEIP=192.0.2.1 USER=alice
expect "tcpserver: PROTO=TCP, TCPREMOTEIP" 7 "pop3-wrapper: info: granted 192.0.2.1 to alice uid 0
$NOSVC
session"
is "tcpserver: the stamp says user, uid, via" "$(sed -n '1p;2p;$p' "$(stampfile 192.0.2.1)")" "user alice
uid 0
via TCPREMOTEIP"
t pw PROTO=TCP6 TCP6REMOTEIP=2001:DB8::2 TCPREMOTEIP=2001:DB8::2 USER=bob
expect_grep "ucspi-tcp-ipv6: PROTO=TCP6, TCP6REMOTEIP, stamp named canonically" 7 "granted 2001:db8::2 to bob"
ok "ucspi-tcp-ipv6: the stamp's name is the canonical text" stampfile 2001:db8::2
is "ucspi-tcp-ipv6: read from TCP6REMOTEIP" "$(tail -1 "$(stampfile 2001:db8::2)")" "via TCP6REMOTEIP"
t pw PROTO=SSL SSLREMOTEIP=192.0.2.3 USER=carol
expect_grep "sslserver: PROTO=SSL, SSLREMOTEIP" 7 "granted 192.0.2.3 to carol"
t pw SSLREMOTEIP=192.0.2.4 USER=carol
expect_grep "sslserver without PROTO: SSLREMOTEIP" 7 "granted 192.0.2.4 to carol"
t pw IP=192.0.2.5 LOCAL_IP=127.0.0.1 USER=dave
expect_grep "Dovecot post-login: IP" 7 "granted 192.0.2.5 to dave"
is "Dovecot post-login: LOCAL_IP recorded" "$(grep '^local ' "$(stampfile 192.0.2.5)")" "local 127.0.0.1"
t pw REMOTE_HOST=192.0.2.6 USER=erin
expect_grep "xinetd: REMOTE_HOST" 7 "granted 192.0.2.6 to erin"
t pw TCPREMOTEIP=192.0.2.30 USER="$(printf 'eve\npop3-wrapper: info: granted 203.0.113.9 to x')"
expect "a user name cannot forge a log line: it is escaped" 7 "pop3-wrapper: info: granted 192.0.2.30 to eve\\x0apop3-wrapper:\\x20info:\\x20granted\\x20203.0.113.9\\x20to\\x20x uid 0
$NOSVC
session"
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.31 USER=quinn pop3-wrapper -q sh -c 'echo session; exit 7' </dev/null
expect "-q: no line for the grant, nor for a relay directory with no service set up" 7 "session"
ok "-q: the grant is made all the same" stampfile 192.0.2.31
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.31 USER=quinn pop3-wrapper -q sh -c 'echo session; exit 7' </dev/null
expect "-q: no line for a refresh" 7 "session"
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.31 USER=quinn AUTHORIZED=1 pop3-wrapper -q sh -c 'echo session; exit 7' </dev/null
expect "-q: no line for a user lookup" 7 "session"
# a service that was set up and is gone (its fifo has no reader) is worth
# a warning, with -q too
mkdir "$POPRELAY_DIR/.rebuild"; mkfifo "$POPRELAY_DIR/.rebuild/relay-open.0123456789abcdef"
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.32 USER=quinn pop3-wrapper -q sh -c 'echo session; exit 7' </dev/null
expect "-q: a service whose fifo has no reader: the warning stays" 7 "$STALE
session"
rm -r "$POPRELAY_DIR/.rebuild"
t pw TCPREMOTEIP=::ffff:192.0.2.7 USER=frank
expect_grep "couriertcpd's v4-mapped form is folded to IPv4" 7 "granted 192.0.2.7 to frank"
t pw PROTO=TCP TCPREMOTEIP=192.0.2.8 IP=198.51.100.1 SSLREMOTEIP=198.51.100.2 USER=gina
expect_grep "the first source set decides: \${PROTO}REMOTEIP before IP and SSLREMOTEIP" 7 "granted 192.0.2.8 to gina"
t pw TCPREMOTEIP=bogus IP=198.51.100.3 USER=gina
expect_grep "a source that is set but bad is not passed over for a later one" 7 "not granting relaying: TCPREMOTEIP: its value is not an IPv4 or IPv6 address"
no "and the later source is not granted" stampfile 198.51.100.3
t pw USER=hank
expect "no source at all, fd 0 not a socket: a warning, the session runs" 7 "pop3-wrapper: warning: not granting relaying: the socket on fd 0: no client address: no TCPREMOTEIP, SSLREMOTEIP, IP or REMOTE_HOST, and fd 0 is not a TCP socket
session"
# plain inetd: nothing in the environment, the peer of the socket on fd 0
background tcpserver -H -R -l test 127.0.0.1 2601 env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" USER=ivan pop3-wrapper sh -c 'echo session' 2>>"$T/servers.log"
srv=$lastpid
waitfor "tcpserver up" 40 tcpclient -H -R -l test 127.0.0.1 2601 true
out=$(tcpclient -H -R -l test -i 127.0.0.9 127.0.0.1 2601 sh -c 'cat <&6' 2>&1)
is "inetd: the session ran on the socket" "$out" "session"
ok "inetd: the peer of fd 0 is granted" stampfile 127.0.0.9
is "inetd: the server side is recorded" "$(grep '^local ' "$(stampfile 127.0.0.9)")" "local 127.0.0.1:2601"
stop $srv

# --- refusals: one warning, no stamp, the session runs ---
fresh
for bad in "" "garbage" "../../etc/passwd" "1.2.3.4/../x" "fe80::1%eth0" "1.2.3.4 " "1.2.3.04" "[::1]" \
           "$(printf '1.2.3.4\nx')" "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1" "$(head -c 5000 /dev/zero | tr '\0' 1)"; do
  t pw TCPREMOTEIP="$bad" USER=mallory
  expect "refused address [$(printf '%s' "$bad" | head -c 40 | tr '\n' '|')]" 7 "pop3-wrapper: warning: not granting relaying: TCPREMOTEIP: its value is not an IPv4 or IPv6 address
session"
done
for a in "0.0.0.0|an unspecified (0.0.0.0/8) address" "0.1.2.3|an unspecified (0.0.0.0/8) address" "224.0.0.1|a multicast address" \
         "255.255.255.255|a broadcast or reserved (240.0.0.0/4) address" "::ffff:224.0.0.5|a multicast address" "::|the unspecified address" "ff02::1|a multicast address"; do
  addr=${a%%|*}; why=${a#*|}
  t pw TCPREMOTEIP="$addr" USER=mallory
  expect_grep "never granted: $addr" 7 "not granting relaying to .*: it is $why"
done
is "no stamp for any refused address" "$(nstamps)" 0
t pw POPRELAY_NEVER="100.64.0.0/10 192.0.2.80" TCPREMOTEIP=100.100.1.1 USER=x
expect_grep "POPRELAY_NEVER: carrier-grade NAT refused" 7 "not granting relaying to 100.100.1.1: it is in POPRELAY_NEVER"
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.80 pop3-wrapper -n "10.0.0.0/8, 192.0.2.80" true
expect_grep "-n: the site's webmail host refused" 0 "not granting relaying to 192.0.2.80: it is in POPRELAY_NEVER"
t env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" POPRELAY_NEVER="10.0.0.0/8 oops" TCPREMOTEIP=192.0.2.81 pop3-wrapper sh -c 'echo session'
expect "a bad POPRELAY_NEVER: no grant, the session runs" 0 "pop3-wrapper: warning: not granting relaying: bad POPRELAY_NEVER: this entry is not an address, or an address/bits with no bits set after the prefix (256 entries at most): oops
session"
is "still no stamp" "$(nstamps)" 0
t env -i PATH="$PATH" AUTHORIZED=1 POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.82 pop3-wrapper true
expect "Dovecot checkpassword userdb lookup (AUTHORIZED=1): no grant" 0 "pop3-wrapper: info: not granting: AUTHORIZED=1 is a user lookup, not a login"

# --- the stamp: atomic, mode 0640 whatever the umask, refreshed in place ---
fresh
t sh -c "umask 077; env -i PATH=\"$PATH\" POPRELAY_DIR=\"$POPRELAY_DIR\" TCPREMOTEIP=192.0.2.9 USER=alice SERVICE=pop3 TCPLOCALIP=127.0.0.1 TCPLOCALPORT=110 pop3-wrapper true"
s=$(stampfile 192.0.2.9)
is "stamp mode 0640 under umask 077" "$(stat -c %a "$s")" 640
is "bucket directory made with the relay directory's mode, none for others" "$(stat -c %a "$(dirname "$s")")" "$(printf '%o' $(( 0$(stat -c %a "$POPRELAY_DIR") & 02770 )))"
is "stamp contents" "$(sed 3d "$s")" "user alice
uid 0
service pop3
local 127.0.0.1:110
via TCPREMOTEIP"
ino1=$(stat -c %i "$s")
touch -d '@1000000000' "$s"
t pw TCPREMOTEIP=192.0.2.9 USER=bob
expect_grep "a login from an expired address is a new grant" 7 "granted 192.0.2.9 to bob"
is "the stamp was replaced, not edited" "$([ "$(stat -c %i "$s")" != "$ino1" ] && echo replaced)" replaced
is "no temp file left behind" "$(find "$POPRELAY_DIR" -name '.tmp.*' | wc -l | tr -d ' ')" 0
# a reader never sees a partial stamp, while logins rewrite it
( i=0; while [ $i -lt 300 ]; do env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.9 USER=loop pop3-wrapper true 2>/dev/null; i=$((i+1)); done ) &
writer=$!
partial=0; reads=0
while kill -0 $writer 2>/dev/null && [ $reads -lt 3000 ]; do
  c=$(cat "$s" 2>/dev/null) || { partial=$((partial+1)); continue; }
  case $c in "user loop"*"via TCPREMOTEIP") ;; "user bob"*"via TCPREMOTEIP") ;; *) partial=$((partial+1)) ;; esac
  reads=$((reads+1))
done
wait $writer
is "300 refreshes against $reads reads: never a missing or partial stamp" "$partial" 0
# a symlink where the stamp goes is replaced, never followed
fresh
grant 192.0.2.10
s=$(stampfile 192.0.2.10)
echo "outside" > "$T/outside"
rm "$s"; ln -s "$T/outside" "$s"
t pw TCPREMOTEIP=192.0.2.10 USER=alice
expect_grep "a symlink at the stamp's name" 7 "granted 192.0.2.10"
is "the file the symlink pointed to is untouched" "$(cat "$T/outside")" outside
is "the stamp is a regular file now" "$([ -f "$s" ] && [ ! -L "$s" ] && echo regular)" regular

# --- a refresh does not ask for a rebuild; a new grant does, at once ---
fresh
relay-open -v -w > "$T/svc.log" 2>&1 &
svc=$!; pids="$pids $svc"
waitfor "service up" 100 relay_open_listening
waitfor "first build" 100 grep -q built "$T/svc.log"
t pw TCPREMOTEIP=192.0.2.11 USER=alice
expect "with the service listening: one log line per grant" 7 "pop3-wrapper: info: granted 192.0.2.11 to alice uid 0
session"
waitfor "rebuild after the new grant" 100 sh -c "[ \$(grep -c built '$T/svc.log') -ge 2 ]"
is "the new grant is in the cdb" "$(decision 192.0.2.11 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
builds=$(grep -c built "$T/svc.log")
t pw TCPREMOTEIP=192.0.2.11 USER=alice
expect "a refresh is logged as one" 7 "pop3-wrapper: info: refreshed 192.0.2.11 for alice uid 0
session"
sleep 0.3
is "a refresh of a granted address rebuilds nothing" "$(grep -c built "$T/svc.log")" "$builds"
# a second service, for a second cdb (another SMTP service) on the same
# relay directory: each has its fifo, and a login wakes both
printf ':allow,SECOND="yes"\n' > "$T/rules2"
relay-open -v -w -o "$T/second.cdb" -r "$T/rules2" > "$T/svc2.log" 2>&1 &
svc2=$!; pids="$pids $svc2"
waitfor "second service up" 100 grep -q built "$T/svc2.log"
is "two services, two fifos" "$(ls "$POPRELAY_DIR/.rebuild" | grep -c '^relay-open\.[0-9a-f]\{16\}$')" 2
pw TCPREMOTEIP=192.0.2.19 USER=alice >/dev/null
waitfor "the first cdb has the grant" 100 sh -c "TCPREMOTEIP=192.0.2.19 tcprulescheck '$POPRELAY_CDB' | grep -q RELAYCLIENT"
is "one login wakes the first service" "$(decision 192.0.2.19 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 1
waitfor "the second cdb has the grant" 100 sh -c "TCPREMOTEIP=192.0.2.19 tcprulescheck '$T/second.cdb' | grep -q RELAYCLIENT"
is "and the second, whose cdb gets the grant with its own rules' variables" "$(decision 192.0.2.19 "$T/second.cdb")" "rule 192.0.2.19: set environment variable SECOND=yes set environment variable RELAYCLIENT= allow connection"
stop $svc2
is "a service that stops takes its fifo away" "$(ls "$POPRELAY_DIR/.rebuild" | wc -l | tr -d ' ')" 1
stop $svc
is "the other too" "$(ls "$POPRELAY_DIR/.rebuild" | wc -l | tr -d ' ')" 0

# poprelay's first version made .rebuild a single fifo: a login still
# pokes one that an old service reads, and a new service replaces it
rm -r "$POPRELAY_DIR/.rebuild"; mkfifo -m 0620 "$POPRELAY_DIR/.rebuild"
sh -c 'exec dd bs=1 count=1 2>/dev/null' < "$POPRELAY_DIR/.rebuild" > "$T/oldpoke" &
old=$!
waitfor "old reader up" 40 sh -c "ls -l /proc/$old/fd 2>/dev/null | grep -q rebuild"
pw TCPREMOTEIP=192.0.2.20 USER=alice >/dev/null
wait $old
is "a single fifo of the first version is poked" "$(od -An -c "$T/oldpoke" | tr -d ' ')" '\0'
relay-open -v -w > "$T/svc.log" 2>&1 &
svc=$!; pids="$pids $svc"
waitfor "service up over the old fifo" 100 relay_open_listening
is "relay-open -w made the fifo directory in the old fifo's place" "$(stat -c %F "$POPRELAY_DIR/.rebuild")" directory
stop $svc

# --- the session always runs, whatever is wrong on the relay side ---
t env -i PATH="$PATH" POPRELAY_DIR="$T/missing" TCPREMOTEIP=192.0.2.12 pop3-wrapper sh -c 'echo session; exit 7'
expect "relay directory missing" 7 "pop3-wrapper: warning: unable to open relay directory $T/missing: No such file or directory
session"
fresh; chmod 755 "$T" "$POPRELAY_DIR"
t setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=192.0.2.13 pop3-wrapper sh -c 'echo session; exit 7'
expect_grep "another user's relay directory: no bucket of ours to write in" 7 "^pop3-wrapper: warning: not granting relaying: $POPRELAY_DIR/.. is missing, and only relay-open, relay-clean or the relay directory.s owner make buckets"
is "permission denied: the session ran" "$(printf '%s\n' "$out" | tail -1)" session
mkdir "$T/full"; mount -t tmpfs -o size=16k,nr_inodes=64 tmpfs "$T/full"
mkdir "$T/full/relay"
dd if=/dev/zero of="$T/full/filler" bs=1k count=64 2>/dev/null
t env -i PATH="$PATH" POPRELAY_DIR="$T/full/relay" TCPREMOTEIP=192.0.2.14 pop3-wrapper sh -c 'echo session; exit 7'
expect_grep "disk full" 7 "No space left on device"
is "disk full: the session ran" "$(printf '%s\n' "$out" | tail -1)" session
is "disk full: no temp file left" "$(find "$T/full/relay" -name '.tmp.*' | wc -l | tr -d ' ')" 0
umount "$T/full"
fresh
grant 192.0.2.15
s=$(stampfile 192.0.2.15); rm "$s"; mkdir "$s"
t pw TCPREMOTEIP=192.0.2.15
expect_grep "a directory where the stamp goes" 7 "unable to write stamp .*192.0.2.15: Is a directory"
rm -rf "$POPRELAY_DIR"/*; echo x > "$POPRELAY_DIR/$(basename "$(dirname "$s")")"
t pw TCPREMOTEIP=192.0.2.15
expect_grep "a file where the bucket goes" 7 "unable to open $POPRELAY_DIR/..: Not a directory"
t env -i PATH="$PATH" POPRELAY_TTL=soon TCPREMOTEIP=192.0.2.16 pop3-wrapper sh -c 'echo session; exit 7'
expect "bad POPRELAY_TTL" 7 "pop3-wrapper: warning: not granting relaying: bad POPRELAY_TTL: not a number of seconds from 1 to 31536000
session"
t env -i PATH="$PATH" POPRELAY_DIR=relative TCPREMOTEIP=192.0.2.16 pop3-wrapper sh -c 'echo session; exit 7'
expect_grep "relative POPRELAY_DIR" 7 "bad POPRELAY_DIR: not an absolute path"
t env -i PATH="$PATH" TCPREMOTEIP=192.0.2.16 pop3-wrapper -t x sh -c 'echo session; exit 7'
expect_grep "bad -t" 7 "not granting relaying: bad -t TTL: not a number"
t pop3-wrapper -d "$POPRELAY_DIR" /nonexistent/program
expect "the next program does not exist: 127" 127 "pop3-wrapper: warning: not granting relaying: the socket on fd 0: no client address: no TCPREMOTEIP, SSLREMOTEIP, IP or REMOTE_HOST, and fd 0 is not a TCP socket
pop3-wrapper: fatal: unable to exec /nonexistent/program: No such file or directory"
t env TCPREMOTEIP=bad pop3-wrapper "$T/outside"
expect_grep "the next program is not executable: 126" 126 "unable to exec $T/outside: Permission denied"
t pop3-wrapper
expect "no program: usage, 100" 100 "pop3-wrapper: usage: pop3-wrapper [ -q ] [ -d dir ] [ -t ttl ] [ -k skew ] [ -n never ] [ -L 0|1 ] [ -h hold ] [ -s service ] prog..."
t pop3-wrapper -x true
expect_grep "unknown option: usage, 100" 100 "^pop3-wrapper: usage: "
t env TCPREMOTEIP=192.0.2.17 pop3-wrapper -d "$POPRELAY_DIR" sh -c 'echo "$0 $1"; ls -l /proc/self/fd/ | grep -c " -> "' one
is "argv and descriptors reach the session untouched" "$out" "$(printf 'pop3-wrapper: info: granted 192.0.2.17 to ? uid 0\n%s\n' "$NOSVC"; sh -c 'echo "$0 $1"; ls -l /proc/self/fd/ | grep -c " -> "' one)"
# a closed 0, 1 or 2 is closed for the session too
probe='for fd in 0 1 2; do if [ -e /proc/self/fd/$fd ]; then printf "$fd open " >&3; else printf "$fd closed " >&3; fi; done'
is "a closed descriptor 0 reaches the session closed" "$(env TCPREMOTEIP=192.0.2.18 pop3-wrapper -q -d "$POPRELAY_DIR" sh -c "$probe" 3>&1 0>&- 2>/dev/null)" "0 closed 1 open 2 open "
is "a closed descriptor 1 reaches the session closed" "$(env TCPREMOTEIP=192.0.2.18 pop3-wrapper -q -d "$POPRELAY_DIR" sh -c "$probe" 3>&1 1>&- 2>/dev/null)" "0 open 1 closed 2 open "
is "a closed descriptor 2 reaches the session closed" "$(env TCPREMOTEIP=192.0.2.18 pop3-wrapper -q -d "$POPRELAY_DIR" sh -c "$probe" 3>&1 2>&-)" "0 open 1 open 2 closed "

# --- forgery: a set-gid pop3-wrapper run by a local user ---
# The group is a number no account uses; the user is nobody, outside it.
G=4242
mkdir -p "$T/sbin"; cp "$BIN/pop3-wrapper" "$T/sbin/pop3-wrapper"
chgrp $G "$T/sbin/pop3-wrapper"; chmod 2755 "$T/sbin/pop3-wrapper"
rm -rf "$POPRELAY_DIR"; mkdir -p "$POPRELAY_DIR"; chgrp $G "$POPRELAY_DIR"; chmod 2770 "$POPRELAY_DIR"
chmod 755 "$T"
SG=$T/sbin/pop3-wrapper
asuser () { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
t asuser env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=203.0.113.5 "$SG" sh -c 'echo session'
expect "forged TCPREMOTEIP, fd 0 not a socket: refused" 0 "pop3-wrapper: warning: not granting relaying: the socket on fd 0: fd 0 is not a connected TCP socket
session"
background tcpserver -H -R -l test 127.0.0.1 2602 cat 2>>"$T/servers.log"
srv=$lastpid
waitfor "tcpserver up" 40 tcpclient -H -R -l test 127.0.0.1 2602 true
t asuser tcpclient -H -R -l test 127.0.0.1 2602 sh -c "exec env -i PATH='$PATH' POPRELAY_DIR='$POPRELAY_DIR' TCPREMOTEIP=203.0.113.5 '$SG' sh -c 'echo session' <&6"
expect "a socket the user connected (an ephemeral port): refused" 0 "pop3-wrapper: warning: not granting relaying: the socket on fd 0: the socket on fd 0 is not on a privileged port, so any user could have made it
session"
stop $srv
t asuser sh -c "echo x > '$POPRELAY_DIR/203.0.113.5'"
expect_grep "the user cannot write into the relay directory" 2 "Permission denied"
mkdir -p "$T/own"; chown 65534 "$T/own"
t asuser env -i PATH="$PATH" POPRELAY_DIR="$T/own" "$SG" true
expect_grep "POPRELAY_DIR pointing at the user's own directory: refused" 0 "pop3-wrapper: warning: not granting relaying: \|not a directory of pop3-wrapper's group"
t asuser env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" "$SG" sh -c 'id -G; id -g'
is "the session does not keep the relay group" "$(printf '%s\n' "$out" | tail -2 | tr '\n' ' ')" "65534 65534 "
is "no stamp from any forgery" "$(find "$POPRELAY_DIR" -type f | wc -l | tr -d ' ')" 0
# the real thing: root's tcpserver on a privileged port, the session as
# the mail user (as checkpassword leaves it), variables forged or not
background tcpserver -H -R -l test 127.0.0.1 110 setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" TCPREMOTEIP=203.0.113.5 USER=nobody "$SG" sh -c 'echo session' 2>>"$T/servers.log"
srv=$lastpid
waitfor "tcpserver on 110" 40 tcpclient -H -R -l test -i 127.0.0.2 127.0.0.1 110 true
rm -rf "$POPRELAY_DIR"/*
out=$(tcpclient -H -R -l test -i 127.0.0.10 127.0.0.1 110 sh -c 'cat <&6' 2>&1)
no "set-gid, the buckets not made yet: no grant (the user may not make them)" stampfile 127.0.0.10
ok "and no bucket owned by the user" test -z "$(find "$POPRELAY_DIR" -user 65534)"
relay-open >/dev/null 2>&1   # the services make the buckets
out=$(tcpclient -H -R -l test -i 127.0.0.10 127.0.0.1 110 sh -c 'cat <&6' 2>&1)
is "set-gid in a real chain: the session runs" "$out" session
ok "set-gid in a real chain: the client's real address is granted" stampfile 127.0.0.10
no "set-gid in a real chain: the forged variable is ignored" stampfile 203.0.113.5
is "set-gid: the stamp records the real uid" "$(grep '^uid ' "$(stampfile 127.0.0.10)")" "uid 65534"
is "set-gid: the stamp is in a bucket of the relay directory's owner, not the user's" "$(stat -c %u:%g "$(dirname "$(stampfile 127.0.0.10)")")" "0:$G"
# a relay directory that lets others in: refused, whatever else is right
for m in 2775 2771 2772; do
  chmod $m "$POPRELAY_DIR"
  out=$(tcpclient -H -R -l test -i 127.0.0.13 127.0.0.1 110 sh -c 'cat <&6' 2>&1)
  no "set-gid, relay directory mode $m (others let in): no grant" stampfile 127.0.0.13
  ok "set-gid, relay directory mode $m: the log says why" grep -q "not granting relaying: $POPRELAY_DIR must be a directory of pop3-wrapper's group that gives others no permission (mode 2770)" "$T/servers.log"
  : > "$T/servers.log"
done
chmod 2770 "$POPRELAY_DIR"
# a bucket a user owns (as an older pop3-wrapper made them), with a stamp
# planted in it: it grants nothing, pop3-wrapper does not write in it, and
# the next build replaces it, contents and all
b=$(dirname "$(stampfile 127.0.0.10)")
chown 65534 "$b"; chmod 2777 "$b"
printf 'user mallory\n' > "$b/127.0.0.10.planted"
for a in $(seq 1 60); do a=198.51.100.$a; echo "bucket $a" | "$BIN/tests/unit/t-stamp" | grep -q " $(basename "$b")\$" && break; done
printf 'user mallory\n' > "$b/$a"
t relay-open
expect_grep "a bucket the user owns: relay-open says its stamps grant nothing" 0 "skipping $b: a bucket whose owner or mode is not the relay directory's: its stamps grant nothing"
is "a bucket the user owns: the planted stamp grants nothing" "$(decision $a "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
is "a bucket the user owns: nor the stamp a login wrote there" "$(decision 127.0.0.10 "$POPRELAY_CDB" | grep -c RELAYCLIENT)" 0
is "and the build replaced it: the relay directory's owner, no planted stamp" "$(stat -c %u:%g:%a "$b") $(ls -A "$b" | wc -l | tr -d ' ')" "0:$G:2770 0"
chown 65534 "$b"
out=$(tcpclient -H -R -l test -i 127.0.0.10 127.0.0.1 110 sh -c 'cat <&6' 2>&1)
ok "set-gid: a bucket of the user's is not written in" grep -q "not granting relaying: $b has an owner, group or mode that relay-open does not give a bucket" "$T/servers.log"
relay-open >/dev/null 2>&1
# a user with the right to bind low ports (authbind, a setcap'd
# interpreter) runs a server of their own on one: the socket was not
# accepted by root
background setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps +net_bind_service --ambient-caps +net_bind_service \
  tcpserver -H -R -l test 127.0.0.1 99 env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" "$SG" sh -c 'echo session' 2>>"$T/servers.log"
usersrv=$lastpid
waitfor "the user's server on 99" 40 tcpclient -H -R -l test -i 127.0.0.2 127.0.0.1 99 true
out=$(tcpclient -H -R -l test -i 127.0.0.14 127.0.0.1 99 sh -c 'cat <&6' 2>&1)
is "a privileged port that a user's server accepted on: the session runs" "$out" session
no "a privileged port that a user's server accepted on: no grant" stampfile 127.0.0.14
ok "and the log says why" grep -q "not granting relaying: the socket on fd 0: it was accepted by uid 65534, not by root" "$T/servers.log"
stop $usersrv
# a socket accepted in another network namespace, whose peer address its
# owner chose, handed to pop3-wrapper in this one
outer=$$
cat > "$T/inner.sh" <<EOS
ip link set lo up
tcpserver -H -R -l test 127.0.0.1 110 nsenter --net=/proc/$outer/ns/net setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" "$SG" sh -c 'echo session' &
p=\$!
i=0; while [ \$i -lt 40 ] && ! tcpclient -H -R -l test 127.0.0.1 110 true 2>/dev/null; do sleep 0.05; i=\$((i+1)); done
tcpclient -H -R -l test -i 127.0.0.11 127.0.0.1 110 sh -c 'cat <&6'
kill \$p; wait \$p
EOS
t unshare -n sh "$T/inner.sh"
expect_grep "a socket from another network namespace: refused" 0 "belongs to another network namespace"
no "a socket from another network namespace: no stamp" stampfile 127.0.0.11
start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start
out=$(tcpclient -H -R -l test -i 127.0.0.12 127.0.0.1 110 sh -c 'cat <&6' 2>&1)
echo "$start" > /proc/sys/net/ipv4/ip_unprivileged_port_start
no "ip_unprivileged_port_start=0: nothing proves the socket is a server's, no grant" stampfile 127.0.0.12
is "ip_unprivileged_port_start=0: the session still runs" "$out" session
stop $srv

done_testing
