# s6-accessrules: relay-open -T s6-networking writes the cdb that
# s6-tcpserver-access -x reads. s6-tcpserver-access is not in Debian 12;
# tests/unit/s6check runs the lookup it calls (libs6's
# s6_accessrules_ip46_cdb) over the cdb. For every address drawn from the
# tcprules corpus (tests/rules, tests/rules/v6: each key, the network
# addresses of prefixes, addresses inside and beside them, each IPv4 one
# also as v4-mapped IPv6) and for grants, its decision (allow or deny, and
# the variables) must be what tcprulescheck decides on the cdb tcprules
# writes from the same rules. Then: what is refused, what is left out,
# the limits, and the round trip through s6's directory form.

. "$TOP/tests/lib.sh"
setup_relay
U6=$TOP/.deps/ucspi-tcp-ipv6/usr/bin
CHECK=$BIN/tests/unit/s6check
TCPRULESCHECK=$(command -v tcprulescheck)
compared=0

# settled FILE: date the rules a minute back, so that relay-open does not
# wait for them to settle
settled () { touch -d '1 minute ago' "$1"; }

# s6open RULES CDB [options]: relay-open for s6-tcpserver-access
s6open () {
  r=$1; o=$2; shift 2
  relay-open -d "$POPRELAY_DIR" -c "$POPRELAY_CACHE" -r "$r" -o "$o" -T s6-networking "$@"
}

# candidates: client addresses to try for each key read on stdin, as text
# that t-ip then reads (what it refuses is dropped): the key itself, the
# network address and the ends of a prefix, and neighbours on each side
candidates () {
  awk '
  function hexval(s,   i, c, v) {
    v = 0; s = tolower(s)
    if (s == "" || length(s) > 4) return -1
    for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)); if (!c) return -1; v = v * 16 + c - 1 }
    return v
  }
  function fill4(p, n, x,   s, i) { s = ""; for (i = 1; i <= 4; i++) s = s (i > 1 ? "." : "") (i <= n ? p[i] : x); return s }
  function v4(k,   n, p, i, last) {
    if (k ~ /\.$/) {
      n = split(substr(k, 1, length(k) - 1), p, ".")
      print fill4(p, n, 0); print fill4(p, n, 255); print fill4(p, n, 7)
      last = p[n]
      p[n] = last + 1; print fill4(p, n, 0)
      p[n] = last - 1; print fill4(p, n, 255)
      return
    }
    print k
    n = split(k, p, ".")
    if (n != 4) { print fill4(p, n, 0); return }
    for (i = 1; i <= 4; i++) { last = p[i]; p[i] = last + 1; print fill4(p, 4, p[4]); p[i] = last - 1; print fill4(p, 4, p[4]); p[i] = last }
  }
  function v6(k,   head, tail, g, v, s, n, i) {
    if (k ~ /:$/) {
      print k ":"; print k ":1"
      s = substr(k, 1, length(k) - 1); n = split(s, g, ":")
      for (i = n + 1; i <= 8; i++) s = s ":ffff"
      print s
      head = substr(k, 1, length(k) - 1)
      sub(/[^:]*$/, "", head)
      v = hexval(g[n])
      if (v >= 0) { print head sprintf("%x", (v + 1) % 65536) "::1"; print head sprintf("%x", (v + 65535) % 65536) ":ffff::" }
      return
    }
    print k
    head = k; sub(/[^:]*$/, "", head); tail = substr(k, length(head) + 1)
    v = hexval(tail)
    if (v >= 0) { print head sprintf("%x", (v + 1) % 65536); print head sprintf("%x", (v + 65535) % 65536) }
    head = k; sub(/:.*$/, "", head)
    v = hexval(head)
    if (v >= 0) { print sprintf("%x", (v + 1) % 65536) substr(k, length(head) + 1) }
  }
  /^[0-9.]+$/ { v4($0); next }
  /^[0-9a-fA-F:.]+$/ && /:/ { v6($0); next }
  '
}

# pairs FLAVOUR: the addresses of candidates, read on stdin, as lines
# "LABEL TCPREMOTEIP CHECKER": the text s6check reads, the text
# ucspi-tcp(-ipv6)'s tcpserver would set, and which tcprulescheck to ask
# (4 or 6; IPv6 always 6). IPv4 also as v4-mapped IPv6.
pairs () {
  sed 's/^/scan /' | "$BIN/tests/unit/t-ip" | awk -v fl="$1" '
    $4 == "refused" { next }
    {
      canon = $4; k6 = $5; sub(/^text=/, "", k6)
      if (canon ~ /:/) { print canon, k6, 6; next }
      print canon, canon, fl
      split(canon, o, ".")
      printf "::ffff:%x:%x %s %s\n", o[1] * 256 + o[2], o[3] * 256 + o[4], canon, fl
    }' | sort -u -k1,1
}

# compare DESC ORACLE.CDB S6.CDB PAIRS: tcprulescheck on ORACLE against
# s6check on S6 for each pair; one case, the addresses counted
compare () {
  while read -r label tip fl; do
    echo "== $label"
    if [ "$fl" = 4 ]; then env -i TCPREMOTEIP="$tip" "$TCPRULESCHECK" "$2"; else env -i TCPREMOTEIP="$tip" "$U6/tcprulescheck" "$2"; fi
  done < "$4" | "$CHECK" -t > "$T/want"
  cut -d' ' -f1 "$4" | "$CHECK" "$3" > "$T/got"
  n=$(wc -l < "$4")
  if [ "$n" -gt 0 ] && cmp -s "$T/want" "$T/got" && ! grep -q ' \(none\|error\|unparsable\)$' "$T/got"; then
    pass
    compared=$((compared + n))
  else
    fail "$1: s6-tcpserver-access and tcpserver decide differently ($n addresses)" "$(diff "$T/want" "$T/got" | head -20)"
  fi
}

# kinds FILE: relay-open's complaints about FILE, one per line, as
# "LINE KIND"
kinds () {
  sed -n "s|^relay-open: [a-z]*: $1:\([0-9]*\): \(.*\)|\1 \2|p" | awk '{
    line = $1; m = substr($0, length($1) + 2); k = "parse"
    if (m ~ /^this key matches no client address/) k = "left-out"
    else if (m ~ /^a host-name rule/) k = "host"
    else if (m ~ /^a TCPREMOTEINFO rule/) k = "info"
    else if (m ~ /^an IPv6 prefix translates/) k = "v6prefix"
    else if (m ~ /^a variable with an empty name/) k = "empty-name"
    else if (m ~ /^s6-tcpserver-access sets/) k = "reserved"
    else if (m ~ /4096 bytes/) k = "too-big"
    print line, k }'
}

# --- the corpus: each file, its refused lines made comments one by one ---
: > "$T/complaints"
mkdir -p "$T/corpus"
for f in "$TOP"/tests/rules/*.txt "$TOP"/tests/rules/v6/*.txt; do
  case $f in */v6/*) name=v6/$(basename "$f"); fl=6 ;; *) name=$(basename "$f"); fl=4 ;; esac
  w=$T/corpus/work.txt
  cp "$f" "$w"
  i=0
  while [ "$i" -lt 20 ]; do
    settled "$w"
    s6open "$w" "$T/s6.cdb" > "$T/err" 2>&1
    rc=$?
    kinds "$w" < "$T/err" | sed "s|^|$name:|" >> "$T/complaints"
    [ "$rc" = 0 ] && break
    line=$(sed -n "s|^relay-open: fatal: $w:\([0-9]*\): .*|\1|p" "$T/err")
    if [ "$rc" != 100 ] || [ -z "$line" ]; then fail "$name: relay-open exits $rc without naming a line" "$(cat "$T/err")"; break; fi
    awk -v n="$line" 'NR == n { print "#"; next } { print }' "$w" > "$w.new" && mv "$w.new" "$w"
    i=$((i + 1))
  done
  [ "$rc" = 0 ] || continue
  # the oracle: what tcprules writes from the same lines, with ucspi-tcp's
  # tcprules or (for IPv6 keys) ucspi-tcp-ipv6's, through relay-open -T
  # ucspi-tcp-ipv6, which writes its bytes without hanging where it hangs
  rm -f "$T/oracle.cdb"
  if [ "$fl" = 4 ] && tcprules "$T/oracle.cdb" "$T/oracle.tmp" < "$w" 2>/dev/null; then ofl=4
  elif relay-open -d "$POPRELAY_DIR" -c "$POPRELAY_CACHE" -r "$w" -o "$T/oracle.cdb" -T ucspi-tcp-ipv6 2>/dev/null; then ofl=6
  else fail "$name: neither tcprules reads what relay-open -T s6-networking reads"; continue
  fi
  { cdb -l -m "$T/oracle.cdb"; printf '127.0.0.1\n9.9.9.9\n0.0.0.0\n255.255.255.255\n::1\n2001:db8::1\n2001:db8:0:1:1:1:1:1\nfe80::1\n'; } | candidates | pairs "$ofl" > "$T/pairs"
  compare "corpus $name" "$T/oracle.cdb" "$T/s6.cdb" "$T/pairs"
done

# what was refused or left out, line by line (in byte order): host names,
# TCPREMOTEINFO, IPv6 prefixes that are not whole nonzero groups, empty
# names, lines tcprules refuses too; keys no address is written as
cat > "$T/complaints.want" <<'EOF'
bad-allowed.txt:1 parse
bad-junk-after-value.txt:2 parse
bad-nocomma.txt:1 parse
bad-noequals.txt:1 parse
bad-novalue.txt:1 parse
bad-range.txt:1 parse
bad-space.txt:1 parse
bad-unclosed.txt:1 parse
bad-word.txt:2 parse
bytes.txt:2 left-out
delims.txt:1 parse
delims.txt:2 empty-name
delims.txt:3 parse
forms.txt:10 host
forms.txt:11 host
forms.txt:12 host
forms.txt:13 info
forms.txt:14 info
qmail-lwq.txt:6 host
qmail-lwq.txt:7 host
ranges.txt:10 info
ranges.txt:7 left-out
ranges.txt:9 host
v6/bad-allowx.txt:1 parse
v6/bad-unclosed.txt:1 parse
v6/mixed.txt:10 host
v6/mixed.txt:5 v6prefix
v6/mixed.txt:8 parse
v6/mixed.txt:9 left-out
v6/slash.txt:2 left-out
EOF
LC_ALL=C sort -u "$T/complaints" > "$T/complaints.got"
is "the corpus: refused and left-out lines, each for its reason" "$(cat "$T/complaints.got")" "$(cat "$T/complaints.want")"

# --- grants, judged against relay-open -T ucspi-tcp-ipv6 ---
cat > "$T/rules" <<'EOR'
# static rules of a qmail host, IPv4 and IPv6
127.:allow,RELAYCLIENT=""
10.1.:allow,QMAILQUEUE="/bin/scan1"
10.9.:deny
10.2.3.4:allow,QMAILQUEUE="/bin/exact",X="1",X="2"
10.3.:allow,RELAYCLIENT="@relay.example"
2001:db8:1::allow,K="v6 prefix"
2001:db8:9::deny
2001:db8:1::5:allow,K="v6 exact"
:allow,QMAILQUEUE="/bin/scan",RBLSMTPD=""
EOR
settled "$T/rules"
grants="192.0.2.7 10.1.2.3 10.9.0.1 10.2.3.4 10.3.0.1 127.0.0.9 2001:db8:1::7 2001:db8:1::5 2001:db8:9::1 2001:db8:2::1 2001:db8:0:1:1:1:1:1 ::ffff:192.0.2.8"
for a in $grants; do grant "$a"; done
grantpairs () {
  { printf '%s\n' $grants 192.0.2.8; cdb -l -m "$1"; } | candidates | pairs 6 > "$T/pairs"
}
t relay-open -T ucspi-tcp-ipv6 -o "$T/oracle.cdb"
expect_grep "the oracle: relay-open -T ucspi-tcp-ipv6 grants" 0 "not granting 2001:db8:9::1: $T/rules:8 denies it"
t s6open "$T/rules" "$T/s6.cdb"
expect_grep "grants for s6-tcpserver-access: a static IPv4 deny stays" 0 "^relay-open: warning: not granting 10.9.0.1: $T/rules:4 denies it$"
expect_grep "grants for s6-tcpserver-access: a static IPv6 deny stays" 0 "^relay-open: warning: not granting 2001:db8:9::1: $T/rules:8 denies it$"
is "and nothing else is said" "$(printf '%s\n' "$out" | grep -cv 'denies it$')" 0
grantpairs "$T/oracle.cdb"
compare "grants" "$T/oracle.cdb" "$T/s6.cdb" "$T/pairs"
is "a grant carries its static rule's variables and RELAYCLIENT" "$(echo 10.2.3.4 | "$CHECK" "$T/s6.cdb")" "10.2.3.4 allow QMAILQUEUE=/bin/exact RELAYCLIENT= X=2"
is "an IPv6 grant, whose text s6 writes uncompressed" "$(echo 2001:db8:0:1:1:1:1:1 | "$CHECK" "$T/s6.cdb")" "2001:db8:0:1:1:1:1:1 allow QMAILQUEUE=/bin/scan RBLSMTPD= RELAYCLIENT="
is "a static deny stays a deny" "$(printf '10.9.0.1\n2001:db8:9::1\n' | "$CHECK" "$T/s6.cdb")" "10.9.0.1 deny
2001:db8:9::1 deny"

# the keys beyond the static ones: exactly the granted addresses, whole
"$CHECK" -d "$T/s6.cdb" | cut -d' ' -f1 | LC_ALL=C sort > "$T/keys"
rm -rf "$T/relay"/*
settled "$T/rules"
s6open "$T/rules" "$T/static.cdb" 2>/dev/null
"$CHECK" -d "$T/static.cdb" | cut -d' ' -f1 | LC_ALL=C sort > "$T/static.keys"
is "each grant is its own whole address, in both families for IPv4; no key twice" "$(comm -23 "$T/keys" "$T/static.keys" | tr '\n' ' ')" \
  "ip4/10.1.2.3_32 ip4/10.3.0.1_32 ip4/127.0.0.9_32 ip4/192.0.2.7_32 ip4/192.0.2.8_32 ip6/2001:db8:0:1:1:1:1:1_128 ip6/2001:db8:1::7_128 ip6/2001:db8:2::1_128 ip6/::ffff:7f00:9_128 ip6/::ffff:a01:203_128 ip6/::ffff:a03:1_128 ip6/::ffff:c000:207_128 ip6/::ffff:c000:208_128 "
is "no key is written twice" "$(uniq -d "$T/keys")" ""
is "the grants of addresses with a static rule of their own replace it" "$(comm -13 "$T/keys" "$T/static.keys" | tr '\n' ' ')" ""

# POPRELAY_ENV, a rules file with no default, one with a deny default
for a in $grants; do grant "$a"; done
t relay-open -T ucspi-tcp-ipv6 -o "$T/oracle.cdb" -e ',RBLSMTPD="-x",QMAILQUEUE="/bin/grantscan"'
t s6open "$T/rules" "$T/s6.cdb" -e ',RBLSMTPD="-x",QMAILQUEUE="/bin/grantscan"'
expect_grep "POPRELAY_ENV for s6" 0 "not granting 10.9.0.1"
grantpairs "$T/oracle.cdb"
compare "grants with POPRELAY_ENV" "$T/oracle.cdb" "$T/s6.cdb" "$T/pairs"
grep -v '^:' "$T/rules" > "$T/rules.nodefault"
settled "$T/rules.nodefault"
relay-open -T ucspi-tcp-ipv6 -r "$T/rules.nodefault" -o "$T/oracle.cdb" 2>/dev/null
t s6open "$T/rules.nodefault" "$T/s6.cdb"
grantpairs "$T/oracle.cdb"
compare "grants, and no default rule: tcpserver allows the others, so does the s6 cdb" "$T/oracle.cdb" "$T/s6.cdb" "$T/pairs"
{ grep -v '^:' "$T/rules"; echo ':deny'; } > "$T/rules.deny"
settled "$T/rules.deny"
relay-open -T ucspi-tcp-ipv6 -r "$T/rules.deny" -o "$T/oracle.cdb" 2>/dev/null
t s6open "$T/rules.deny" "$T/s6.cdb"
expect_grep "a deny default: the grants under it are refused" 0 "not granting 192.0.2.7: $T/rules.deny:10 denies it"
grantpairs "$T/oracle.cdb"
compare "grants, and a deny default" "$T/oracle.cdb" "$T/s6.cdb" "$T/pairs"

# the listing reads the rules as the build does
t relay-open -l -T s6-networking
expect_grep "relay-open -l for s6: granted" 0 "^2001:db8:0:1:1:1:1:1 user=user .* status=granted$"
expect_grep "relay-open -l for s6: denied" 0 "^10.9.0.1 user=user .* status=denied rule-line=4$"

# --- refused: exit 100, FILE:LINE, the old cdb stays, no temp file ---
relay-open -T s6-networking >/dev/null 2>&1
cp "$T/rules.cdb" "$T/good.cdb"
long=$(awk 'BEGIN { while (n++ < 4094) printf "x" }')
near=$(awk 'BEGIN { while (n++ < 4090) printf "x" }')
refuse () {
  desc=$1; text=$2; want=$3
  printf '%s\n' "$text" > "$T/bad"
  settled "$T/bad"
  t relay-open -T s6-networking -r "$T/bad"
  if [ "$rc" != 100 ] || [ "$out" != "$want" ]; then fail "$desc" "wanted exit 100 and: $want" "got $rc:" "$out"
  elif ! cmp -s "$T/rules.cdb" "$T/good.cdb"; then fail "$desc: the old cdb was replaced"
  elif ls "$T" | grep -q relay-open.tmp; then fail "$desc: a temp file was left"
  else pass
  fi
}
refuse "a host-name rule" "1.2.3.4:allow
=mx.example.org:allow,RELAYCLIENT=\"\"" "relay-open: fatal: $T/bad:2: a host-name rule (=host) has no equivalent in s6-tcpserver-access, which looks names up only when no address rule matches"
refuse "a host-name suffix rule" "=.spammer.example:deny" "relay-open: fatal: $T/bad:1: a host-name rule (=host) has no equivalent in s6-tcpserver-access, which looks names up only when no address rule matches"
refuse "a TCPREMOTEINFO rule" "joe@192.0.2.7:allow" "relay-open: fatal: $T/bad:1: a TCPREMOTEINFO rule (info@) has no equivalent in s6-tcpserver-access"
refuse "an IPv6 prefix that ends in ::" "2001:db8:::allow" "relay-open: fatal: $T/bad:1: an IPv6 prefix translates for s6-tcpserver-access only as 1 to 7 nonzero groups, each ending in a colon (2001:db8:)"
refuse "an IPv6 prefix with a zero group" "2001:0::allow" "relay-open: fatal: $T/bad:1: an IPv6 prefix translates for s6-tcpserver-access only as 1 to 7 nonzero groups, each ending in a colon (2001:db8:)"
refuse "a variable with an empty name" "1.2.3.4:allow,=\"\"" "relay-open: fatal: $T/bad:1: a variable with an empty name (,=...) cannot be held in s6 access rules"
refuse "a variable s6-tcpserver-access sets after the rules" ":allow,TCPREMOTEHOST=\"x\"" "relay-open: fatal: $T/bad:1: s6-tcpserver-access sets TCPLOCALIP, TCPLOCALPORT, TCPLOCALHOST, TCPREMOTEHOST and TCPREMOTEINFO itself, after the rules"
refuse "variables past 4096 bytes" "1.2.3.:allow,A=\"$long\"" "relay-open: fatal: $T/bad:1: its variables pass the 4096 bytes s6-tcpserver-access reads"
refuse "variables that fit, but not with a grant's RELAYCLIENT" "1.2.3.:allow,A=\"$near\"" "relay-open: fatal: $T/bad:1: with POPRELAY_ENV and RELAYCLIENT, a grant under this rule would pass the 4096 bytes of variables s6-tcpserver-access reads"
refuse "a bad tcprules line" "1.2.3.4:allow,A" "relay-open: fatal: $T/bad:1: a variable has no ="
printf '1.2.3.:allow,A="%s"\n' "$near" > "$T/bad"; settled "$T/bad"
t relay-open -T s6-networking -r "$T/bad" -e ',=""'
expect "POPRELAY_ENV that s6 cannot hold" 100 "relay-open: fatal: POPRELAY_ENV: a variable with an empty name (,=...) cannot be held in s6 access rules"
t relay-open -T s6-networking -r "$T/bad" -e ",B=\"$long\""
expect "POPRELAY_ENV past 4096 bytes" 100 "relay-open: fatal: POPRELAY_ENV: its variables pass the 4096 bytes s6-tcpserver-access reads"
ok "and the cdb stays as it was" cmp "$T/rules.cdb" "$T/good.cdb"

# the limit itself: 4096 bytes of variables (a rule that sets RELAYCLIENT
# leaves a grant as it is), a deny's variables do not count
y=$(awk 'BEGIN { while (n++ < 4080) printf "y" }')
printf '1.2.3.:allow,RELAYCLIENT="",A="%s"\n1.2.4.:deny,A="%s%s"\n' "$y" "$long" "$long" > "$T/big"
settled "$T/big"
rm -rf "$T/relay"/*
t relay-open -T s6-networking -r "$T/big" -o "$T/big.cdb"
expect "4096 bytes of variables fit; a deny's variables do not count" 0 ""
is "s6 reads the 4096 bytes" "$(echo 1.2.3.9 | "$CHECK" "$T/big.cdb")" "1.2.3.9 allow A=$y RELAYCLIENT="
t relay-open -T s6-networking -r "$T/big" -o "$T/big.cdb" -e ',B=""'
expect "a rule at the limit leaves no room for POPRELAY_ENV" 100 "relay-open: fatal: $T/big:1: with POPRELAY_ENV and RELAYCLIENT, a grant under this rule would pass the 4096 bytes of variables s6-tcpserver-access reads"
printf '1.2.3.:allow,RELAYCLIENT="",A="%sy"\n' "$y" > "$T/big"
settled "$T/big"
t relay-open -T s6-networking -r "$T/big" -o "$T/big.cdb"
expect "one byte more is refused" 100 "relay-open: fatal: $T/big:1: its variables pass the 4096 bytes s6-tcpserver-access reads"

# left out, with a warning: keys no client address is written as
printf '1.2:allow,RELAYCLIENT=""\n1.2.3.4.:allow\n2001:DB8::1:allow\n:allow\n' > "$T/dead"
settled "$T/dead"
t relay-open -T s6-networking -r "$T/dead" -o "$T/dead.cdb"
expect "keys that match no address: a warning per line, exit 0" 0 "relay-open: warning: $T/dead:1: this key matches no client address, under tcpserver or s6-tcpserver-access: left out
relay-open: warning: $T/dead:2: this key matches no client address, under tcpserver or s6-tcpserver-access: left out
relay-open: warning: $T/dead:3: this key matches no client address, under tcpserver or s6-tcpserver-access: left out"
is "and what is left is the default" "$("$CHECK" -d "$T/dead.cdb" | tr '\n' ' ')" "ip4/0.0.0.0_0 A ip6/::_0 A "

# --- the round trip through s6's directory form ---
for a in $grants; do grant "$a"; done
relay-open -T s6-networking >/dev/null 2>&1
if s6-accessrules-fs-from-cdb "$T/fs" "$T/rules.cdb" && s6-accessrules-cdb-from-fs "$T/back.cdb" "$T/fs"; then
  pass
  "$CHECK" -d "$T/rules.cdb" | sort > "$T/records"
  "$CHECK" -d "$T/back.cdb" | sort > "$T/records.back"
  is "the round trip keeps every record" "$(diff "$T/records" "$T/records.back")" ""
  is "the directory form holds a grant as s6 writes one" "$(ls "$T/fs/ip4/192.0.2.7_32" | tr '\n' ' ')/$(ls "$T/fs/ip4/192.0.2.7_32/env" | tr '\n' ' ')" \
    "allow env /QMAILQUEUE RBLSMTPD RELAYCLIENT "
  grantpairs "$T/rules.cdb"
  cut -d' ' -f1 "$T/pairs" | "$CHECK" "$T/rules.cdb" > "$T/d1"
  cut -d' ' -f1 "$T/pairs" | "$CHECK" "$T/back.cdb" > "$T/d2"
  is "the round trip decides the same for $(wc -l < "$T/pairs") addresses" "$(diff "$T/d1" "$T/d2")" ""
  compared=$((compared + $(wc -l < "$T/pairs")))
else
  fail "s6-accessrules-fs-from-cdb or -cdb-from-fs refused relay-open's cdb"
fi

echo "s6-accessrules: $compared addresses compared, s6's lookup against tcprulescheck"
done_testing
