# poprelay: plain make. The compiler and linker commands are the first
# lines of conf-cc and conf-ld. B is where objects and programs go (the
# sanitizer build uses another), EXTRA_CFLAGS and EXTRA_LDFLAGS are added.

B = .
CC_ = $(shell head -n 1 conf-cc) $(EXTRA_CFLAGS)
LD_ = $(shell head -n 1 conf-ld) $(EXTRA_LDFLAGS)
SKARNET = -l:libskarnet.a
CDB = -l:libcdb.a
PREFIX = /usr/local
DESTDIR =

PROGRAMS = pop3-wrapper relay-open relay-clean
MANPAGES = pop3-wrapper.8 relay-open.8 relay-clean.8
UNITS = tests/unit/t-ip tests/unit/t-rules tests/unit/t-stamp tests/unit/t-conf tests/unit/mkstamps
MODULES = ip conf rules stamp scan cdbout trigger peer

all: $(addprefix $(B)/,$(PROGRAMS))

units: $(addprefix $(B)/,$(UNITS))

$(B)/%.o: %.c $(wildcard *.h) $(wildcard tests/unit/*.h) conf-cc
	@mkdir -p $(dir $@)
	$(CC_) -I. -c -o $@ $<

$(B)/pop3-wrapper: $(addprefix $(B)/,pop3-wrapper.o ip.o conf.o rules.o stamp.o trigger.o peer.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/relay-open: $(addprefix $(B)/,relay-open.o ip.o conf.o rules.o stamp.o scan.o cdbout.o trigger.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(CDB) $(SKARNET)

$(B)/relay-clean: $(addprefix $(B)/,relay-clean.o ip.o conf.o rules.o stamp.o scan.o trigger.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-ip: $(addprefix $(B)/,tests/unit/t-ip.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-rules: $(addprefix $(B)/,tests/unit/t-rules.o rules.o ip.o cdbout.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(CDB) $(SKARNET)

$(B)/tests/unit/t-stamp: $(addprefix $(B)/,tests/unit/t-stamp.o stamp.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/t-conf: $(addprefix $(B)/,tests/unit/t-conf.o conf.o rules.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

$(B)/tests/unit/mkstamps: $(addprefix $(B)/,tests/unit/mkstamps.o stamp.o ip.o) conf-ld
	$(LD_) -o $@ $(filter %.o,$^) $(SKARNET)

check: all units
	package/check

install: all
	package/install

clean:
	rm -f $(addprefix $(B)/,$(PROGRAMS) $(UNITS)) $(B)/*.o $(B)/tests/unit/*.o

.PHONY: all units check install clean
