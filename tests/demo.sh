# demo: README command one, package/demo, as an administrator runs it.
# The story must behave at every step and say so; the interactive mode
# must serve a real POP3 login and an SMTP relay on loopback, and stop
# cleanly on Ctrl-C (SIGINT to its process group, as a terminal sends it).
# Both run inside tests/run's network namespace, which has only loopback.

. "$TOP/tests/lib.sh"
# the demo's temporary directory goes in ours, to be checked (its mail
# user must be able to reach it, as in /tmp)
chmod 755 "$T"
TMPDIR=$T
export TMPDIR

# --- the story ---
t timeout 120 "$TOP/package/demo"
is "package/demo: the story exits 0" "$rc" 0
is "package/demo: seven steps, each checked" "$(printf '%s\n' "$out" | grep -c '^   ok: ')" 7
is "package/demo: no step misbehaved" "$(printf '%s\n' "$out" | grep -c -i -e 'not ok' -e 'FAIL' -e 'fatal')" 0
is "package/demo: the last line sums it up" "$(printf '%s\n' "$out" | tail -1)" "at the next SMTP connection, for 4 seconds, and for nobody else."
is "package/demo: the login granted its address, and no other" "$(printf '%s\n' "$out" | grep -c 'pop3-wrapper: info: granted 127.0.0.5 to alice')" 1

# --- the interactive mode ---
# (SIGINT is ignored in a background job of a script: perl gives the demo
# the default back, and setsid a process group of its own to signal)
setsid perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or exit 127' "$TOP/package/demo" -i > "$T/demo-i.log" 2>&1 &
demo=$!
pids="$pids $demo"
both () { e2e_listening 110 && e2e_listening 2525; }
waitfor "the demo's POP3 and SMTP services" 400 both
ok "package/demo -i: POP3 on 110 and SMTP on 2525" sh -c '[ -n "$(ss -Hltn "sport = :110")" ] && [ -n "$(ss -Hltn "sport = :2525")" ]'
is "package/demo -i: 127.0.0.9 may not relay before it logs in" "$(e2e_rcpt 127.0.0.9 2525)" 550
t curl -sS --max-time 20 --interface 127.0.0.9 pop3://alice:secret@127.0.0.1:110/
is "package/demo -i: alice logs in over POP3 from 127.0.0.9" "$rc" 0
granted9 () { [ "$(e2e_rcpt 127.0.0.9 2525)" = 250 ]; }
waitfor "the grant" 100 granted9
is "package/demo -i: then 127.0.0.9 may relay" "$(e2e_rcpt 127.0.0.9 2525)" 250
is "package/demo -i: 127.0.0.10 still may not" "$(e2e_rcpt 127.0.0.10 2525)" 550
kill -INT "-$demo"
i=0
while kill -0 "$demo" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
no "package/demo -i: Ctrl-C stops it within 10 s" kill -0 "$demo"
kill -KILL "-$demo" 2>/dev/null   # (only if it did not stop)
wait "$demo"; rc=$?
pids=$(printf '%s\n' $pids | grep -vx "$demo" | tr '\n' ' ')
is "package/demo -i: and it exits 0" "$rc" 0
ok "package/demo -i: saying it stops" grep -q "^package/demo: stopping$" "$T/demo-i.log"
no "package/demo -i: nothing listens any more" sh -c '[ -n "$(ss -Hltn "sport = :110")$(ss -Hltn "sport = :2525")" ]'
is "package/demo: its temporary directories are gone" "$(ls -d "$T"/poprelay-demo.* 2>/dev/null | wc -l | tr -d ' ')" 0

done_testing
