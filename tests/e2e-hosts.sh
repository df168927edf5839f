#!/bin/sh
# More than one host, with real servers: two POP hosts (tcpserver,
# pop3front-auth, the set-gid pop3-wrapper, pop3front-maildir; relay-clean
# -w and relay-publish) and two SMTP hosts (sshd with the forced-command
# key of relay-publish(8), tcpserver -x with smtpfront-qmail, relay-open
# -w reading the pushed directories), each a network namespace of its own
# joined by veths to a bridge (tests/hosts.lib), and a client host with
# three addresses. A login on either POP host opens relaying on both SMTP
# hosts for that address alone, with the static rules' variables; its
# expiry closes it on both.
. "$TOP/tests/lib.sh"
. "$TOP/tests/hosts.lib"
hosts_test

TTL=10
KH=$T/known_hosts
e2e_setup    # alice, her Maildir and password, the set-gid pop3-wrapper, the qmail home

# the clients run on the client host
curl () { on client /usr/bin/curl "$@"; }
swaks () { on client /usr/bin/swaks "$@"; }

# relays SMTPHOST ADDR: its cdb lets ADDR relay
relays () { decision "$2" "$T/$1/rules.cdb" | grep -q RELAYCLIENT; }
notrelays () { ! relays "$@"; }

# listening HOST PORT
listening () { [ -n "$(on "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]; }

hosts_start
hosts_account
: > "$KH"
host_add client 100
on client ip addr add 198.18.0.101/24 dev eth0
on client ip addr add 198.18.0.102/24 dev eth0
on client ip addr add 198.18.0.103/24 dev eth0
on client ip addr add 198.18.0.109/24 dev eth0

# pop NAME N: a POP host at 198.18.0.N, its relay directory made as
# README step 2 says, its POP3 service, relay-clean -w and relay-publish
# to both SMTP hosts
pop () {
  host_add "$1" "$2"
  hosts_sshconfig "$1" "$KH" smtp1:198.18.0.11:22 smtp2:198.18.0.12:22
  install -d -g "$E2E_GID" -m 2770 "$T/$1/relay"
  : > "$T/$1/rules"
  penv="POPRELAY_DIR=$T/$1/relay POPRELAY_CACHE=$T/$1/cache POPRELAY_RULES=$T/$1/rules POPRELAY_CDB=$T/$1/rules.cdb POPRELAY_TTL=$TTL"
  env $penv relay-open >/dev/null 2>&1
  on_bg "$1" env $penv tcpserver -H -R -l "$1" "198.18.0.$2" 110 \
    pop3front-auth /usr/bin/cvm-pwfile "$E2E_WRAPPER" -s pop3 pop3front-maildir ./Maildir/ 2>>"$T/$1/pop.log"
  waitfor "POP3 on $1" 100 listening "$1" 110
  on_bg "$1" env $penv relay-clean -w 2>>"$T/$1/relay-clean.log"
  on_bg "$1" env $penv relay-publish -v -F "$T/$1/ssh_config" smtp1 smtp2 2>>"$T/$1/publish.log"
}

# smtp NAME N: an SMTP host at 198.18.0.N: sshd taking both POP hosts'
# keys, each into its own directory; static rules that deny .109 and give
# everyone the queue stand-in; relay-open -w and relay-clean -w reading
# the local directory and the pushed ones; the SMTP service
smtp () {
  host_add "$1" "$2"
  host_sshd "$1" 22 "$KH"
  mkdir -p "$T/$1/relay" "$T/$1/hosts"
  chmod 755 "$T/$1/hosts"
  cat > "$T/$1/rules" <<EOR
198.18.0.109:deny
:allow,QMAILQUEUE="$T/qmail/queue",MARK="static rules"
EOR
}

# smtp_services NAME N: its services, once the POP hosts' directories are
# there (relay-open reads the list of host directories when it starts)
smtp_services () {
  senv="POPRELAY_DIR=$T/$1/relay POPRELAY_HOSTS=$T/$1/hosts POPRELAY_CACHE=$T/$1/cache POPRELAY_RULES=$T/$1/rules POPRELAY_CDB=$T/$1/rules.cdb POPRELAY_TTL=$TTL"
  on_bg "$1" env $senv relay-open -v -w 2>>"$T/$1/relay-open.log"
  waitfor "relay-open on $1" 100 grep -q built "$T/$1/relay-open.log"
  on_bg "$1" env $senv relay-clean -w 2>>"$T/$1/relay-clean.log"
  on_bg "$1" env QMAILHOME="$T/qmail" tcpserver -H -R -l "$1" -x "$T/$1/rules.cdb" "198.18.0.$2" 25 \
    smtpfront-qmail relayclient qmail-validate 2>>"$T/$1/smtp.log"
  waitfor "SMTP on $1" 100 listening "$1" 25
}

smtp smtp1 11
smtp smtp2 12
for p in pop1 pop2; do hosts_key "$p"; done
for s in smtp1 smtp2; do for p in pop1 pop2; do hosts_receive "$s" "$p" "$T/$s/hosts"; done; done
smtp_services smtp1 11
smtp_services smtp2 12
pop pop1 1
pop pop2 2
for p in pop1 pop2; do
  ok "$p: connected to both SMTP hosts" waitfor "$p-up" 200 sh -c "[ \$(grep -c 'connected to smtp' '$T/$p/publish.log') = 2 ]"
done

listing=$(e2e_listing)
rcpt () { e2e_rcpt "198.18.0.$1" 25 bob@example.net "$2"; }
is "before any login: .101 may not relay through smtp1" "$(rcpt 101 198.18.0.11)" 550
is "before any login: .101 may not relay through smtp2" "$(rcpt 101 198.18.0.12)" 550

# a login on pop1 from .101
t e2e_login 198.18.0.101 110 alice secret 198.18.0.1
expect "login on pop1 from 198.18.0.101" 0 "$listing"
t0=$(date +%s)
ok "pop1's login reaches smtp1" waitfor g1 40 relays smtp1 198.18.0.101
ok "pop1's login reaches smtp2" waitfor g2 40 relays smtp2 198.18.0.101
is "after pop1's login: .101 relays through smtp1" "$(rcpt 101 198.18.0.11)" 250
is "after pop1's login: .101 relays through smtp2" "$(rcpt 101 198.18.0.12)" 250
is "after pop1's login: .102 still may not relay through smtp1" "$(rcpt 102 198.18.0.11)" 550
is "after pop1's login: .102 still may not relay through smtp2" "$(rcpt 102 198.18.0.12)" 550

# a login on pop2 from .102
t e2e_login 198.18.0.102 110 alice secret 198.18.0.2
expect "login on pop2 from 198.18.0.102" 0 "$listing"
ok "pop2's login reaches smtp1" waitfor g3 40 relays smtp1 198.18.0.102
ok "pop2's login reaches smtp2" waitfor g4 40 relays smtp2 198.18.0.102
is "after pop2's login: .102 relays through smtp1" "$(rcpt 102 198.18.0.11)" 250
is "after pop2's login: .102 relays through smtp2" "$(rcpt 102 198.18.0.12)" 250
is ".103 never logged in: no relaying through smtp1" "$(rcpt 103 198.18.0.11)" 550
is ".103 never logged in: no relaying through smtp2" "$(rcpt 103 198.18.0.12)" 550
is "a message relayed through smtp2 from .102" "$(e2e_send 198.18.0.102 25 bob@example.net 198.18.0.12)" 250
is "the grant kept the static rules' variables" "$(e2e_queued "from 198.18.0.102")" 'RELAYCLIENT= MARK=static rules'

t env POPRELAY_DIR="$T/smtp1/relay" POPRELAY_HOSTS="$T/smtp1/hosts" POPRELAY_CACHE="$T/smtp1/cache" POPRELAY_TTL=$TTL relay-open -l
expect_grep "relay-open -l on smtp1: .101 from pop1" 0 '^198\.18\.0\.101 user=alice .*from=pop1$'
expect_grep "relay-open -l on smtp1: .102 from pop2" 0 '^198\.18\.0\.102 user=alice .*from=pop2$'

# expiry closes it on both: .101's grant ends TTL seconds after its
# login; wait for it, bounded
i=0
while [ $i -lt 400 ] && [ $(( $(date +%s) - t0 )) -le $((TTL + 1)) ]; do sleep 0.1; i=$((i + 1)); done
ok "expired: smtp1 closes .101" waitfor x1 100 notrelays smtp1 198.18.0.101
ok "expired: smtp2 closes .101" waitfor x2 100 notrelays smtp2 198.18.0.101
is "expired: .101 may not relay through smtp1" "$(rcpt 101 198.18.0.11)" 550
is "expired: .101 may not relay through smtp2" "$(rcpt 101 198.18.0.12)" 550
ok "expired: relay-clean on pop1 removed the stamp, and the removal travelled to smtp1" \
  waitfor x3 200 sh -c "! ls '$T'/smtp1/hosts/pop1/*/198.18.0.101 >/dev/null 2>&1"
ok "expired: and to smtp2" waitfor x4 200 sh -c "! ls '$T'/smtp2/hosts/pop1/*/198.18.0.101 >/dev/null 2>&1"
is "the static deny stays on smtp1" "$(rcpt 109 198.18.0.11 2>&1 | head -1)" dropped
no "no warning from relay-open on smtp1" grep -q warning "$T/smtp1/relay-open.log"
no "no warning from relay-open on smtp2" grep -q warning "$T/smtp2/relay-open.log"
no "no failed push from pop1" grep -q 'failed' "$T/pop1/publish.log"
no "no failed push from pop2" grep -q 'failed' "$T/pop2/publish.log"

done_testing
