# man: each program's page is lint-clean under groff -man -ww, has the
# sections an administrator looks for, and documents every variable and
# option the program reads.

. "$TOP/tests/lib.sh"

for p in pop3-wrapper relay-open relay-clean relay-publish; do
  page=$TOP/$p.8
  t groff -man -ww -z "$page"
  expect "$p.8: groff -man -ww -z is silent" 0 ""
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    ok "$p.8 has a $s section" grep -q "^\.SH \"*$s\"*\$" "$page"
  done
  # every POPRELAY_ variable the program reads is in its page
  for v in $(sed -n '/vars\[\] = {/,/}/p' "$TOP/$p.c" | grep -o 'POPRELAY_[A-Z]*' | sort -u); do
    ok "$p.8 documents $v" grep -q "^\.I $v\$" "$page"
  done
  # every option letter in the getopt string is in the synopsis
  for o in $(grep -o 'subgetopt_r(argc, argv, "[^"]*"' "$TOP/$p.c" | sed 's/.*"\(.*\)"/\1/' | tr -d '+:' | sed 's/./& /g'); do
    ok "$p.8 shows option -$o in its synopsis" sh -c "sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' '$page' | grep -q -e '\\\\-$o'"
  done
  # the usage line the program prints names the same options
  t "$BIN/$p" -Z
  expect_grep "$p: an unknown option is a usage error" 100 "^$p: usage: $p "
done

done_testing
