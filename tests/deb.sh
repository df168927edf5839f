# The Debian package and its systemd units, as an administrator uses them.
#
# Here: the units of examples/systemd pass systemd-analyze verify, and
# their sandbox keeps the exposure systemd-analyze security gives them
# low; package/deb builds two versions of the package (lintian clean), and
# the package holds what it should.
#
# Then, in a throwaway system booted with systemd-nspawn from this host's
# own root (an overlay: every change lands in a tmpfs, and this host's
# files stay as they are; a network namespace with loopback only), two
# boots, each running tests/deb/in-container.sh as a service of that
# system: the first installs the package and sets Dovecot up as README
# says, and logs in; the second finds the units started at boot, logs in
# through mailfront, upgrades, removes and purges.

. "$TOP/tests/lib.sh"
UNITS=$TOP/examples/systemd
# the most exposure systemd-analyze security may give a unit (see the
# README for what each keeps from going lower)
EXPOSURE_MAX=1.0

for u in relay-open relay-clean; do
  # the man pages are checked inside the container, where the package
  # installed them
  t systemd-analyze verify --man=no "$UNITS/$u.service"
  expect "systemd-analyze verify $u.service" 0 ""
  score=$(systemd-analyze security --offline=true "$UNITS/$u.service" 2>&1 | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) .*$/\1/p')
  ok "systemd-analyze security: $u.service's exposure is ${score:-unknown}, at most $EXPOSURE_MAX" \
    awk -v s="$score" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(s != "" && s + 0 <= m + 0) }'
  t sh -c "grep -E '^(ExecStart|SyslogIdentifier|Restart|SupplementaryGroups|CapabilityBoundingSet|ProtectSystem)=' '$UNITS/$u.service'"
  expect "$u.service runs $u -w through envdir, logs as $u, is restarted on failure, sandboxed" 0 \
"ExecStart=/usr/bin/envdir /etc/poprelay /usr/sbin/$u $( [ $u = relay-open ] && echo '-v ')-w
SyslogIdentifier=$u
Restart=on-failure
SupplementaryGroups=poprelay
CapabilityBoundingSet=
ProtectSystem=strict"
done

# The rest builds the package from the sources with Debian's flags,
# whatever BIN is: in package/check's pass with the sanitizer build, it
# would do the same again, beside the first.
if [ "$BIN" != "$TOP" ]; then
  echo "deb.sh: BIN is $BIN: the package is built and booted in the pass with the programs as built"
  done_testing
  exit 0
fi

# two builds of the same sources: NEWS's version, and a newer one
t "$TOP/package/deb" -o "$T/deb"
expect_grep "package/deb builds the package, lintian reports no error and no warning" 0 "^package/deb: lintian: no error, no warning"
deb1=$(printf '%s\n' "$out" | sed -n 's|^package/deb: built .*/||p')
v1=$(dpkg-deb -f "$T/deb/$deb1" Version 2>/dev/null)
newest=$(sed -n 's/^\([0-9]\{4\}\)-\([0-9][0-9]\)-\([0-9][0-9]\)$/\1\2\3/p' "$TOP/NEWS" | head -n 1)
is "its version is NEWS's newest date" "$v1" "$newest"
t "$TOP/package/deb" -o "$T/deb" "$v1+1"
expect_grep "package/deb VERSION builds a newer one" 0 "^package/deb: built $T/deb/poprelay_$v1+1_"
deb2=$(printf '%s\n' "$out" | sed -n 's|^package/deb: built .*/||p')
ok "dpkg orders them" dpkg --compare-versions "$(dpkg-deb -f "$T/deb/$deb2" Version)" gt "$v1"

D=$T/deb/$deb1
is "Static-Built-Using names the libraries linked in, at the versions built with" \
  "$(dpkg-deb -f "$D" Static-Built-Using | sed 's/, /\n/g' | sort)" \
  "$(dpkg-query -W -f='${source:Package} (= ${source:Version})\n' skalibs-dev libcdb-dev | sort)"
ok "it depends on daemontools (envdir) and adduser" sh -c "dpkg-deb -f '$D' Depends | grep -q 'adduser, daemontools'"
t sh -c "dpkg-deb --ctrl-tarfile '$D' | tar -xOf - ./conffiles"
expect "the envdir's files are conffiles" 0 "/etc/poprelay/POPRELAY_CACHE
/etc/poprelay/POPRELAY_CDB
/etc/poprelay/POPRELAY_DIR
/etc/poprelay/POPRELAY_NEVER
/etc/poprelay/POPRELAY_RULES
/etc/poprelay/POPRELAY_TTL"
t sh -c "dpkg-deb -c '$D' | awk '{ print \$1, \$2, \$6 }' | grep -E ' \./(usr/sbin|lib/systemd/system|usr/share/man/man8|usr/libexec/poprelay)/.'"
expect "the programs, units, man pages and Dovecot's script; pop3-wrapper not set-gid in the archive (dpkg-statoverride does it)" 0 \
"-rw-r--r-- root/root ./lib/systemd/system/relay-clean.service
-rw-r--r-- root/root ./lib/systemd/system/relay-open.service
-rwxr-xr-x root/root ./usr/libexec/poprelay/dovecot-postlogin
-rwxr-xr-x root/root ./usr/sbin/pop3-wrapper
-rwxr-xr-x root/root ./usr/sbin/relay-clean
-rwxr-xr-x root/root ./usr/sbin/relay-open
-rwxr-xr-x root/root ./usr/sbin/relay-publish
-rw-r--r-- root/root ./usr/share/man/man8/pop3-wrapper.8.gz
-rw-r--r-- root/root ./usr/share/man/man8/relay-clean.8.gz
-rw-r--r-- root/root ./usr/share/man/man8/relay-open.8.gz
-rw-r--r-- root/root ./usr/share/man/man8/relay-publish.8.gz"
t sh -c "dpkg-deb --fsys-tarfile '$D' | tar -xOf - ./lib/systemd/system/relay-open.service | cmp - '$UNITS/relay-open.service'"
expect "the package ships examples/systemd's units as they are" 0

# --- the throwaway system ---
if ! command -v systemd-nspawn > /dev/null; then
  fail "no systemd-nspawn (package systemd-container): run package/deps"
  done_testing
  exit 1
fi
mkdir -p "$T/up" "$T/root" "$T/out"
# lib.sh's cleanup removes $T: unmount the overlay first, and keep $T
# rather than walk into a view of this host's root
deb_cleanup () {
  for m in "$T/root" "$T/up"; do
    mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
  done
  mountpoint -q "$T/root" && KEEP=1
  cleanup
}
trap deb_cleanup EXIT
mount -t tmpfs -o mode=755 tmpfs "$T/up"
mkdir -p "$T/up/upper" "$T/up/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/up/upper,workdir=$T/up/work" "$T/root" ||
  fail "unable to mount an overlay of / for the container"

# This host's image forbids package scripts to start services (a policy-rc.d
# that says no, as in Docker images); the system of an administrator who
# installs the package has none, so the throwaway system drops it.
rm -f "$T/root/usr/sbin/policy-rc.d"

# the test as a service of the booted system, which powers it off when
# done; tests/deb/in-container.sh PHASE does the work
mkdir -p "$T/root/etc/systemd/system"
cat > "$T/root/etc/systemd/system/poprelay-test@.service" <<EOU
[Unit]
Description=poprelay's package test, phase %i
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
Environment=DEB1=$deb1 DEB2=$deb2
ExecStart=/bin/sh /poprelay-src/tests/deb/in-container.sh %i
StandardOutput=append:/poprelay-out/log
StandardError=inherit
TimeoutStartSec=240
EOU

# boot PHASE: boots the system, which runs that phase, and waits for it
# to power off (four minutes at most); its output is shown, its counts
# added to this script's
boot () {
  rm -f "$T/out/results" "$T/out/log"
  : > "$T/out/log"
  start=$(date +%s)
  timeout -k 10 300 systemd-nspawn -q --register=no --keep-unit --private-network \
    -D "$T/root" --bind-ro="$TOP:/poprelay-src" --bind-ro="$T/deb:/poprelay-deb" --bind="$T/out:/poprelay-out" \
    -b systemd.firstboot=off systemd.wants="poprelay-test@$1.service" > "$T/out/console-$1" 2>&1 < /dev/null
  st=$?
  echo "deb.sh: the $1 boot took $(( $(date +%s) - start )) s"
  cat "$T/out/log"
  if [ -s "$T/out/results" ]; then
    read -r p f < "$T/out/results"
    passed=$((passed + p))
    failed=$((failed + f))
    pass
  else
    fail "the $1 boot ended (systemd-nspawn exit $st) before its test did; the console's last lines:" "$(tail -n 30 "$T/out/console-$1")"
  fi
}
boot install
boot upgrade
ok "nothing of poprelay reached this host" sh -c '! dpkg-query -W poprelay >/dev/null 2>&1 && ! getent group poprelay >/dev/null && ! test -e /var/lib/poprelay/relay'
done_testing
