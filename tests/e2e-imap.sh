# End to end, IMAP-before-SMTP: mailfront's imapfront-auth checks the
# password with cvm-pwfile and runs the set-gid pop3-wrapper, which runs
# Dovecot's imap (through doveconf -e, with a config of the test's own);
# the login grants relaying to its address, a failed one grants nothing.

. "$TOP/tests/lib.sh"
e2e_setup
cat > "$T/imap.conf" <<EOC
base_dir = $T/dovecot-base
log_path = /dev/stderr
mail_location = maildir:~/Maildir
ssl = no
EOC
mkdir -p "$T/dovecot-base"
chmod 644 "$T/imap.conf"
e2e_relay_open_service
background env CVM_SASL_PLAIN=/usr/bin/cvm-pwfile tcpserver -H -R -l imap 127.0.0.1 143 \
  imapfront-auth "$E2E_WRAPPER" -s imap doveconf -c "$T/imap.conf" -e /usr/lib/dovecot/imap 2>>"$T/imap.log"
waitfor "IMAP service up" 100 e2e_listening 143
e2e_smtp_service 29

is "before any login, 127.0.0.5 may not relay" "$(e2e_rcpt 127.0.0.5 29)" 550
t e2e_login 127.0.0.5 143 alice wrong 127.0.0.1 imap
expect_grep "a wrong password is refused" 67 "denied"
no "and writes no stamp" stampfile 127.0.0.5
is "127.0.0.5 still may not relay" "$(e2e_rcpt 127.0.0.5 29)" 550
t e2e_login 127.0.0.5 143 alice secret 127.0.0.1 imap
expect "alice logs in over IMAP from 127.0.0.5 and searches her inbox" 0 "* SEARCH 1 2"
ok "imapfront-auth ran pop3-wrapper, which granted 127.0.0.5" grep -q "^pop3-wrapper: info: granted 127.0.0.5 to alice uid $E2E_UID\$" "$T/imap.log"
is "the stamp says imap" "$(grep '^service ' "$(stampfile 127.0.0.5)")" "service imap"
is "the next SMTP connection from 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 29)" 250
is "127.0.0.6 may not" "$(e2e_rcpt 127.0.0.6 29)" 550
t e2e_login 127.0.0.5 143 alice secret 127.0.0.1 imap
expect "a second IMAP login" 0 "* SEARCH 1 2"
ok "refreshes the grant" grep -q "^pop3-wrapper: info: refreshed 127.0.0.5 for alice uid $E2E_UID\$" "$T/imap.log"
is "relay-open -l: one grant, alice's" "$(relay-open -l | cut -d' ' -f1,2,5)" "127.0.0.5 user=alice status=granted"

done_testing
