# tests/lib.sh: what every test script sources.
#
# A case is a description, a command, and what it must print and exit
# with. "t" runs a command and keeps its output (stdout and stderr
# together, in order) in $out and its exit status in $rc; "expect" compares
# them with what was wanted; "ok" and "is" check a condition or a value.
# A failing case prints one line saying what was wanted and what came,
# then the output, indented, so that it can be debugged from the log.
#
# Set by tests/run: BIN (the programs), TOP (the source tree), RESULTS
# (where the counts go). Each script gets its own scratch directory $T.

set -u
: "${BIN:?run tests through tests/run}"
: "${TOP:?run tests through tests/run}"
: "${RESULTS:?run tests through tests/run}"
SCRIPT=$(basename "$0")
T=$(mktemp -d "${TMPDIR:-/tmp}/poprelay-test.XXXXXX")
PATH="$BIN:$PATH"
export PATH
passed=0
failed=0
pids=""

cleanup () {
  for p in $pids; do kill "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  pids=""
  cd / && { [ -n "${KEEP:-}" ] || rm -rf "$T"; }
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass () { passed=$((passed + 1)); }
fail () {
  failed=$((failed + 1))
  printf 'FAIL %s: %s\n' "$SCRIPT" "$1"
  shift
  for line in "$@"; do printf '%s\n' "$line" | sed 's/^/    /'; done
}

# t cmd args...: run, keep output and status
t () {
  out=$("$@" 2>&1)
  rc=$?
}

# expect DESC RC [OUTPUT]: the last t exited RC and printed exactly OUTPUT
# (when OUTPUT is given)
expect () {
  if [ "$rc" != "$2" ]; then
    fail "$1" "wanted exit $2, got $rc; output:" "$out"
  elif [ $# -ge 3 ] && [ "$out" != "$3" ]; then
    fail "$1" "wanted output:" "$3" "got:" "$out"
  else
    pass
  fi
}

# expect_grep DESC RC PATTERN: the last t exited RC and its output matches
expect_grep () {
  if [ "$rc" != "$2" ]; then
    fail "$1" "wanted exit $2, got $rc; output:" "$out"
  elif ! printf '%s\n' "$out" | grep -q -e "$3"; then
    fail "$1" "wanted output matching: $3" "got:" "$out"
  else
    pass
  fi
}

# ok DESC cmd args...: the command succeeds
ok () {
  d=$1; shift
  if o=$("$@" 2>&1); then pass; else fail "$d" "command failed: $*" "$o"; fi
}

# no DESC cmd args...: the command fails
no () {
  d=$1; shift
  if o=$("$@" 2>&1); then fail "$d" "command succeeded, wanted a failure: $*" "$o"; else pass; fi
}

# is DESC GOT WANT
is () {
  if [ "$2" = "$3" ]; then pass; else fail "$1" "wanted:" "$3" "got:" "$2"; fi
}

# background cmd...: start a server and remember its pid, to stop it
# by that pid (never by name) when the script ends
background () {
  "$@" &
  pids="$pids $!"
  lastpid=$!
}

# stop PID: end a process this script started, and wait for it: SIGTERM,
# then after 10 s SIGKILL (said on standard error), so that a process
# that will not stop never holds the suite up
stop () {
  kill "$1" 2>/dev/null
  i=0
  while kill -0 "$1" 2>/dev/null && [ -n "$(ps -o stat= -p "$1" | grep -v '^Z')" ] && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
  done
  if [ $i = 200 ]; then
    echo "$(basename "$0"): process $1 still ran 10 s after SIGTERM: killing it" >&2
    kill -KILL "$1" 2>/dev/null
  fi
  wait "$1" 2>/dev/null
  pids=$(printf '%s\n' $pids | grep -vx "$1" | tr '\n' ' ')
}

# waitfor DESC TRIES cmd...: retry cmd every 0.05 s, at most TRIES times
waitfor () {
  d=$1; n=$2; shift 2
  i=0
  while [ "$i" -lt "$n" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
    i=$((i + 1))
  done
  return 1
}

# decision IP CDB [other variables...]: what tcpserver would do for a
# client at IP, in one line, judged by tcprulescheck itself
decision () {
  ip=$1; cdb=$2; shift 2
  env -i PATH="$PATH" TCPREMOTEIP="$ip" "$@" ${TCPRULESCHECK:-tcprulescheck} "$cdb" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

# relay_open_listening [DIR]: a relay-open -w service has its fifo in
# DIR/.rebuild (default: the test's relay directory)
relay_open_listening () {
  ls "${1:-$POPRELAY_DIR}/.rebuild" 2>/dev/null | grep -q '^relay-open\.'
}

# holders EXE: the pids of the running processes whose program is EXE,
# a copy of pop3-wrapper of the test's own: its holders (pop3-wrapper -h),
# since a session runs another program
holders () {
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done | tr '\n' ' ' | sed 's/ $//'
}

done_testing () {
  echo "$passed $failed" >> "$RESULTS"
}

# A relay directory, cache and cdb of the script's own, for the programs
# to find through their variables.
setup_relay () {
  mkdir -p "$T/relay"
  POPRELAY_DIR=$T/relay POPRELAY_CACHE=$T/cache POPRELAY_RULES=$T/rules POPRELAY_CDB=$T/rules.cdb
  export POPRELAY_DIR POPRELAY_CACHE POPRELAY_RULES POPRELAY_CDB
  [ -f "$T/rules" ] || : > "$T/rules"
}

# grant ADDR [USER]: a login from ADDR, through pop3-wrapper
grant () {
  env -u PROTO -u SSLREMOTEIP -u IP -u REMOTE_HOST TCPREMOTEIP="$1" USER="${2:-user}" pop3-wrapper true >/dev/null 2>&1
}

# stampfile ADDR: the path of ADDR's stamp
stampfile () {
  for f in "$POPRELAY_DIR"/*/"$1"; do [ -e "$f" ] && { echo "$f"; return 0; }; done
  return 1
}

# age ADDR SECONDS: make ADDR's stamp SECONDS old (negative: in the
# future), by renaming a copy over it, as a refresh does
age () {
  f=$(stampfile "$1") || return 1
  cp "$f" "$f.aging" && touch -d "@$(( $(date +%s) - $2 ))" "$f.aging" && mv "$f.aging" "$f"
}

# --- end-to-end: real mail servers on loopback ---
#
# The mail host of the end-to-end scripts, all in $T: the user alice
# (password "secret", uid E2E_UID) with two messages in her Maildir, the
# password file of cvm-pwfile, pop3-wrapper installed set-gid to the group
# E2E_GID as README step 2 says (E2E_WRAPPER), with the relay directory of
# that group, and a qmail home for mailfront's SMTP front end. E2E_U6 holds
# Debian's ucspi-tcp-ipv6 programs. The static rules give
# every client QMAILQUEUE, pointing at a stand-in for qmail-queue that
# keeps each message and the variables its session ran with in $T/queue,
# so that a test sees what tcpserver -x gave the session. No account is
# made: the ids are numbers that no account uses.
E2E_UID=4300
E2E_GID=4242
E2E_U6=$TOP/.deps/ucspi-tcp-ipv6/usr/bin

e2e_setup () {
  chmod 755 "$T"
  mkdir -p "$T/home/alice/Maildir/new" "$T/home/alice/Maildir/cur" "$T/home/alice/Maildir/tmp"
  printf 'From: bob@example.net\nTo: alice@example.org\nSubject: first\n\nHello.\n' > "$T/home/alice/Maildir/new/1000000001.1.host"
  printf 'From: carol@example.net\nTo: alice@example.org\nSubject: second\n\nHello again,\nCarol\n' > "$T/home/alice/Maildir/new/1000000002.1.host"
  chown -R "$E2E_UID:$E2E_UID" "$T/home"
  echo "alice:secret:$E2E_UID:$E2E_UID:Alice:$T/home/alice:/bin/sh" > "$T/pwfile"
  chmod 600 "$T/pwfile"
  CVM_PWFILE_PATH=$T/pwfile
  export CVM_PWFILE_PATH
  mkdir -p "$T/sbin"
  cp "$BIN/pop3-wrapper" "$T/sbin/pop3-wrapper"
  chgrp "$E2E_GID" "$T/sbin/pop3-wrapper"
  chmod 2755 "$T/sbin/pop3-wrapper"
  E2E_WRAPPER=$T/sbin/pop3-wrapper
  setup_relay
  chgrp "$E2E_GID" "$POPRELAY_DIR"
  chmod 2770 "$POPRELAY_DIR"
  mkdir -p "$T/qmail/control" "$T/queue"
  echo example.org > "$T/qmail/control/rcpthosts"
  cat > "$T/qmail/queue" <<EOQ
#!/bin/sh
# a stand-in for qmail-queue: the message on fd 0, the envelope on fd 1
n=$T/queue/\$\$
cat > "\$n.msg"
tr '\\0' '\\n' <&1 > "\$n.env"
echo "RELAYCLIENT=\${RELAYCLIENT-(unset)} MARK=\${MARK-(unset)}" > "\$n.vars"
EOQ
  chmod 755 "$T/qmail/queue"
  cat > "$POPRELAY_RULES" <<EOR
# the static SMTP rules: a denied client, and the content scanner for all
127.0.0.9:deny
:allow,QMAILQUEUE="$T/qmail/queue",MARK="static rules"
EOR
  e2e_buckets
}

# e2e_buckets: the services make the buckets, with the relay directory's
# owner, group and mode (relaydir.h): one build makes them, anew when the
# relay directory changed hands, and one more a second later takes them
# into the scan cache, so that the first logins' rebuilds do not read 256
# new buckets
e2e_buckets () {
  relay-open >/dev/null 2>&1
  sleep 1.1
  relay-open >/dev/null 2>&1
}

# e2e_listing: what pop3front-maildir lists for alice's Maildir
e2e_listing () {
  i=0
  for f in "$T"/home/alice/Maildir/new/*; do
    i=$((i + 1))
    echo "$i $(wc -c < "$f" | tr -d ' ')"
  done
}

# e2e_listening PORT: something listens on that TCP port
e2e_listening () {
  [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# e2e_pop_service PORT [ADDR [TCPSERVER]]: the POP3 service of README
# step 4, with mailfront and cvm-pwfile: pop3front-auth switches to the
# mail user and runs the set-gid pop3-wrapper, which runs
# pop3front-maildir. Its log goes to $T/pop.log.
e2e_pop_service () {
  background "${3:-tcpserver}" -H -R -l pop "${2:-127.0.0.1}" "$1" \
    pop3front-auth /usr/bin/cvm-pwfile "$E2E_WRAPPER" -s pop3 pop3front-maildir ./Maildir/ 2>>"$T/pop.log"
  waitfor "POP3 service up" 100 e2e_listening "$1"
}

# e2e_smtp_service PORT [ADDR [TCPSERVER]]: the SMTP service of README
# step 6, with mailfront's smtpfront-qmail in the place of qmail-smtpd:
# the relayclient plugin lets RELAYCLIENT relay, qmail-validate accepts
# the domains in control/rcpthosts. Its log goes to $T/smtp.log.
e2e_smtp_service () {
  background env QMAILHOME="$T/qmail" "${3:-tcpserver}" -H -R -l smtp -x "$POPRELAY_CDB" "${2:-127.0.0.1}" "$1" \
    smtpfront-qmail relayclient qmail-validate 2>>"$T/smtp.log"
  waitfor "SMTP service up" 100 e2e_listening "$1"
}

# e2e_relay_open_service [OPTIONS]: relay-open -v -w, as README step 5
# runs it, its log in $T/relay-open.log, its pid in relay_open_pid;
# returns once its first build is done
e2e_relay_open_service () {
  background relay-open -v -w "$@" 2>>"$T/relay-open.log"
  relay_open_pid=$lastpid
  waitfor "relay-open -w built" 100 grep -q 'built' "$T/relay-open.log"
}

# e2e_login FROM PORT [USER [PASSWORD [SERVER [SCHEME]]]]: curl logs in
# from the address FROM and lists the mailbox (POP3) or searches it
# (IMAP); curl's output and exit status, and a "client-error:" or
# "unreachable:" line as e2e_swaks gives
e2e_login () {
  path=
  [ "${6:-pop3}" = imap ] && path='INBOX?ALL'
  got=$(curl -sS -g --max-time 10 --interface "$1" "${6:-pop3}://${3:-alice}:${4:-secret}@${5:-127.0.0.1}:$2/$path" 2>&1)
  st=$?
  printf '%s\n' "$got" | tr -d '\r'
  # curl could not try (1 protocol not built in, 2 init, 3 bad URL, 4
  # feature missing, 45 bad --interface, 48 unknown option), or nothing
  # listens (7): say so on a line of its own, after curl's own message
  case $st in
    1|2|3|4|45|48) echo "client-error: curl exit $st" ;;
    7) echo "unreachable: curl exit 7" ;;
  esac
  return $st
}

# e2e_swaks ARGS...: swaks with ARGS, its transcript on standard output;
# when swaks could not even try (a missing Perl module, a bad option: exit
# 1, 3 or 10), or tried and found nothing listening (exit 2), the last line
# is "client-error: LINE" or "unreachable: LINE", LINE being swaks's own
# message, so that a failure names what is missing
e2e_swaks () {
  sw_out=$(swaks --timeout 10 "$@" 2>&1)
  sw_rc=$?
  printf '%s\n' "$sw_out"
  sw_why=$(printf '%s\n' "$sw_out" | grep -e '^\*\*\*' -e '^Unknown option' -e '^Option ' | tr '\n\t' '  ' | sed 's/  */ /g; s/ $//')
  case $sw_rc in
    1|3|10) echo "client-error: swaks exit $sw_rc: ${sw_why:-no message}" ;;
    2) echo "unreachable: ${sw_why:-no message}" ;;
  esac
}

# e2e_rcpt FROM PORT [TO [SERVER]]: an SMTP client at FROM (swaks) asks
# to send to TO (a remote address by default, so relaying); prints the
# server's reply code to RCPT TO; or "dropped" when the server accepted
# the connection and closed it before its greeting (a deny), "none" when
# it greeted and never answered RCPT; or, from e2e_swaks, "unreachable:
# WHY" when nothing listens and "client-error: WHY" when swaks could not
# run its test at all
e2e_rcpt () {
  e2e_swaks --server "${4:-127.0.0.1}" --port "$2" --local-interface "$1" \
    --helo client.example --from alice@example.org --to "${3:-bob@example.net}" --quit-after RCPT |
    awk '/^(client-error|unreachable): / { print; done = 1; exit }
         /^=== Connected to / { connected = 1 }
         /^<[-*~] +220[ -]/ { greeted = 1 }
         /^ [-~]> RCPT TO/ { rcpt = 1; next }
         rcpt && /^<[-*~]/ { print $2; done = 1; exit }
         END { if (!done) print greeted ? "none" : connected ? "dropped" : "unreachable: swaks said nothing" }'
}

# e2e_send FROM PORT TO [SERVER]: a whole message from FROM to TO, with
# the subject "from FROM"; prints the reply code to the end of DATA (or
# to the command refused), or "none", or e2e_swaks's line when swaks
# could not connect or run
e2e_send () {
  e2e_swaks --server "${4:-127.0.0.1}" --port "$2" --local-interface "$1" \
    --helo client.example --from alice@example.org --to "$3" --header "Subject: from $1" |
    awk '/^(client-error|unreachable): / { why = $0; next }
         /^<\*\* / && !code { code = $2 }
         /^ [-~]> \.$/ { dot = 1; next }
         dot && /^<[-~]/ && !code { code = $2 }
         END { print why ? why : code ? code : "none" }'
}

# e2e_queued SUBJECT: the variables that the session which queued the
# message with that subject ran with
e2e_queued () {
  f=$(grep -l "^Subject: $1\$" "$T"/queue/*.msg 2>/dev/null | head -1)
  [ -n "$f" ] && cat "${f%.msg}.vars"
}
