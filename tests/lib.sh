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
  cd / && rm -rf "$T"
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

# stop PID: end a process this script started, and wait for it
stop () {
  kill "$1" 2>/dev/null
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
