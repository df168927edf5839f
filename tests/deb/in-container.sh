# tests/deb/in-container.sh PHASE: the administrator's side of tests/deb.sh,
# run inside the throwaway system that tests/deb.sh boots with
# systemd-nspawn, as a service of that system (root, after
# multi-user.target), once per boot:
#
#   install   the system as this host has it, without poprelay: set up as
#             README, "Installing on Debian", says for Dovecot (static
#             rules, apt install, the Dovecot snippet), then POP3 and IMAP
#             logins through Dovecot open relaying to their addresses
#   upgrade   the next boot: the units start at boot; a login through
#             mailfront (pop3-wrapper set-gid) opens relaying, relay-clean
#             expires grants inside its sandbox; the administrator's
#             settings and stat override survive an upgrade to a newer
#             build; remove, then purge, leave what they should
#
# tests/deb.sh binds the source tree at /poprelay-src, the two packages at
# /poprelay-deb (DEB1, DEB2 name them) and /poprelay-out, where the counts
# and this script's output go.

TOP=/poprelay-src BIN=/usr/sbin RESULTS=/poprelay-out/results
export TOP BIN RESULTS
. "$TOP/tests/lib.sh"
SCRIPT="deb.sh ($1 boot)"
CDB=/var/lib/poprelay/smtp/tcp.smtp.cdb
RELAY=/var/lib/poprelay/relay
POPRELAY_DIR=$RELAY   # for stampfile

# perms PATH: mode (octal), owner and group
perms () { stat -c '%a %U:%G' "$1" 2>&1; }
# granted IP: the cdb gives IP RELAYCLIENT, as tcpserver would
granted () { decision "$1" "$CDB" | grep -q 'set environment variable RELAYCLIENT= allow'; }
not_granted () { ! granted "$1"; }
# journal UNIT: what the unit logged in this boot, one message a line
journal () { journalctl -b -q -u "$1" -o cat 2>&1; }
# apt_install FILE: apt installs a package file, as an administrator does
# (no network here: what it depends on is installed already)
apt_install () {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" > "$T/apt.log" 2>&1 ||
    { cat "$T/apt.log"; return 1; }
}
# the SMTP service of README step 6 with its -x line moved to the
# package's cdb (README, "Installing on Debian"): mailfront's SMTP front
# end, which relays for RELAYCLIENT and takes mail for example.org
smtp_service () {
  mkdir -p "$T/qmail/control"
  echo example.org > "$T/qmail/control/rcpthosts"
  background env QMAILHOME="$T/qmail" tcpserver -H -R -l smtp -x "$CDB" 127.0.0.1 25 \
    smtpfront-echo relayclient qmail-validate 2>>"$T/smtp.log"
  waitfor "SMTP up" 100 e2e_listening 25 || fail "the SMTP service did not start" "$(cat "$T/smtp.log")"
}

phase_install () {
  no "poprelay is not installed before the test installs it" dpkg -s poprelay
  getent group poprelay > /dev/null && fail "a group poprelay exists before the install"
  # what a purge must give back, for the next boot
  dpkg-statoverride --list | sort > /root/statoverride.before
  # the administrator's static rules, as a qmail host has them
  printf '# everyone may connect, nobody relays; 127.0.0.9 is refused\n127.0.0.9:deny\n:allow\n' > /etc/tcp.smtp
  cp /etc/tcp.smtp /root/tcp.smtp.before

  t apt_install "/poprelay-deb/$DEB1"
  expect "apt installs the package" 0
  is "the version installed" "$(dpkg-query -W -f='${Version}' poprelay)" "$(dpkg-deb -f "/poprelay-deb/$DEB1" Version)"
  gid=$(getent group poprelay | cut -d: -f3)
  ok "postinst made the system group poprelay (gid $gid)" test -n "$gid" -a "${gid:-1000}" -lt 1000
  is "pop3-wrapper is set-gid poprelay" "$(perms /usr/sbin/pop3-wrapper)" "2755 root:poprelay"
  is "through dpkg-statoverride" "$(dpkg-statoverride --list /usr/sbin/pop3-wrapper)" "root poprelay 2755 /usr/sbin/pop3-wrapper"
  is "the relay directory" "$(perms $RELAY)" "2770 root:poprelay"
  is "the cdb's directory" "$(perms /var/lib/poprelay/smtp)" "755 root:root"
  is "the cache" "$(perms /var/cache/poprelay)" "700 root:root"
  is "the envdir's TTL" "$(cat /etc/poprelay/POPRELAY_TTL)" 1800
  for u in relay-open relay-clean; do
    is "$u.service is enabled" "$(systemctl is-enabled $u.service 2>&1)" enabled
    waitfor "$u active" 100 systemctl is-active -q $u.service
    is "$u.service runs" "$(systemctl is-active $u.service 2>&1)" active
    t systemd-analyze verify /lib/systemd/system/$u.service
    expect "systemd-analyze verify $u.service, installed with its man page" 0 ""
  done
  waitfor "first build" 100 test -f "$CDB"
  is "relay-open built the cdb, mode 0644" "$(perms $CDB)" "644 root:root"
  is "relay-open -w made its fifo directory in the relay directory" "$(stat -c '%F %a %U:%G' $RELAY/.rebuild 2>&1)" "directory 2770 root:poprelay"
  is "and its fifo in it" "$(stat -c '%F %a %U:%G' $RELAY/.rebuild/relay-open.* 2>&1)" "fifo 620 root:poprelay"
  is "relay-open made the 256 buckets, root:poprelay 2770" "$(stat -c '%a %U:%G' $RELAY/[0-9a-f][0-9a-f] | sort | uniq -c | sed 's/^ *//')" "256 2770 root:poprelay"
  t journal relay-open
  expect_grep "journalctl -u relay-open shows the build line" 0 "^relay-open: info: built $CDB: 0 grants, 2 static records"
  for u in relay-open relay-clean; do
    t sh -c "journalctl -b -q -u $u _TRANSPORT=stdout -o verbose --output-fields=SYSLOG_IDENTIFIER | sed -n 's/^ *SYSLOG_IDENTIFIER=//p' | sort -u"
    expect "what $u writes reaches the journal under the identifier $u, not envdir" 0 "$u"
  done
  t systemctl show -p MainPID --value relay-open.service
  ok "relay-open runs with no capability" grep -q '^CapEff:[[:space:]]*0000000000000000$' "/proc/$out/status"
  ok "and with the group poprelay" sh -c "grep '^Groups:' /proc/$out/status | grep -qw $gid"
  # Restart=on-failure (RestartSec=5): a relay-open killed runs again
  old=$out
  kill -KILL "$old"
  waitfor "restart" 200 sh -c 'p=$(systemctl show -p MainPID --value relay-open.service); [ "$p" != 0 ] && [ "$p" != "$1" ]' sh "$old"
  new=$(systemctl show -p MainPID --value relay-open.service)
  ok "relay-open killed with SIGKILL (pid $old) runs again (pid $new)" test "$new" != 0 -a "$new" != "$old"
  # the sandbox lets relay-open give its fifo the relay directory's group
  # when the group does not come by the set-gid bit
  chmod g-s $RELAY
  rm -rf $RELAY/.rebuild
  systemctl restart relay-open
  waitfor "fifo" 100 sh -c "test -p $RELAY/.rebuild/relay-open.*"
  is "without the directory's set-gid bit, relay-open still makes its fifo directory root:poprelay" "$(stat -c '%F %U:%G' $RELAY/.rebuild 2>&1)" "directory root:poprelay"
  is "and its fifo root:poprelay" "$(stat -c '%F %a %U:%G' $RELAY/.rebuild/relay-open.* 2>&1)" "fifo 620 root:poprelay"
  chmod g+s $RELAY
  is "127.0.0.9 is still refused by the static rules" "$(decision 127.0.0.9 $CDB)" "rule 127.0.0.9: deny connection"

  # Dovecot as the administrator has it (plain-text logins for curl, on
  # loopback, Maildir; a certificate of its own where this system has
  # none, since Debian's default configuration asks for one), then
  # README's two commands
  if [ ! -f /etc/dovecot/private/dovecot.pem ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -keyout /etc/dovecot/private/dovecot.key -out /etc/dovecot/private/dovecot.pem > "$T/openssl.log" 2>&1 ||
      fail "openssl could not make Dovecot's certificate" "$(cat "$T/openssl.log")"
  fi
  cat > /etc/dovecot/local.conf <<EOC
disable_plaintext_auth = no
auth_failure_delay = 0
mail_location = maildir:~/Maildir
listen = 127.0.0.1
EOC
  useradd -m alice && echo alice:secret | chpasswd
  mkdir -p /home/alice/Maildir/new /home/alice/Maildir/cur /home/alice/Maildir/tmp
  printf 'From: bob@example.net\nSubject: hello\n\nHello.\n' > /home/alice/Maildir/new/1000000001.1.host
  # what Dovecot lists: the size with CRLF line ends
  listing="1 $(( $(wc -c < /home/alice/Maildir/new/1000000001.1.host) + 4 ))"
  chown -R alice:alice /home/alice/Maildir
  ok "README: the Dovecot snippet goes into conf.d" cp /usr/share/doc/poprelay/examples/dovecot/poprelay.conf /etc/dovecot/conf.d/99-poprelay.conf
  ok "README: Dovecot restarts with it" systemctl restart dovecot
  waitfor "Dovecot up" 200 e2e_listening 110 || fail "Dovecot does not listen" "$(journalctl -b -q -u dovecot -o cat | tail -n 20)"
  smtp_service

  is "before any login, 127.0.0.5 may not relay" "$(e2e_rcpt 127.0.0.5 25)" 550
  t e2e_login 127.0.0.6 110 alice wrong
  no "a wrong password is refused" test "$rc" = 0
  t e2e_login 127.0.0.5 110
  expect "alice reads her mail over POP3 from 127.0.0.5" 0 "$listing"
  waitfor "grant" 100 granted 127.0.0.5
  is "the cdb grants 127.0.0.5 (tcprulescheck)" "$(decision 127.0.0.5 $CDB)" "rule 127.0.0.5: set environment variable RELAYCLIENT= allow connection"
  is "and still refuses 127.0.0.9" "$(decision 127.0.0.9 $CDB)" "rule 127.0.0.9: deny connection"
  is "swaks from 127.0.0.5: relaying accepted" "$(e2e_rcpt 127.0.0.5 25)" 250
  is "swaks from 127.0.0.6 (wrong password): refused" "$(e2e_rcpt 127.0.0.6 25)" 550
  f=$(stampfile 127.0.0.5 2>/dev/null)
  is "the stamp belongs to Dovecot's user, group poprelay" "$(perms "$f")" "640 dovecot:poprelay"
  is "in a bucket that relay-open made, that the relay group may write" "$(perms "$(dirname "$f")")" "2770 root:poprelay"
  ok "the stamp says alice, from Dovecot" grep -q '^user alice$' "$f"
  # the mail session Dovecot runs after the post-login script is alice's,
  # without the group poprelay: a POP3 session held open with tcpclient
  t tcpclient -H -R -l 0 -i 127.0.0.12 127.0.0.1 110 sh -c '
    read -r l <&6; printf "USER alice\r\n" >&7; read -r l <&6
    printf "PASS secret\r\n" >&7; read -r l <&6; echo "$l" | tr -d "\r"
    pid=$(pgrep -n -u alice -x pop3)
    echo "${pid:-no pop3 process of alice}"
    sed -n "s/^Groups:[[:space:]]*//p" "/proc/$pid/status"
    printf "QUIT\r\n" >&7; read -r l <&6'
  sesspid=$(printf '%s\n' "$out" | sed -n 2p)
  sessgroups=$(printf '%s\n' "$out" | sed -n 3p)
  expect_grep "alice logs in over POP3 from 127.0.0.12 and stays" 0 "^+OK Logged in"
  echo "deb.sh: the POP3 session of alice: pid $sesspid, groups $sessgroups (poprelay is $gid)"
  ok "her session (pid $sesspid) runs without the group poprelay (groups: $sessgroups)" \
    sh -c 'test "$1" -gt 0 2>/dev/null && ! printf "%s\n" "$2" | grep -qw "$3"' sh "$sesspid" "$sessgroups" "$gid"
  t e2e_login 127.0.0.8 143 alice secret 127.0.0.1 imap
  expect "alice searches her mail over IMAP from 127.0.0.8" 0 "* SEARCH 1"
  waitfor "grant" 100 granted 127.0.0.8
  is "the IMAP login grants 127.0.0.8" "$(e2e_rcpt 127.0.0.8 25)" 250
  t journal relay-open
  expect_grep "journalctl -u relay-open shows the builds of the grants" 0 "^relay-open: info: built $CDB: 2 grants, 2 static records"
  t env -i /usr/bin/envdir /etc/poprelay /usr/sbin/relay-open -l
  expect_grep "relay-open -l lists alice's grant" 0 "^127.0.0.5 user=alice granted=.* status=granted$"
}

phase_upgrade () {
  for u in relay-open relay-clean; do
    is "$u.service started at boot" "$(systemctl is-active $u.service 2>&1)" active
  done
  waitfor "build at boot" 100 sh -c "journalctl -b -q -u relay-open -o cat | grep -q '^relay-open: info: built'"
  t journal relay-open
  expect_grep "this boot's journal has relay-open's build, with the grants of the last boot" 0 "^relay-open: info: built $CDB: 3 grants"
  ok "127.0.0.5 is still granted after the reboot" granted 127.0.0.5
  smtp_service

  # README step 4 with mailfront: pop3front-auth switches to alice, then
  # runs the set-gid pop3-wrapper, which believes only the socket
  background envdir /etc/poprelay tcpserver -H -R -l pop 127.0.0.1 109 \
    pop3front-auth /usr/bin/cvm-unix /usr/sbin/pop3-wrapper -s pop3 pop3front-maildir Maildir 2>>"$T/pop.log"
  pop=$lastpid
  waitfor "POP3 up" 100 e2e_listening 109 || fail "mailfront's POP3 service did not start" "$(cat "$T/pop.log")"
  t e2e_login 127.0.0.7 109
  expect_grep "alice logs in through mailfront from 127.0.0.7" 0 "^1 "
  waitfor "grant" 100 granted 127.0.0.7
  is "set-gid pop3-wrapper granted 127.0.0.7" "$(e2e_rcpt 127.0.0.7 25)" 250
  ok "and said so" grep -q "^pop3-wrapper: info: granted 127.0.0.7 to alice uid $(id -u alice)\$" "$T/pop.log"
  is "the stamp is alice's, group poprelay" "$(perms "$(stampfile 127.0.0.7)")" "640 alice:poprelay"

  # relay-clean's sandbox lets it remove stamps of other users' buckets
  echo 2 > /etc/poprelay/POPRELAY_TTL
  ok "the services restart with a TTL of 2 seconds" systemctl restart relay-open relay-clean
  t e2e_login 127.0.0.10 109
  waitfor "grant" 100 granted 127.0.0.10
  ok "127.0.0.10 granted" granted 127.0.0.10
  waitfor "expiry" 200 sh -c '! ls /var/lib/poprelay/relay/*/127.0.0.10 >/dev/null 2>&1'
  no "relay-clean removed the stamp of 127.0.0.10 after its expiry" sh -c 'ls /var/lib/poprelay/relay/*/127.0.0.10'
  waitfor "revoked" 100 not_granted 127.0.0.10
  is "the cdb no longer grants it" "$(decision 127.0.0.10 $CDB)" "rule : allow connection"
  t journal relay-clean
  expect_grep "journalctl -u relay-clean says what it removed" 0 "^relay-clean: info: removed [1-9][0-9]* expired"

  # the administrator's own settings, then the upgrade
  echo 900 > /etc/poprelay/POPRELAY_TTL
  dpkg-statoverride --remove /usr/sbin/pop3-wrapper
  dpkg-statoverride --update --add root poprelay 2711 /usr/sbin/pop3-wrapper
  systemctl restart relay-open relay-clean
  before=$(systemctl show -p MainPID --value relay-open.service)
  t apt_install "/poprelay-deb/$DEB2"
  expect "apt upgrades to the newer build" 0
  is "the version installed" "$(dpkg-query -W -f='${Version}' poprelay)" "$(dpkg-deb -f "/poprelay-deb/$DEB2" Version)"
  is "the administrator's TTL survives the upgrade" "$(cat /etc/poprelay/POPRELAY_TTL)" 900
  is "and the other settings are the package's" "$(cat /etc/poprelay/POPRELAY_DIR)" "$RELAY"
  is "the administrator's stat override survives" "$(perms /usr/sbin/pop3-wrapper)" "2711 root:poprelay"
  is "the relay directory is as it was" "$(perms $RELAY)" "2770 root:poprelay"
  after=$(systemctl show -p MainPID --value relay-open.service)
  ok "relay-open was restarted by the upgrade" test "$after" != "$before" -a "$after" != 0
  is "relay-open.service runs" "$(systemctl is-active relay-open.service)" active
  is "relay-clean.service runs" "$(systemctl is-active relay-clean.service)" active
  is "the upgrade made nothing new" "$(sort /var/lib/poprelay/made-by-postinst | tr '\n' ' ')" \
    "dir /var/cache/poprelay dir /var/lib/poprelay dir /var/lib/poprelay/relay dir /var/lib/poprelay/smtp group poprelay statoverride /usr/sbin/pop3-wrapper "
  t e2e_login 127.0.0.11 109
  waitfor "grant" 100 granted 127.0.0.11
  is "a login after the upgrade is granted" "$(e2e_rcpt 127.0.0.11 25)" 250
  stop "$pop"

  # remove: the programs and services go, the settings and grants stay
  ok "apt removes the package" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q poprelay
  no "the programs are gone" test -e /usr/sbin/relay-open
  is "relay-open.service is gone" "$(systemctl is-active relay-open.service)" inactive
  ok "the settings stay" test -f /etc/poprelay/POPRELAY_TTL
  is "with the administrator's TTL" "$(cat /etc/poprelay/POPRELAY_TTL)" 900
  ok "the grants stay" test -f "$(stampfile 127.0.0.11)"
  ok "the group stays" getent group poprelay

  # purge: what postinst made goes, the rest stays
  ok "apt purges the package" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q poprelay
  no "the settings are gone" test -e /etc/poprelay
  no "the relay directory and the cdb are gone" test -e /var/lib/poprelay
  no "the cache is gone" test -e /var/cache/poprelay
  no "the group is gone" getent group poprelay
  is "dpkg's stat overrides are as before the install" "$(dpkg-statoverride --list | sort)" "$(cat /root/statoverride.before)"
  no "no enablement link is left" sh -c 'ls /etc/systemd/system/*.wants/relay-* /var/lib/systemd/deb-systemd-helper-enabled/relay-* 2>/dev/null | grep .'
  ok "the administrator's static rules are untouched" cmp /etc/tcp.smtp /root/tcp.smtp.before
  is "dpkg knows nothing of poprelay" "$(dpkg-query -W -f='${Status}' poprelay 2>&1 | grep -c installed)" 0

  # a group and a cache directory that were there before the install are
  # not the package's to remove
  addgroup --system --quiet poprelay
  install -d -m 0700 /var/cache/poprelay
  t apt_install "/poprelay-deb/$DEB2"
  expect "apt installs the package again, over a group and a cache of the administrator's" 0
  is "postinst noted only what it made" "$(sort /var/lib/poprelay/made-by-postinst | tr '\n' ' ')" \
    "dir /var/lib/poprelay dir /var/lib/poprelay/relay dir /var/lib/poprelay/smtp statoverride /usr/sbin/pop3-wrapper "
  ok "apt purges it again" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q poprelay
  ok "the administrator's group stays" getent group poprelay
  ok "the administrator's cache directory stays" test -d /var/cache/poprelay
  no "what postinst made is gone" test -e /var/lib/poprelay
}

case ${1:-} in
  install) phase_install ;;
  upgrade) phase_upgrade ;;
  *) fail "unknown phase ${1:-(none)}" ;;
esac
done_testing
