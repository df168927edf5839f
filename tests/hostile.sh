# hostile: every program given missing, empty, huge, binary and
# conflicting arguments, and junk in every POPRELAY_* variable it reads,
# answers with one clear line and the exit status its man page documents
# (100 for usage and settings); pop3-wrapper runs the session whatever is
# wrong on the relay side, and exits 100 only for its own usage. Hostile
# client variables (a huge or binary address, user or service, closed
# descriptors) never grant anything they should not, never make two log
# lines of one.

. "$TOP/tests/lib.sh"
cd "$T" || exit 1   # nothing a slip could write lands in the source tree
setup_relay
unset PROTO TCPREMOTEIP SSLREMOTEIP IP REMOTE_HOST TCPLOCALIP TCPLOCALPORT LOCAL_IP USER SERVICE AUTHORIZED 2>/dev/null
printf '127.:allow,RELAYCLIENT=""\n:allow,QMAILQUEUE="/bin/scan"\n' > "$T/rules"
relay-open >/dev/null 2>&1
cp "$T/rules.cdb" "$T/start.cdb"

HUGE=/$(head -c 100000 /dev/zero | tr '\0' x)
BIN2=$(printf '\001\377\033[2J')
NL=$(printf '1\nrelay-open: info: forged')
LF='
'

# oneline DESC RC PATTERN: the last t exited RC with exactly one line
# of output, matching PATTERN, at most 300 bytes, printable
oneline () {
  if [ "$rc" != "$2" ]; then
    fail "$1" "wanted exit $2, got $rc:" "$out"
  elif [ "$(printf '%s\n' "$out" | wc -l)" != 1 ]; then
    fail "$1" "wanted one line, got:" "$out"
  elif ! printf '%s\n' "$out" | grep -q -e "$3"; then
    fail "$1" "wanted a line matching: $3" "got: $out"
  elif [ "${#out}" -gt 300 ] || printf '%s' "$out" | LC_ALL=C grep -q '[^ -~]'; then
    fail "$1" "wanted a short printable line, got ${#out} bytes:" "$(printf '%s' "$out" | head -c 300 | od -c | head -5)"
  else
    pass
  fi
}

# --- relay-open and relay-clean: usage ---
for p in relay-open relay-clean; do
  t $p -d;           oneline "$p: an option without its value" 100 "^$p: usage: $p "
  t $p -Z;           oneline "$p: an unknown option" 100 "^$p: usage: $p "
  t $p -$BIN2;       oneline "$p: an option of binary bytes" 100 "^$p: usage: $p "
  t $p -t "";        oneline "$p: an empty value" 100 "^$p: fatal: bad -t : not a number of seconds"
  t $p -d "";        oneline "$p: an empty path" 100 "^$p: fatal: bad -d : not an absolute path"
  t $p -d "$HUGE";   oneline "$p: a path of 100 kB" 100 "^$p: fatal: bad -d /xxxx*\\.\\.\\.: too long$"
  t $p -t "$BIN2";   oneline "$p: a binary value is shown with ? for each byte" 100 "^$p: fatal: bad -t ???\\[2J: not a number"
  t $p -t "$NL";     oneline "$p: a newline in a value does not make a second line" 100 "^$p: fatal: bad -t 1?relay-open: info: forged: not a number"
  t $p -d "$T/a${LF}b"; oneline "$p: a path with a newline is refused" 100 "^$p: fatal: bad -d .*: holds a control character$"
  t $p -k 3601;      oneline "$p: a skew past an hour" 100 "^$p: fatal: bad -k 3601: not a number of seconds from 0 to 3600$"
  t $p -t 31536001;  oneline "$p: a TTL past a year" 100 "^$p: fatal: bad -t 31536001: not a number of seconds from 1 to 31536000$"
  t $p -t 18446744073709551617; oneline "$p: a TTL past 2^64" 100 "^$p: fatal: bad -t 18446744073709551617: not a number"
done
t relay-open extra;    oneline "relay-open: an operand" 100 "^relay-open: usage: "
t relay-open -w -l;    oneline "relay-open: -w with -l" 100 "^relay-open: usage: "
t relay-open -l -w;    oneline "relay-open: -l with -w" 100 "^relay-open: usage: "
t relay-clean -w -n;   oneline "relay-clean: -w with -n" 100 "^relay-clean: usage: "
t relay-clean -n -w;   oneline "relay-clean: -n with -w" 100 "^relay-clean: usage: "
t relay-open -T ucspi-tcp6;  oneline "relay-open: an unknown tcpserver" 100 "^relay-open: fatal: bad -T ucspi-tcp6: not ucspi-tcp, ucspi-tcp-ipv6 or s6-networking$"
t relay-open -n "10.0.0.0/8 $BIN2"; oneline "relay-open: a binary never-grant entry" 100 "^relay-open: fatal: bad -n .*this entry is not an address.*: ???\\[2J$"
t relay-open -e "$HUGE"; oneline "relay-open: 100 kB of extra variables" 100 "^relay-open: fatal: bad -e /xxx*\\.\\.\\.: expected a comma"
t relay-open -e ",A=\"x"; oneline "relay-open: an unclosed value" 100 "^relay-open: fatal: bad -e ,A=\"x: a value is not closed by its delimiter$"
ok "after all that, the cdb is the one from before" cmp "$T/rules.cdb" "$T/start.cdb"

# --- junk in every variable a program reads: 100, one line, nothing done ---
grant 192.0.2.1; age 192.0.2.1 100000
for p in relay-open relay-clean; do
  vars=$(sed -n '/vars\[\] = {/,/}/p' "$TOP/$p.c" | grep -o 'POPRELAY_[A-Z]*')
  for v in $vars; do
    for junk in relative "$BIN2" "$HUGE" "$NL" "-1"; do
      t env "$v=$junk" $p
      oneline "$p: $v=$(printf '%s' "$junk" | head -c 12 | tr -c '[:alnum:]/-' '?') is refused" 100 "^$p: fatal: bad $v: "
    done
  done
done
# what a program does not read does not stop it
t env POPRELAY_GRACE=junk POPRELAY_TYPO=junk relay-open
expect "relay-open: ignores POPRELAY_GRACE and names it does not know" 0 ""
t env POPRELAY_ENV=junk POPRELAY_TCPRULES=junk POPRELAY_NEVER=junk POPRELAY_CDB=junk POPRELAY_RULES=junk POPRELAY_TYPO=junk relay-clean -n -q
expect_grep "relay-clean: ignores the variables it does not read" 0 "^would remove $POPRELAY_DIR/../192.0.2.1 (expired)$"
ok "junk settings removed nothing" stampfile 192.0.2.1
ok "junk settings left the cdb as it was" cmp "$T/rules.cdb" "$T/start.cdb"
t env POPRELAY_NEVER= POPRELAY_ENV= relay-open
expect "relay-open: an empty never list and an empty extra list are allowed" 0 ""
# an option wins over its variable
grant 192.0.2.2; age 192.0.2.2 90
t env POPRELAY_TTL=60 relay-open -t 120
is "-t wins over POPRELAY_TTL" "$(decision 192.0.2.2 "$T/rules.cdb" | grep -c RELAYCLIENT)" 1
t env POPRELAY_TTL=120 relay-open -t 60
is "and the other way round" "$(decision 192.0.2.2 "$T/rules.cdb" | grep -c RELAYCLIENT)" 0

# --- services that cannot start ---
t relay-open -w -d "$T/missing"
oneline "relay-open -w: a missing relay directory, exit 111" 111 "^relay-open: fatal: unable to open relay directory $T/missing: No such file or directory$"
t relay-clean -w -d "$T/missing"
expect_grep "relay-clean -w: a missing relay directory, exit 111" 111 "^relay-clean: fatal: unable to open relay directory $T/missing"

# --- relay-clean's program ---
t relay-clean -q "$T/no-such-program"
oneline "relay-clean: a program that does not exist, 127" 127 "^relay-clean: fatal: unable to exec $T/no-such-program: No such file or directory$"
t relay-clean -q "$T/rules"
oneline "relay-clean: a program that is not executable, 126" 126 "^relay-clean: fatal: unable to exec $T/rules: Permission denied$"
t relay-clean -q "$T/x${LF}relay-clean: info: forged"
oneline "relay-clean: a program named with a newline: one line" 127 "^relay-clean: fatal: unable to exec $T/x?relay-clean: info: forged: No such file"
t relay-clean -q sh -c 'exit 9'
expect "relay-clean: the program's exit status is relay-clean's" 9 ""

# --- pop3-wrapper: its usage is the only thing that stops the session ---
pw () {
  env -i PATH="$PATH" POPRELAY_DIR="$POPRELAY_DIR" "$@" </dev/null 2>&1
}
SESSION="sh -c 'echo session; exit 7'"
t pw pop3-wrapper
oneline "pop3-wrapper: no program" 100 "^pop3-wrapper: usage: pop3-wrapper "
t pw pop3-wrapper -Z sh -c 'echo session'
oneline "pop3-wrapper: an unknown option" 100 "^pop3-wrapper: usage: "
t pw pop3-wrapper -d
oneline "pop3-wrapper: an option without its value" 100 "^pop3-wrapper: usage: "
t perl -e 'exec { $ARGV[0] } () or exit 120' "$BIN/pop3-wrapper"
oneline "pop3-wrapper: an empty argument list" 100 "^pop3-wrapper: usage: "
n0=$(find "$POPRELAY_DIR" -type f ! -name '.*' | wc -l)
for v in POPRELAY_DIR POPRELAY_TTL POPRELAY_SKEW POPRELAY_NEVER POPRELAY_HOLD; do
  for junk in relative "$BIN2" "$HUGE" "$NL" ""; do
    [ "$v" = POPRELAY_NEVER ] && [ -z "$junk" ] && continue   # an empty list is a good one
    t pw "$v=$junk" TCPREMOTEIP=192.0.2.50 USER=u sh -c "exec pop3-wrapper $SESSION"
    d="pop3-wrapper: $v=$(printf '%s' "$junk" | head -c 12 | tr -c '[:alnum:]/-' '?')"
    if [ "$rc" != 7 ] || [ "$(printf '%s\n' "$out" | tail -n 1)" != session ]; then
      fail "$d: the session runs" "wanted exit 7 and the session, got $rc:" "$out"
    else
      out=$(printf '%s\n' "$out" | sed '$d'); rc=0
      oneline "$d: one warning, no grant" 0 "^pop3-wrapper: warning: not granting relaying: bad $v: "
    fi
  done
done
for o in "-d relative" "-t 0" "-k -1" "-n garbage" "-h -1" "-h 604801" "-h 12h" "-h 0x10" "-h 99999999999999999999"; do
  t pw TCPREMOTEIP=192.0.2.51 sh -c "exec pop3-wrapper $o $SESSION"
  is "pop3-wrapper $o: a warning, then the session" "$rc|$(printf '%s\n' "$out" | grep -c '^pop3-wrapper: warning: not granting relaying: bad -')|$(printf '%s\n' "$out" | tail -n 1)" "7|1|session"
done
t pw TCPREMOTEIP=192.0.2.52 pop3-wrapper -t "$NL" true
oneline "pop3-wrapper: a newline in an option: one line" 0 "^pop3-wrapper: warning: not granting relaying: bad -t TTL: not a number"
t pw TCPREMOTEIP=192.0.2.52 pop3-wrapper -h "$NL" true
oneline "pop3-wrapper: a newline in -h: one line" 0 "^pop3-wrapper: warning: not granting relaying: bad -h HOLD: not a number of seconds from 0 (no hold) to 604800$"
t pw TCPREMOTEIP=192.0.2.52 POPRELAY_HOLD=60 pop3-wrapper -h "$BIN2" true
oneline "pop3-wrapper: a binary -h wins over a good POPRELAY_HOLD, and grants nothing" 0 "^pop3-wrapper: warning: not granting relaying: bad -h HOLD: not a number"
is "bad settings: no stamp" "$(find "$POPRELAY_DIR" -type f ! -name '.*' | wc -l)" "$n0"
t pw TCPREMOTEIP=192.0.2.52 pop3-wrapper "$T/x${LF}pop3-wrapper: info: forged"
is "pop3-wrapper: a program named with a newline: 127, and its message one line" "$rc|$(printf '%s\n' "$out" | grep -c '^pop3-wrapper: fatal: unable to exec .*x?pop3-wrapper: info: forged: No such file or directory$')|$(printf '%s\n' "$out" | grep -vc '^pop3-wrapper: ')" "127|1|0"

# --- hostile client variables ---
for a in "$HUGE" "$BIN2" "$NL" "192.0.2.53${LF}" "192.0.2.53 " " 192.0.2.53" "192.0.2.053" "fe80::1%lo" "::ffff:192.0.2.53%0" "$(printf '192.0.2.53\001')"; do
  t pw TCPREMOTEIP="$a" USER=u pop3-wrapper true
  oneline "an address of junk ($(printf '%s' "$a" | head -c 14 | tr -c '[:alnum:].:%/' '?')): refused in one line" 0 "^pop3-wrapper: warning: not granting relaying: TCPREMOTEIP: its value is not an IPv4 or IPv6 address$"
done
no "no stamp for 192.0.2.53 from any of them" stampfile 192.0.2.53
for pr in "$HUGE" "TCP${LF}X" "tcp" "$BIN2" "TCPREMOTEIP=" "AAAAAAAAAAAAAAAAA"; do
  t pw PROTO="$pr" TCPREMOTEIP=192.0.2.54 USER=u pop3-wrapper true
  expect_grep "a PROTO of junk is passed over: TCPREMOTEIP decides" 0 "\\(granted 192.0.2.54 to\\|refreshed 192.0.2.54 for\\) u uid"
done
t pw PROTO=SSL SSLREMOTEIP="$BIN2" TCPREMOTEIP=192.0.2.55 pop3-wrapper true
oneline "PROTO naming a junk variable: that one decides, and is refused" 0 "^pop3-wrapper: warning: not granting relaying: SSLREMOTEIP: its value"
no "and the other address is not granted" stampfile 192.0.2.55
t pw TCPREMOTEIP=192.0.2.56 USER="$(printf 'eve\npop3-wrapper: info: granted 6.6.6.6 to x uid 0')" SERVICE="$HUGE" TCPLOCALIP="$BIN2" TCPLOCALPORT=99999 pop3-wrapper true
expect_grep "a user name with a newline: the name escaped" 0 "^pop3-wrapper: info: granted 192.0.2.56 to eve\\\\x0apop3-wrapper:\\\\x20info:\\\\x20granted\\\\x206.6.6.6\\\\x20to\\\\x20x\\\\x20uid\\\\x200 uid 0$"
is "a user name with a newline: two events, two lines (the grant, no service)" "$(printf '%s\n' "$out" | wc -l | tr -d ' ')|$(printf '%s\n' "$out" | grep -vc '^pop3-wrapper: ')" "2|0"
s=$(stampfile 192.0.2.56)
is "the stamp holds no control byte but its line ends" "$(tr -d '\n' < "$s" | LC_ALL=C grep -c '[^ -~]')" 0
is "a junk local address is not recorded" "$(grep -c '^local ' "$s")" 0
is "a 100 kB service is cut to 255 bytes" "$(sed -n 's/^service //p' "$s" | wc -c | tr -d ' ')" 256
U=$(head -c 255 /dev/zero | tr '\0' '\314')
S=$(head -c 255 /dev/zero | tr '\0' '\377')
t pw TCPREMOTEIP=192.0.2.57 USER="$U" pop3-wrapper -s "$S" true
t relay-open -l
expect_grep "the longest stamp (every field full of bytes to escape) is read back by relay-open -l" 0 "^192.0.2.57 user=\\(\\\\xcc\\)\\{255\\} "
t sh -c "exec pop3-wrapper sh -c 'echo ran >&3; for fd in 0 1 2; do [ -e /proc/self/fd/\$fd ] && echo \$fd >&3; done' 3>\"$T/fds\" <&- >&- 2>&-"
is "closed descriptors 0, 1 and 2: the session runs with them closed, as pop3-wrapper found them" "$(cat "$T/fds")" ran
t sh -c "exec env TCPREMOTEIP=192.0.2.61 \"$BIN/tests/unit/reaper\" pop3-wrapper -h 60 -t 3 sh -c 'sleep 0.4; echo ran >&3; for fd in 0 1 2; do [ -e /proc/self/fd/\$fd ] && echo \$fd >&3; done' 3>\"$T/fds\" <&- >&- 2>&-"
is "-h, descriptors 0, 1 and 2 closed: the session runs with them closed" "$(cat "$T/fds")" ran
ok "-h, descriptors 0, 1 and 2 closed: the grant is held all the same" grep -q '^holder ' "$(stampfile 192.0.2.61)"
t pw TCPREMOTEIP=192.0.2.58 USER=u sh -c "exec pop3-wrapper true <&- >&- 2>&-"
ok "closed descriptors: the grant is still made" stampfile 192.0.2.58
is "and its stamp is whole" "$(sed -n 1p "$(stampfile 192.0.2.58)")" "user u"
t sh -c "i=0; while [ \$i -lt 3000 ]; do export JUNK\$i=\$i; i=\$((i+1)); done; exec env TCPREMOTEIP=192.0.2.59 pop3-wrapper true"
expect_grep "3000 more variables in the environment change nothing" 0 "granted 192.0.2.59"

# --- file names that would forge log lines ---
# Anyone who can put a file in the relay directory can choose its name:
# every name that reaches a message is escaped, so that one file is at
# most one line, and no line of any program can be made to appear.
FORGED=$(printf 'y\npop3-wrapper: info: granted 6.6.6.9 to root uid 0')
grant 192.0.2.60
b=$(dirname "$(stampfile 192.0.2.60)")
echo x > "$b/$FORGED"
echo x > "$POPRELAY_DIR/$FORGED"
echo x > "$b/.tmp.$FORGED"; touch -d '@1000000000' "$b/.tmp.$FORGED"
for cmd in "relay-open" "relay-clean -n" "relay-clean -g 600" "relay-open -l"; do
  t $cmd
  is "a forged name in the relay directory: $cmd writes no line of its own making" "$(printf '%s\n' "$out" | grep -c '^pop3-wrapper: info: granted 6.6.6.9')" 0
  is "a forged name: every line of $cmd is one of its own" "$(printf '%s\n' "$out" | grep -v -c -e '^relay-open: ' -e '^relay-clean: ' -e '^would ' -e '^192\.0\.2\.')" 0
done
t relay-open
expect_grep "a forged name is shown escaped" 0 "skipping $b/y\\\\x0apop3-wrapper:\\\\x20info:"
rm -f "$b/$FORGED" "$POPRELAY_DIR/$FORGED"

done_testing
