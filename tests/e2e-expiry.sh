# End to end, expiry: a grant made by a real POP3 login stops relaying once
# POPRELAY_TTL has passed, through relay-clean run the cron way
# ("relay-clean relay-open", one shot) and through the supervised
# services (relay-open -w beside relay-clean -w).

. "$TOP/tests/lib.sh"
e2e_setup
POPRELAY_TTL=3
export POPRELAY_TTL
e2e_smtp_service 26
e2e_pop_service 111
listing=$(e2e_listing)
# expiry_of ADDR: when ADDR's grant ends, in seconds since the epoch
expiry_of () { awk -v m="$(stat -c %.9Y "$(stampfile "$1")")" -v t="$POPRELAY_TTL" 'BEGIN { printf "%.3f", m + t }'; }
# sleep_until EPOCH: sleep until that time (fractions allowed)
sleep_until () { s=$(awk -v e="$1" -v n="$(date +%s.%N)" 'BEGIN { d = e - n; printf "%.3f", (d > 0 ? d : 0) }'); sleep "$s"; }

# --- from cron: no service, "relay-clean relay-open" once a minute ---
t e2e_login 127.0.0.5 111
expect "alice logs in from 127.0.0.5" 0 "$listing"
ok "with no service, pop3-wrapper says the grant waits for the next build" \
  grep -q "^pop3-wrapper: info: no relay-open -w service is set up: the grant takes effect at the next relay-open run" "$T/pop.log"
is "until the cron job runs, 127.0.0.5 may not relay" "$(e2e_rcpt 127.0.0.5 26)" 550
t relay-clean relay-open
expect "the cron job: nothing expired yet, the build takes the grant in" 0 \
  "relay-clean: info: removed 0 expired, 0 future-dated, 0 abandoned temp; kept 1 live, 0 temp; junk 0"
is "after the cron job, 127.0.0.5 may relay" "$(e2e_rcpt 127.0.0.5 26)" 250
sleep_until "$(expiry_of 127.0.0.5)"
sleep 0.1
t relay-clean relay-open
expect "the cron job after the TTL: the expired grant is removed and the cdb rebuilt" 0 \
  "relay-clean: info: removed 1 expired, 0 future-dated, 0 abandoned temp; kept 0 live, 0 temp; junk 0"
no "the stamp is gone" stampfile 127.0.0.5
is "127.0.0.5 may not relay any more" "$(e2e_rcpt 127.0.0.5 26)" 550
is "relay-open -l lists nothing" "$(relay-open -l)" ""

# --- supervised: relay-open -w and relay-clean -w, nothing by hand ---
e2e_relay_open_service
background relay-clean -w 2>>"$T/relay-clean.log"
cleaner=$lastpid
t e2e_login 127.0.0.6 111
expect "alice logs in from 127.0.0.6" 0 "$listing"
is "the next SMTP connection from 127.0.0.6 may relay" "$(e2e_rcpt 127.0.0.6 26)" 250
end=$(expiry_of 127.0.0.6)
t relay-open -l
expect_grep "relay-open -l: the grant has at most the TTL left" 0 "^127.0.0.6 user=alice .* expires-in=[0-3]s status=granted\$"
sleep_until "$end"
revoked=""
i=0
while [ $i -lt 60 ]; do
  if [ "$(e2e_rcpt 127.0.0.6 26)" = 550 ]; then revoked=$(date +%s.%N); break; fi
  i=$((i + 1))
done
late=$(awk -v a="${revoked:-0}" -v b="$end" 'BEGIN { printf "%.2f", a - b }')
ok "after the TTL, SMTP refuses 127.0.0.6 again, with no command run by hand" test -n "$revoked"
ok "within about a second of the expiry (${late}s late)" awk -v l="$late" 'BEGIN { exit !(l >= 0 && l < 1.5) }'
waitfor "relay-clean -w removed it" 40 sh -c "! ls '$POPRELAY_DIR'/*/127.0.0.6"
no "relay-clean -w removed the stamp" stampfile 127.0.0.6
ok "and logged it" grep -q "relay-clean: info: removed 1 expired" "$T/relay-clean.log"
t e2e_login 127.0.0.6 111
expect "a new login after the expiry" 0 "$listing"
is "is a new grant, not a refresh" "$(grep -c "^pop3-wrapper: info: granted 127.0.0.6 to alice" "$T/pop.log")" 2
is "which relays again at once" "$(e2e_rcpt 127.0.0.6 26)" 250
stop $cleaner

done_testing
