#!/bin/sh
# bench/hosts.sh B SIZES GRANTS: login on a POP host to grant in an SMTP
# host's cdb, through relay-publish, for package/bench (which builds into
# B and calls it; run it as root). Prints one markdown table row per size
# on standard output, progress on standard error.
#
# Two hosts, each a network namespace joined by a veth pair to a bridge
# (tests/hosts.lib), addresses in 198.18.0.0/24, inside a network and
# mount namespace of the script's own: nothing reaches the machine's
# interfaces. The SMTP host runs sshd with the forced-command key of
# relay-publish(8) and relay-open -w reading the pushed directory; the POP
# host holds SIZE live grants (mkstamps) and runs relay-publish. Once the
# first full push is in, bench/grant makes GRANTS logins through
# pop3-wrapper on the POP host, in bursts of 1 to 4, 50 ms apart on
# average, and looks each address up in the SMTP host's cdb every 0.2 ms,
# as tcpserver would: the time from the login's fork to the first lookup
# that finds it. The bytes are those the POP host's interface sent during
# the logins (ssh and TCP included), over the pushes relay-publish made.
# Not a test: nothing here passes or fails but the build.

set -eu
if [ "${POPRELAY_BENCH_NS:-}" != 1 ]; then
  POPRELAY_BENCH_NS=1 exec unshare -n -m sh -c 'mount --make-rprivate / && ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
B=$1 SIZES=$2 GRANTS=$3
TOP=$(cd "$(dirname "$0")/.." && pwd)
PATH=$B:$PATH
export PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/poprelay-hosts.XXXXXX")
HOSTS_T=$T
pids=""
background () { "$@" & pids="$pids $!"; lastpid=$!; }
. "$TOP/tests/hosts.lib"
cleanup () {
  set +e    # every step, whatever the one before it returned
  hosts_stop
  for p in $pids; do kill "$p" 2>/dev/null || :; done
  for p in $pids; do wait "$p" 2>/dev/null || :; done
  cd / && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
say () { echo "bench: hosts: $*" >&2; }
# until N TEST...: TEST every 0.1 s, at most N times
until_ () { _n=$1; shift; _i=0; until "$@" 2>/dev/null; do _i=$((_i + 1)); [ $_i -lt "$_n" ] || return 1; sleep 0.1; done; }

hosts_start
hosts_account
KH=$T/known_hosts
: > "$KH"
host_add pop1 1
host_add smtp1 11
host_sshd smtp1 22 "$KH"
hosts_key pop1
hosts_sshconfig pop1 "$KH" smtp1:198.18.0.11:22
until_ 100 sh -c "nsenter -t $HOST_smtp1 -n ss -Hltn | grep -q ':22 '" || { say "no sshd"; exit 111; }
# txbytes: what the POP host's interface has sent (/proc/net is the
# reader's namespace's; /sys is the machine's)
txbytes () { on pop1 cat /proc/net/dev | awk '/eth0:/ { sub(/.*:/, ""); print $9 }'; }

for n in $SIZES; do
  k=$((n / 1000))k
  d=$T/$k
  mkdir -p "$d/hosts" "$d/relay" "$d/smtprelay"
  chmod 700 "$d/relay"
  : > "$T/smtp1/sshd/authorized_keys"   # the key of this size's directory only
  hosts_receive smtp1 pop1 "$d/hosts"
  printf ':allow\n' > "$d/rules"
  : > "$d/poprules"
  say "$k: $n live grants on the POP host"
  relay-open -d "$d/relay" -c "$d/popcache" -r "$d/poprules" -o "$d/pop.cdb" >/dev/null 2>&1
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "10.%d.%d.%d\n", int(i / 65536), int(i / 256) % 256, i % 256 }' |
    "$B/tests/unit/mkstamps" -e "$d/relay" >/dev/null
  on_bg smtp1 relay-open -v -w -d "$d/smtprelay" -H "$d/hosts" -c "$d/smtpcache" -r "$d/rules" -o "$d/smtp.cdb" 2>>"$d/ro.log"
  ro=$lastpid
  until_ 600 grep -q 'info: built' "$d/ro.log" || { say "relay-open did not start"; exit 111; }
  s0=$(date +%s.%N)
  on_bg pop1 relay-publish -v -d "$d/relay" -c "$d/pubcache" -F "$T/pop1/ssh_config" smtp1 2>>"$d/pub.log"
  pub=$lastpid
  until_ 1200 grep -q 'pushed 256 buckets' "$d/pub.log" || { say "no first push"; cat "$d/pub.log" >&2; exit 111; }
  until_ 1200 grep -q "built .*: $n grants" "$d/ro.log" || { say "the SMTP host did not build $n grants"; exit 111; }
  full=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  p0=$(grep -c 'info: pushed' "$d/pub.log")
  tx0=$(txbytes)
  "$B/bench/grant" "$GRANTS" 4 50 1 "$d/smtp.cdb" "$d/relay" "$B/pop3-wrapper" true > "$d/grant"
  sleep 1
  tx1=$(txbytes)
  p1=$(grep -c 'info: pushed' "$d/pub.log")
  read -r total med p90 worst missed p99 < "$d/grant"
  pushes=$((p1 - p0))
  per=$( [ $pushes -gt 0 ] && echo $(( (tx1 - tx0) / pushes )) || echo -)
  bk=$(grep 'info: pushed' "$d/pub.log" | tail -n +$((p0 + 1)) | sed 's/.*pushed \([0-9]*\) buckets.*/\1/' | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
  verdict=$(awk -v p="$p99" -v m="$missed" 'BEGIN { print (p != "-" && p < 2000 && m == 0) ? "p99 < 2 s: yes" : "p99 < 2 s: NO" }')
  printf '| login on a POP host to grant visible in an SMTP host'"'"'s cdb, through relay-publish (rsync over ssh, one kept-open connection): median, p99, worst (%s logins in bursts of 1-4, 50 ms apart on average; %s pushes, median %s buckets each; first full push %s s) | %s | `relay-publish smtp1` on the POP host, `relay-open -w -H HOSTS` on the SMTP host; its cdb looked up every 0.2 ms | %s, %s, %s ms | %s bytes sent per push | | %s |\n' \
    "$total" "$pushes" "$bk" "$full" "$k" "$med" "$p99" "$worst" "$per" "$verdict"
  kill "$pub"; wait "$pub" 2>/dev/null || :
  kill "$ro"; wait "$ro" 2>/dev/null || :
  rm -rf "$d"
done
