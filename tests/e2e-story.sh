# End to end, the whole story with real servers: mailfront's POP3 service
# with pop3-wrapper installed set-gid, mailfront's SMTP front end under
# tcpserver -x, and relay-open -w making each grant take effect at the
# next SMTP connection, with no rebuild by hand. A wrong password, or
# another address, gets nothing; the static rules keep reaching every
# session, and a static deny stays a deny.

. "$TOP/tests/lib.sh"
e2e_setup
e2e_relay_open_service
e2e_pop_service 110
e2e_smtp_service 25
listing=$(e2e_listing)

# --- the story ---
is "before any login, 127.0.0.5 may not relay" "$(e2e_rcpt 127.0.0.5 25)" 550
is "but may send to this host's own domain" "$(e2e_rcpt 127.0.0.5 25 alice@example.org)" 250
t e2e_login 127.0.0.5 110
expect "alice logs in over POP3 from 127.0.0.5 and gets her listing" 0 "$listing"
is "the very next SMTP connection from 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 25)" 250
is "127.0.0.6, which did not log in, still may not" "$(e2e_rcpt 127.0.0.6 25)" 550
ok "the POP3 log says who was granted" grep -q "^pop3-wrapper: info: granted 127.0.0.5 to alice uid $E2E_UID\$" "$T/pop.log"
is "the stamp: user, uid, service, the server's side, and the kernel's view of the socket (set-gid)" \
  "$(sed 3d "$(stampfile 127.0.0.5)")" "user alice
uid $E2E_UID
service pop3
local 127.0.0.1:110
via the\\x20socket\\x20on\\x20fd\\x200"
t relay-open -l
expect_grep "relay-open -l lists the grant with its user and the time left" 0 \
  "^127.0.0.5 user=alice granted=20[0-9-]*T[0-9:]*Z expires-in=1[0-9][0-9][0-9]s status=granted\$"
is "and nothing else" "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 1
builds=$(grep -c built "$T/relay-open.log")
t e2e_login 127.0.0.5 110
expect "a second login from the same address" 0 "$listing"
ok "is logged as a refresh" grep -q "^pop3-wrapper: info: refreshed 127.0.0.5 for alice uid $E2E_UID\$" "$T/pop.log"
sleep 0.2
is "and costs no rebuild" "$(grep -c built "$T/relay-open.log")" "$builds"
is "relaying still works after the refresh" "$(e2e_rcpt 127.0.0.5 25)" 250

# --- failed logins grant nothing ---
t e2e_login 127.0.0.7 110 alice wrong
expect_grep "a wrong password is refused" 67 "Login denied\|Access denied"
t e2e_login 127.0.0.7 110 mallory secret
expect_grep "an unknown user is refused" 67 "Login denied\|Access denied"
no "a failed login writes no stamp" stampfile 127.0.0.7
is "and 127.0.0.7 may not relay" "$(e2e_rcpt 127.0.0.7 25)" 550
is "the grants are still 127.0.0.5's alone" "$(relay-open -l | cut -d' ' -f1)" 127.0.0.5

# --- a second address is granted by its own login only ---
is "127.0.0.6 still refused after 127.0.0.5's logins" "$(e2e_rcpt 127.0.0.6 25)" 550
t e2e_login 127.0.0.6 110
expect "alice logs in from 127.0.0.6 too" 0 "$listing"
is "now 127.0.0.6 may relay" "$(e2e_rcpt 127.0.0.6 25)" 250
is "and 127.0.0.5 still may" "$(e2e_rcpt 127.0.0.5 25)" 250
is "two grants listed, one per address" "$(relay-open -l | cut -d' ' -f1,2 | sort | tr '\n' ' ')" "127.0.0.5 user=alice 127.0.0.6 user=alice "

# --- the static rules reach every session, granted or not ---
is "a granted client relays a message" "$(e2e_send 127.0.0.5 25 bob@example.net)" 250
is "its session ran with the static variables and RELAYCLIENT" "$(e2e_queued 'from 127.0.0.5')" "RELAYCLIENT= MARK=static rules"
is "a client that never logged in sends to a local user" "$(e2e_send 127.0.0.8 25 alice@example.org)" 250
is "its session ran with the static variables, without RELAYCLIENT" "$(e2e_queued 'from 127.0.0.8')" "RELAYCLIENT=(unset) MARK=static rules"
is "and may not relay" "$(e2e_send 127.0.0.8 25 bob@example.net)" 550
is "the envelope of the relayed message reached the queue" "$(cat "$(grep -l '^Subject: from 127.0.0.5$' "$T"/queue/*.msg | sed 's/msg$/env/')")" "Falice@example.org
Tbob@example.net"

# --- a static deny stays a deny ---
is "the denied client is dropped before any login" "$(e2e_rcpt 127.0.0.9 25 alice@example.org)" dropped
t e2e_login 127.0.0.9 110
expect "the denied client still reads mail: POP3 is not the SMTP rules' business" 0 "$listing"
waitfor "relay-open -w considered it" 100 grep -q "not granting 127.0.0.9" "$T/relay-open.log"
ok "relay-open -w refuses the grant, naming the rule" grep -q "not granting 127.0.0.9: $POPRELAY_RULES:2 denies it" "$T/relay-open.log"
is "the denied client is still dropped after its login" "$(e2e_rcpt 127.0.0.9 25)" dropped
t relay-open -l
expect_grep "relay-open -l shows the grant as denied, with the rule's line" 0 "^127.0.0.9 user=alice .* status=denied rule-line=2\$"

done_testing
