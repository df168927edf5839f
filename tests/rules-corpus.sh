# rules-corpus: with no grants, relay-open writes byte for byte what
# tcprules writes from the same rules, and refuses what tcprules refuses,
# leaving the old cdb as it was. Checked on the files in tests/rules (and
# tests/rules/v6 against Debian's ucspi-tcp-ipv6 tcprules), then on a few
# hundred generated files mixing good and bad lines.

. "$TOP/tests/lib.sh"

U6=$TOP/.deps/ucspi-tcp-ipv6/usr/bin
mkdir -p "$T/relay" "$T/cache"

# same FLAVOUR TCPRULES FILE DESC: compare one rules file
same () {
  flavour=$1; tr=$2; file=$3; desc=$4
  rm -f "$T/a.cdb" "$T/a.tmp"
  printf 'old' > "$T/b.cdb"
  timeout 0.3 "$tr" "$T/a.cdb" "$T/a.tmp" < "$file" > "$T/a.err" 2>&1
  ra=$?
  [ "$ra" = 124 ] && ra=hang
  relay-open -d "$T/relay" -c "$T/cache" -r "$file" -o "$T/b.cdb" -T "$flavour" > "$T/b.err" 2>&1
  rb=$?
  if [ "$ra" = 0 ]; then
    if [ "$rb" != 0 ]; then
      fail "$desc" "tcprules accepts it, relay-open exits $rb:" "$(cat "$T/b.err")"
    elif ! cmp -s "$T/a.cdb" "$T/b.cdb"; then
      fail "$desc" "the cdb differs from tcprules': $(cmp "$T/a.cdb" "$T/b.cdb" 2>&1)" "$(head -c 300 "$file" | od -c | head -5)"
    else
      pass
    fi
  else
    # tcprules refuses (100) or, ucspi-tcp-ipv6's, loops for ever on a
    # line with no colon followed by allow or deny
    if [ "$rb" != 100 ]; then
      fail "$desc" "tcprules refuses it ($ra), relay-open exits $rb:" "$(cat "$T/b.err")" "$(head -c 300 "$file" | od -c | head -5)"
    elif [ "$(cat "$T/b.cdb")" != old ]; then
      fail "$desc" "the old cdb was replaced"
    elif ls "$T"/b.cdb.* >/dev/null 2>&1; then
      fail "$desc" "a temp file was left: $(ls "$T"/b.cdb.*)"
    elif ! grep -q "^relay-open: fatal: $file:[0-9][0-9]*: " "$T/b.err"; then
      fail "$desc" "no 'relay-open: fatal: FILE:LINE: ...' line:" "$(cat "$T/b.err")"
    else
      pass
    fi
  fi
}

for f in "$TOP"/tests/rules/*.txt; do
  same ucspi-tcp tcprules "$f" "ucspi-tcp: $(basename "$f")"
done
for f in "$TOP"/tests/rules/v6/*.txt; do
  same ucspi-tcp-ipv6 "$U6/tcprules" "$f" "ucspi-tcp-ipv6: $(basename "$f")"
done

# the line number names the first bad line
t relay-open -d "$T/relay" -c "$T/cache" -r "$TOP/tests/rules/bad-word.txt" -o "$T/x.cdb"
expect "a bad line is named by file and line" 100 "relay-open: fatal: $TOP/tests/rules/bad-word.txt:2: the colon is not followed by allow or deny"

# a blank line of spaces: tcprules (ucspi-tcp) skips it; ucspi-tcp-ipv6's
# tcprules never returns; relay-open skips it with either
printf '1.2.3.4:allow\n   \n' > "$T/blank.txt"
t relay-open -d "$T/relay" -c "$T/cache" -r "$T/blank.txt" -o "$T/x.cdb" -T ucspi-tcp-ipv6
expect "ucspi-tcp-ipv6: a line of blanks is skipped" 0 ""

# generated files: lines made of good and bad pieces, from a fixed seed
gen () {
  awk -v seed="$1" -v n="$2" -v six="$3" -v dir="$T/gen" '
  function pick(a, k) { return a[int(rand() * k) + 1] }
  BEGIN {
    srand(seed)
    na = split("1.2.3.4|1.2.3.|10.|127.0.0.1|10.0.0.1-9|10.0.0.250-260|1.2.-3.4|=host.example|=.example|=|joe@1.2.3.4|joe@=h|1.2.3.x-1||x y|a\tb|1.2.3.4#", addr, "|")
    if (six) na = split("::1|2001:db8::1|2001:db8:|fe80::1-3|1:2|1.2.3.4|127.|=host|::|||x@::1", addr, "|")
    nv = split("allow|deny|allow|deny|allow|permit|allo|denyx| allow|allow ", verb, "|")
    nx = split(",A=\"x\"|,B=/y y/|,C=||,RELAYCLIENT=\"\"|,D=\"\"|,E|,F=|,G=\"open|,=\"\"|,H=x|junk|,I=,a,|,J=::", vars, "|")
    for (f = 1; f <= n; f++) {
      file = dir "/" f ".txt"
      lines = int(rand() * 6)
      out = ""
      for (l = 0; l < lines; l++) {
        r = rand()
        if (r < 0.08) line = "# comment " l
        else if (r < 0.12 && !six) line = ""
        else if (r < 0.15 && !six) line = "no colon here"
        else {
          # (ucspi-tcp-ipv6 tcprules spins for ever on a line with no
          # colon followed by allow or deny: few such lines there)
          line = pick(addr, na) ":" (rand() < (six ? 0.99 : 0.9) ? pick(verb, six && rand() < 0.95 ? 4 : nv) : "")
          k = int(rand() * 3)
          for (j = 0; j < k; j++) line = line (rand() < 0.85 ? pick(vars, 3) : pick(vars, nx))
          if (rand() < 0.1) line = line "  \t"
        }
        out = out line (l < lines - 1 || rand() < 0.8 ? "\n" : "")
      }
      printf "%s", out > file
      close(file)
    }
  }'
}
mkdir -p "$T/gen"
gen 20261128 250 0
for f in "$T"/gen/*.txt; do same ucspi-tcp tcprules "$f" "ucspi-tcp: generated $(basename "$f")"; done
rm -f "$T"/gen/*
gen 1128 120 1
for f in "$T"/gen/*.txt; do same ucspi-tcp-ipv6 "$U6/tcprules" "$f" "ucspi-tcp-ipv6: generated $(basename "$f")"; done

done_testing
