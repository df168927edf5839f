# poprelay: plain make. The compiler and linker commands are the first
# lines of conf-cc and conf-ld. B is where objects and programs go (the
# sanitizer build uses another), EXTRA_CFLAGS and EXTRA_LDFLAGS are added.

B = .
CC_ = $(shell head -n 1 conf-cc) $(EXTRA_CFLAGS)
LD_ = $(shell head -n 1 conf-ld) $(EXTRA_LDFLAGS)
SKARNET = -l:libskarnet.a
CDB = -l:libcdb.a
# s6's access-rules lookup, for the s6-tcpserver-access checker and fuzz target
S6 = -l:libs6.a
PREFIX = /usr/local
DESTDIR =

PROGRAMS = pop3-wrapper relay-open relay-clean relay-publish
MANPAGES = pop3-wrapper.8 relay-open.8 relay-clean.8 relay-publish.8
UNITS = tests/unit/t-ip tests/unit/t-rules tests/unit/t-stamp tests/unit/t-conf tests/unit/mkstamps tests/unit/logsink tests/unit/t-s6rules tests/unit/s6check tests/unit/reaper
MODULES = ip conf rules stamp scan watch sources grant chain cdbout trigger relaydir peer s6rules hold memo

all: $(addprefix $(B)/,$(PROGRAMS))

units: $(addprefix $(B)/,$(UNITS))

$(B)/%.o: %.c $(wildcard *.h) $(wildcard tests/unit/*.h) conf-cc
	@mkdir -p $(dir $@)
	$(CC_) -I. -c -o $@ $<

$(B)/pop3-wrapper: $(addprefix $(B)/,pop3-wrapper.o ip.o conf.o rules.o stamp.o trigger.o relaydir.o peer.o chain.o hold.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/relay-open: $(addprefix $(B)/,relay-open.o ip.o conf.o rules.o stamp.o scan.o watch.o sources.o grant.o memo.o cdbout.o trigger.o relaydir.o s6rules.o hold.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(CDB) $(SKARNET)

$(B)/relay-clean: $(addprefix $(B)/,relay-clean.o ip.o conf.o rules.o stamp.o scan.o watch.o sources.o chain.o trigger.o relaydir.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/relay-publish: $(addprefix $(B)/,relay-publish.o ip.o conf.o rules.o stamp.o scan.o chain.o trigger.o relaydir.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-ip: $(addprefix $(B)/,tests/unit/t-ip.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-rules: $(addprefix $(B)/,tests/unit/t-rules.o stamp.o rules.o ip.o cdbout.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(CDB) $(SKARNET)

$(B)/tests/unit/t-stamp: $(addprefix $(B)/,tests/unit/t-stamp.o stamp.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-conf: $(addprefix $(B)/,tests/unit/t-conf.o conf.o rules.o stamp.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/mkstamps: $(addprefix $(B)/,tests/unit/mkstamps.o stamp.o ip.o relaydir.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/logsink: $(B)/tests/unit/logsink.o conf-ld
	$(LD_) -o $@ $(filter %.o,$^)

$(B)/tests/unit/reaper: $(B)/tests/unit/reaper.o conf-ld
	$(LD_) -o $@ $(filter %.o,$^)

$(B)/tests/unit/t-s6rules: $(addprefix $(B)/,tests/unit/t-s6rules.o stamp.o s6rules.o rules.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

# the checker uses s6's lookup and skalibs' cdb reader, nothing of poprelay
$(B)/tests/unit/s6check: $(B)/tests/unit/s6check.o conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(S6) $(SKARNET)

check: all units
	package/check

install: all
	package/install

clean:
	rm -f $(addprefix $(B)/,$(PROGRAMS) $(UNITS)) $(B)/*.o $(B)/tests/unit/*.o

# Fuzzing and sanitizers, each in a build directory of its own, never
# touching the objects above. "make fuzz" builds the libFuzzer targets of
# tests/fuzz with clang into $(FUZZ_B) (package/fuzz runs them); "make
# sanitize" builds the programs and unit drivers with AddressSanitizer and
# UndefinedBehaviorSanitizer into $(SAN_B), aborting at the first finding
# (BIN=$(SAN_B) tests/run runs the suite with them).
FUZZ_B = .build-fuzz
FUZZERS = fz-ip fz-rules fz-tcprules fz-stamp fz-conf fz-argv fz-s6
FUZZ_CC = $(shell head -n 1 conf-cc | sed 's/^[^ ]*/clang/; s/ -O2 / -O1 /') -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LD = clang -g -fsanitize=fuzzer,address,undefined
SAN_B = .build-asan
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

fuzz:
	$(MAKE) B=$(FUZZ_B) CC_='$(FUZZ_CC)' LD_='$(FUZZ_LD)' fuzzers

fuzzers: $(addprefix $(B)/tests/fuzz/,$(FUZZERS))

$(addprefix $(B)/tests/fuzz/,$(addsuffix .o,$(FUZZERS))): tests/fuzz/fz.h

$(B)/tests/fuzz/fz-ip: $(addprefix $(B)/,tests/fuzz/fz-ip.o ip.o stamp.o)
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/fuzz/fz-rules: $(addprefix $(B)/,tests/fuzz/fz-rules.o stamp.o rules.o ip.o)
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/fuzz/fz-tcprules: $(addprefix $(B)/,tests/fuzz/fz-tcprules.o stamp.o rules.o ip.o cdbout.o)
	$(LD_) -o $@ $(filter %.o,$^) $(CDB) $(SKARNET)

$(B)/tests/fuzz/fz-stamp: $(addprefix $(B)/,tests/fuzz/fz-stamp.o stamp.o ip.o)
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/fuzz/fz-conf: $(addprefix $(B)/,tests/fuzz/fz-conf.o conf.o rules.o stamp.o ip.o)
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/fuzz/fz-argv: $(addprefix $(B)/,tests/fuzz/fz-argv.o ip.o)
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/fuzz/fz-s6: $(addprefix $(B)/,tests/fuzz/fz-s6.o s6rules.o stamp.o rules.o ip.o)
	$(LD_) -o $@ $(filter %.o,$^) $(S6) $(SKARNET)

sanitize:
	$(MAKE) B=$(SAN_B) EXTRA_CFLAGS='$(SAN_FLAGS)' EXTRA_LDFLAGS='$(SAN_FLAGS)' all units

.PHONY: all units check install clean fuzz fuzzers sanitize
