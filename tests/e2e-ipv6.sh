# End to end over IPv6, with Debian's ucspi-tcp-ipv6 tcpserver on both
# sides and POPRELAY_TCPRULES=ucspi-tcp-ipv6: a POP3 login from ::1, and
# one from an IPv4 client of a server listening on :: (a v4-mapped peer),
# each grant exactly that client, as that package's own tcprulescheck and
# a real SMTP connection show.

. "$TOP/tests/lib.sh"
e2e_setup
POPRELAY_TCPRULES=ucspi-tcp-ipv6
export POPRELAY_TCPRULES
TCPRULESCHECK=$E2E_U6/tcprulescheck
export TCPRULESCHECK
cat > "$POPRELAY_RULES" <<EOR
127.0.0.9:deny
::1:allow,MARK="loopback six"
:allow,QMAILQUEUE="$T/qmail/queue",MARK="static rules"
EOR
"$E2E_U6/tcprules" "$T/static.cdb" "$T/static.tmp" < "$POPRELAY_RULES"
e2e_relay_open_service
ok "with no grant, relay-open writes what ucspi-tcp-ipv6's tcprules writes" cmp "$POPRELAY_CDB" "$T/static.cdb"
e2e_pop_service 113 ::1 "$E2E_U6/tcpserver"
e2e_pop_service 114 ::0 "$E2E_U6/tcpserver"
e2e_smtp_service 28 ::0 "$E2E_U6/tcpserver"
listing=$(e2e_listing)

# --- a login from ::1 ---
is "::1 may not relay before it logs in" "$(e2e_rcpt ::1 28 bob@example.net ::1)" 550
t e2e_login ::1 113 alice secret '[::1]'
expect "alice logs in over IPv6 from ::1" 0 "$listing"
ok "pop3-wrapper granted ::1, from the socket" grep -q "^pop3-wrapper: info: granted ::1 to alice uid $E2E_UID\$" "$T/pop.log"
is "ucspi-tcp-ipv6's tcprulescheck: ::1 keeps its static variables and gets RELAYCLIENT" \
  "$(decision ::1 "$POPRELAY_CDB")" "rule ::1: set environment variable MARK=loopback six set environment variable RELAYCLIENT= allow connection"
is "the next SMTP connection from ::1 may relay" "$(e2e_rcpt ::1 28 bob@example.net ::1)" 250
is "an IPv4 client of the same SMTP service may not" "$(e2e_rcpt 127.0.0.6 28)" 550
is "nor is 127.0.0.1 granted by ::1's login" "$(decision 127.0.0.1 "$POPRELAY_CDB")" "$(decision 127.0.0.1 "$T/static.cdb")"

# --- a v4-mapped peer: IPv4 to a server listening on :: ---
is "127.0.0.7 may not relay before it logs in" "$(e2e_rcpt 127.0.0.7 28)" 550
t e2e_login 127.0.0.7 114
expect "alice logs in over IPv4 to the server listening on ::" 0 "$listing"
ok "the v4-mapped peer is granted as its IPv4 address" grep -q "^pop3-wrapper: info: granted 127.0.0.7 to alice uid $E2E_UID\$" "$T/pop.log"
ok "its stamp is named by the IPv4 address" stampfile 127.0.0.7
is "tcprulescheck: 127.0.0.7 gets the default rule's variables and RELAYCLIENT" "$(decision 127.0.0.7 "$POPRELAY_CDB")" \
  "rule 127.0.0.7: set environment variable QMAILQUEUE=$T/qmail/queue set environment variable MARK=static rules set environment variable RELAYCLIENT= allow connection"
is "the next SMTP connection from 127.0.0.7 may relay" "$(e2e_rcpt 127.0.0.7 28)" 250
is "its session ran with the static variables and RELAYCLIENT" "$(e2e_send 127.0.0.7 28 bob@example.net; e2e_queued 'from 127.0.0.7')" "250
RELAYCLIENT= MARK=static rules"
is "127.0.0.6 still may not" "$(e2e_rcpt 127.0.0.6 28)" 550

# --- dual stack: an SMTP tcpserver -6 sees IPv4 clients as ::ffff:a.b.c.d ---
printf '#!/bin/sh\nexec %s -6 "$@"\n' "$E2E_U6/tcpserver" > "$T/tcpserver-6"
chmod 755 "$T/tcpserver-6"
e2e_smtp_service 29 ::0 "$T/tcpserver-6"
is "tcpserver -6: 127.0.0.7, granted, may relay through it too" "$(e2e_rcpt 127.0.0.7 29)" 250
rm -f "$T"/queue/*
is "tcpserver -6: its session got the default rule's variables and RELAYCLIENT" "$(e2e_send 127.0.0.7 29 bob@example.net; e2e_queued 'from 127.0.0.7')" "250
RELAYCLIENT= MARK=static rules"
is "tcpserver -6: 127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 29)" 550
is "tcpserver -6: ::1 may relay" "$(e2e_rcpt ::1 29 bob@example.net ::1)" 250

# --- exactly those two ---
cdb -l -m "$T/static.cdb" | sort -u > "$T/static.keys"
is "the cdb holds three keys beyond the static ones: ::1, and 127.0.0.7 in both its forms" \
  "$(cdb -l -m "$POPRELAY_CDB" | sort -u | comm -23 - "$T/static.keys" | tr '\n' ' ')" "127.0.0.7 ::ffff:127.0.0.7 "
is "::1 is a static key too, granted through its own record first" "$(cdb -q -n 1 "$POPRELAY_CDB" ::1 | tr '\0' ' ')" "+MARK=loopback six +RELAYCLIENT= "
is "relay-open -l lists the two" "$(relay-open -l | cut -d' ' -f1,2,5 | sort | tr '\n' ' ')" "127.0.0.7 user=alice status=granted ::1 user=alice status=granted "
t e2e_login ::1 113 alice wrong '[::1]'
expect_grep "a wrong password over IPv6 is refused" 67 "denied"
is "and changes nothing" "$(relay-open -l | wc -l | tr -d ' ')" 2

done_testing
