# End to end, the files of examples/ as they are: the run scripts of the
# relay-open and relay-clean services and their logs, under daemontools'
# supervise and under s6-supervise, and the crontab line, run as cron
# would. Only the envdir's path is rewritten (to one in $T). The logs go
# to /var/log and the crontab finds the programs in /usr/local/bin, so
# this script gives itself, in tests/run's private mount namespace, an
# empty /var/log and a /usr/local/bin that also holds the programs under
# test and a stand-in for logger (so that nothing reaches the host's
# syslog).

. "$TOP/tests/lib.sh"
e2e_setup
if [ "${POPRELAY_NETNS:-}" != 1 ]; then
  fail "e2e-supervise.sh mounts over /var/log and /usr/local/bin: run it through tests/run"
  done_testing
  exit 1
fi
POPRELAY_TTL=3
export POPRELAY_TTL
# README step 3, with paths of the test's own
ENVDIR=$T/etc/poprelay
mkdir -p "$ENVDIR"
echo "$POPRELAY_DIR" > "$ENVDIR/POPRELAY_DIR"
echo "$POPRELAY_RULES" > "$ENVDIR/POPRELAY_RULES"
echo "$POPRELAY_CDB" > "$ENVDIR/POPRELAY_CDB"
echo "$POPRELAY_CACHE" > "$ENVDIR/POPRELAY_CACHE"
echo "$POPRELAY_TTL" > "$ENVDIR/POPRELAY_TTL"
echo 100.64.0.0/10 > "$ENVDIR/POPRELAY_NEVER"
mkdir -p "$T/localbin"
cp "$BIN/relay-open" "$BIN/relay-clean" "$BIN/pop3-wrapper" "$T/localbin/"
printf '#!/bin/sh\n# stands in for logger(1): the lines, tagged, into a file\nsed "s/^/$2: /" >> %s/syslog\n' "$T" > "$T/localbin/logger"
chmod 755 "$T/localbin/logger"
mount -t tmpfs -o mode=755 tmpfs /var/log
mount -t overlay overlay -o "lowerdir=$T/localbin:/usr/local/bin" /usr/local/bin
trap 'umount /usr/local/bin /var/log 2>/dev/null; cleanup' EXIT
e2e_pop_service 119
e2e_smtp_service 32
listing=$(e2e_listing)

# proc_gone PID: the process has exited (gone, or a zombie to reap)
proc_gone () {
  s=$(ps -o stat= -p "$1" 2>/dev/null)
  [ -z "$s" ] || [ "${s#Z}" != "$s" ]
}
# supervised SUPERVISOR DIR: DIR and DIR/log each under a supervisor of
# their own, DIR's output piped into DIR/log's input through a fifo, as
# svscan and s6-svscan do, with nothing in the environment but PATH;
# their PIDs in svc_pid and log_pid. Under the sanitizers, the services
# check no leaks at exit: svc -d and s6-svc -d send SIGCONT right after
# SIGTERM, and a SIGCONT that lands while LeakSanitizer stops the process
# to scan it leaves the scan waiting for good (the other tests check the
# services' leaks, stopping them with SIGTERM alone)
san=""
[ -z "${ASAN_OPTIONS:-}" ] || san="ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0"
supervised () {
  mkfifo "$2.pipe"
  background sh -c 'exec env -i PATH="$1" $4 "$2" "$3/log" < "$3.pipe"' sh "$PATH" "$1" "$2" "$san"
  log_pid=$lastpid
  background sh -c 'exec env -i PATH="$1" $4 "$2" "$3" > "$3.pipe"' sh "$PATH" "$1" "$2" "$san"
  svc_pid=$lastpid
}
# story TAG N: a login from 127.0.0.N is granted at the next SMTP
# connection, and revoked by the services within a second and a half of
# its expiry
story () {
  a=127.0.0.$2
  waitfor "$1: relay-open built" 200 grep -q "relay-open: info: built $POPRELAY_CDB" /var/log/relay-open/current
  ok "$1: relay-open -w runs, its log in /var/log/relay-open with a timestamp" grep -q "^@4000[0-9a-f]* relay-open: info: built $POPRELAY_CDB" /var/log/relay-open/current
  is "$1: $a may not relay before it logs in" "$(e2e_rcpt $a 32)" 550
  t e2e_login $a 119
  expect "$1: alice logs in from $a" 0 "$listing"
  is "$1: the next SMTP connection from $a may relay" "$(e2e_rcpt $a 32)" 250
  end=$(awk -v m="$(stat -c %.9Y "$(stampfile $a)")" -v t="$POPRELAY_TTL" 'BEGIN { printf "%.3f", m + t }')
  i=0
  while [ $i -lt 100 ] && [ "$(e2e_rcpt $a 32)" = 250 ]; do i=$((i + 1)); done
  late=$(awk -v e="$end" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - e }')
  ok "$1: after the TTL, $a is refused again (${late}s after the expiry)" awk -v l="$late" 'BEGIN { exit !(l >= 0 && l < 1.5) }'
  waitfor "$1: relay-clean -w logged" 100 grep -q "relay-clean: info: removed 1 expired" /var/log/relay-clean/current
  ok "$1: relay-clean -w removed the stamp, its log in /var/log/relay-clean" grep -q "^@4000[0-9a-f]* relay-clean: info: removed 1 expired" /var/log/relay-clean/current
  no "$1: the stamp is gone" stampfile $a
}
# down TAG CTL DIR SVC-PID LOG-PID: stop a service and its log with
# CTL -dx, then reap both supervisors by their PIDs
down () {
  "$2" -dx "$3"
  waitfor "$1: $3 down" 200 proc_gone "$4"
  "$2" -dx "$3/log"
  waitfor "$1: $3/log down" 200 proc_gone "$5"
  ok "$1: $2 -dx $3 stopped its supervisor" proc_gone "$4"
  ok "$1: $2 -dx $3/log stopped its supervisor" proc_gone "$5"
  stop "$4"
  stop "$5"
}
# run_examples TAG SUPERVISOR CTL N: the story under one supervision suite
run_examples () {
  sv=$T/$1
  cp -R "$TOP/examples/$1" "$sv"
  sed -i "s|/etc/poprelay|$ENVDIR|g" "$sv"/*/run
  same=0
  for f in $(cd "$TOP/examples/$1" && find . -type f); do
    sed "s|$ENVDIR|/etc/poprelay|g" "$sv/$f" | cmp -s - "$TOP/examples/$1/$f" && same=$((same + 1))
  done
  is "$1: the files differ from the examples by the envdir's path alone" "$same" 6
  is "$1: in the three run scripts (relay-open, relay-clean, relay-publish)" "$(grep -rl "$ENVDIR" "$sv" | wc -l | tr -d ' ')" 3
  rm -rf /var/log/relay-open /var/log/relay-clean "$POPRELAY_CACHE"
  supervised "$2" "$sv/relay-open"
  open_svc=$svc_pid open_log=$log_pid
  supervised "$2" "$sv/relay-clean"
  clean_svc=$svc_pid clean_log=$log_pid
  story "$1" "$4"
  down "$1" "$3" "$sv/relay-open" "$open_svc" "$open_log"
  down "$1" "$3" "$sv/relay-clean" "$clean_svc" "$clean_log"
  ok "$1: relay-open -w was stopped, and said so in its log" grep -q "relay-open: info: stopping" /var/log/relay-open/current
}

run_examples daemontools supervise svc 5
run_examples s6 s6-supervise s6-svc 6

# --- the crontab, run as cron runs a job ---
# cron runs the command with /bin/sh, in an environment of its own plus
# the crontab's assignments
sed "s|/etc/poprelay|$ENVDIR|g" "$TOP/examples/crontab" > "$T/crontab"
assign=$(grep '^[A-Z_]*=' "$T/crontab")
job=$(grep '^[0-9*]' "$T/crontab" | cut -d' ' -f6-)
is "the crontab runs its job every minute" "$(grep -c '^\* \* \* \* \* ' "$T/crontab")" 1
cronjob () { env -i HOME=/root LOGNAME=root SHELL=/bin/sh PATH=/usr/bin:/bin $assign /bin/sh -c "$job"; }
t e2e_login 127.0.0.7 119
expect "cron: alice logs in from 127.0.0.7" 0 "$listing"
is "cron: before the job runs, 127.0.0.7 may not relay" "$(e2e_rcpt 127.0.0.7 32)" 550
t cronjob
expect "cron: the job runs" 0 ""
is "cron: after it, 127.0.0.7 may relay" "$(e2e_rcpt 127.0.0.7 32)" 250
ok "cron: its summary line went to the log, tagged" grep -q "^poprelay: relay-clean: info: removed 0 expired, 0 future-dated, 0 abandoned temp; kept 1 live" "$T/syslog"
sleep "$(awk -v e="$(stat -c %.9Y "$(stampfile 127.0.0.7)")" -v t="$POPRELAY_TTL" -v n="$(date +%s.%N)" 'BEGIN { d = e + t - n + 0.1; printf "%.3f", (d > 0 ? d : 0) }')"
t cronjob
expect "cron: the job runs after the expiry" 0 ""
is "cron: after it, 127.0.0.7 may not relay any more" "$(e2e_rcpt 127.0.0.7 32)" 550
ok "cron: it logged the removal" grep -q "^poprelay: relay-clean: info: removed 1 expired" "$T/syslog"
no "cron: the stamp is gone" stampfile 127.0.0.7

cd /
umount /usr/local/bin /var/log
done_testing
