# ngx_ent build.  Out of tree: everything generated goes to build/ (and the
# .so files to modules/, entctl to bin/); "make clean" leaves the checkout
# as it was.
#
#   make                          modules against the distribution's nginx
#                                 (/usr/share/nginx/src from nginx-dev)
#   make NGINX_SRC=/path/nginx    modules and an nginx binary from that tree
#   make SANITIZE=1               nginx + modules with ASan and UBSan
#   make test [SANITIZE=1]        unit tests, fuzz corpus replay, t/*.t
#   make fuzz [FUZZ_SECONDS=60]   run every libFuzzer target
#   make bench                    bench/run (wrk, side by side)

SHELL       := /bin/bash
TOP         := $(CURDIR)
SANITIZE    ?= 0
DIST_SRC    := /usr/share/nginx/src
NGINX_VER   := $(or $(shell dpkg-query -W -f='$${Version}' nginx 2>/dev/null \
                          | sed 's/-.*//'),1.22.1)
CC          ?= cc
FUZZ_SECONDS ?= 60
JOBS        ?= 2

ifeq ($(SANITIZE),1)
  NGINX_SRC ?= $(TOP)/build/src/nginx-$(NGINX_VER)
  BUILD     := $(TOP)/build/asan
  MODDIR    := $(BUILD)/modules
  SAN_CC    := -fsanitize=address,undefined -fno-omit-frame-pointer \
               -DNGX_DEBUG_PALLOC=1 -O1 -g
  SAN_LD    := -fsanitize=address,undefined
else ifneq ($(NGINX_SRC),)
  BUILD     := $(TOP)/build/src-$(notdir $(NGINX_SRC))
  MODDIR    := $(BUILD)/modules
else
  BUILD     := $(TOP)/build/dist
  MODDIR    := $(TOP)/modules
endif

NGX_TREE    := $(BUILD)/nginx
NGX_BIN     := $(if $(NGINX_SRC),$(NGX_TREE)/objs/nginx,/usr/sbin/nginx)

CORE_SRCS   := $(wildcard ngx_ent_core/*.c ngx_ent_core/*.h)
MOD_SRCS    := $(CORE_SRCS) $(wildcard ngx_ent_*/*.c ngx_ent_*/*.h) \
               t/module/ngx_http_ent_test_module.c config
MODULES     := core tenant ratelimit sso scim test

WARN        := -W -Wall -Wextra -Wpointer-arith -Wno-unused-parameter -Werror
PG_INC      := $(shell pg_config --includedir 2>/dev/null || \
                       echo /usr/include/postgresql)

.PHONY: all modules entctl test valgrind unit fuzz fuzz-replay bench clean distclean \
        check-directives

all: modules entctl

modules: $(MODDIR)/.built

$(NGX_TREE)/configure:
	@rm -rf $(NGX_TREE); mkdir -p $(BUILD)
	@if [ -n "$(NGINX_SRC)" ]; then \
	    [ -f "$(NGINX_SRC)/src/core/nginx.h" ] || \
	        bash scripts/deps.sh --source >/dev/null; \
	    cp -a "$(NGINX_SRC)" $(NGX_TREE); \
	else \
	    [ -x $(DIST_SRC)/configure ] || bash scripts/deps.sh; \
	    cp -a $(DIST_SRC) $(NGX_TREE); \
	fi
	@chmod -R u+w $(NGX_TREE)

$(NGX_TREE)/objs/Makefile: $(NGX_TREE)/configure config
	@echo "configure nginx in $(NGX_TREE)"
	@cd $(NGX_TREE) && source $(DIST_SRC)/conf_flags && \
	    ENT_TEST_MODULE=1 ./configure "$${NGX_CONF_FLAGS[@]}" \
	        $(if $(SAN_CC),--with-cc-opt="$(SAN_CC)" \
	                       --with-ld-opt="$(SAN_LD)") \
	        --add-dynamic-module=$(TOP) > $(BUILD)/configure.log 2>&1 \
	    || { tail -30 $(BUILD)/configure.log; exit 1; }

$(MODDIR)/.built: $(NGX_TREE)/objs/Makefile $(MOD_SRCS)
	@scripts/check-directives.sh
	@$(MAKE) -s -C $(NGX_TREE) -f objs/Makefile -j$(JOBS) modules \
	    $(if $(NGINX_SRC),binary)
	@mkdir -p $(MODDIR)
	@for m in $(MODULES); do \
	    cp --remove-destination \
	        $(NGX_TREE)/objs/ngx_http_ent_$${m}_module.so $(MODDIR)/; \
	done
	@touch $@
	@echo "modules in $(MODDIR)$(if $(NGINX_SRC), and nginx in $(NGX_BIN))"

check-directives:
	@scripts/check-directives.sh

# entctl: the admin CLI, with the migrations compiled in

ENTCTL_SRCS := $(wildcard entctl/*.c entctl/*.h)

entctl: bin/entctl

$(TOP)/build/entctl_sql.c: $(wildcard sql/*.sql) scripts/embed-sql.pl
	@mkdir -p $(TOP)/build
	@perl scripts/embed-sql.pl sql > $@

bin/entctl: $(ENTCTL_SRCS) $(TOP)/build/entctl_sql.c \
            ngx_ent_tenant/ngx_ent_host.c ngx_ent_tenant/ngx_ent_host.h \
            ngx_ent_sso/ngx_ent_jwt.c ngx_ent_sso/ngx_ent_jwt.h \
            ngx_ent_sso/ngx_ent_sso_util.c ngx_ent_sso/ngx_ent_sso_util.h \
            ngx_ent_sso/ngx_ent_saml.c ngx_ent_sso/ngx_ent_saml.h \
            ngx_ent_sso/ngx_ent_saml_int.h ngx_ent_sso/ngx_ent_saml_response.c \
            ngx_ent_sso/ngx_ent_saml_sig.c ngx_ent_sso/ngx_ent_saml_enc.c \
            ngx_ent_sso/ngx_ent_saml_logout.c ngx_ent_sso/ngx_ent_saml_md.c \
            ngx_ent_core/ngx_ent_rows.c ngx_ent_core/ngx_ent_rows.h
	@mkdir -p bin
	$(CC) -O2 -g $(WARN) -I$(PG_INC) -Ientctl -Ingx_ent_tenant -Ingx_ent_core \
	    -Ingx_ent_sso $(XMLSEC_CFLAGS) -o $@ $(filter %.c,$^) -lpq -lssl \
	    $(XMLSEC_LIBS) -lcrypto -ljansson

# unit tests and fuzz targets of the I/O-free code

UNIT_DIR    := $(BUILD)/unit
PURE_SRCS   := ngx_ent_core/ngx_ent_rows.c ngx_ent_tenant/ngx_ent_host.c \
               ngx_ent_ratelimit/ngx_ent_rl.c ngx_ent_sso/ngx_ent_jwt.c \
               ngx_ent_sso/ngx_ent_sso_util.c ngx_ent_sso/ngx_ent_saml.c \
               ngx_ent_sso/ngx_ent_saml_response.c \
               ngx_ent_sso/ngx_ent_saml_sig.c ngx_ent_sso/ngx_ent_saml_enc.c \
               ngx_ent_sso/ngx_ent_saml_logout.c ngx_ent_sso/ngx_ent_saml_md.c \
               ngx_ent_sso/ngx_ent_saml_redirect.c \
               ngx_ent_scim/ngx_ent_scim_filter.c \
               ngx_ent_scim/ngx_ent_scim_parse.c \
               ngx_ent_scim/ngx_ent_scim_path.c \
               ngx_ent_scim/ngx_ent_scim_patch.c \
               ngx_ent_scim/ngx_ent_scim_patch_value.c
PURE_HDRS   := ngx_ent_core/ngx_ent_rows.h ngx_ent_tenant/ngx_ent_host.h \
               ngx_ent_ratelimit/ngx_ent_rl.h ngx_ent_sso/ngx_ent_jwt.h \
               ngx_ent_sso/ngx_ent_sso_util.h ngx_ent_sso/ngx_ent_saml.h \
               ngx_ent_sso/ngx_ent_saml_int.h \
               ngx_ent_sso/ngx_ent_saml_redirect.h \
               ngx_ent_scim/ngx_ent_scim_filter.h \
               ngx_ent_scim/ngx_ent_scim_int.h \
               ngx_ent_scim/ngx_ent_scim_path.h \
               ngx_ent_scim/ngx_ent_scim_patch.h
# xmlsec1's defines must match its build (XMLSEC_NO_SIZE_T changes types)
XMLSEC_CFLAGS = $(shell pkg-config --cflags xmlsec1-openssl libxml-2.0)
XMLSEC_LIBS = $(shell pkg-config --libs xmlsec1-openssl libxml-2.0) -lz
PURE_LIBS   = -ljansson -lhiredis $(XMLSEC_LIBS) -lcrypto
UNIT_NAMES  := $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))
FUZZ_SRCS   := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_NAMES  := $(patsubst test/fuzz/%.c,%,$(FUZZ_SRCS))
UNIT_CFLAGS = -O1 -g $(WARN) -Ingx_ent_core -Ingx_ent_tenant \
               -Ingx_ent_ratelimit -Ingx_ent_sso -Ingx_ent_scim \
               $(XMLSEC_CFLAGS) $(SAN_CC)

unit: $(addprefix $(UNIT_DIR)/,$(UNIT_NAMES)) \
      $(addprefix $(UNIT_DIR)/replay_,$(FUZZ_NAMES))

$(UNIT_DIR)/test_%: test/unit/test_%.c test/unit/tap.h $(PURE_SRCS) $(PURE_HDRS)
	@mkdir -p $(UNIT_DIR)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) $(PURE_LIBS) $(SAN_LD)

$(UNIT_DIR)/replay_%: test/fuzz/%.c test/fuzz/replay.c $(PURE_SRCS) \
                      $(PURE_HDRS)
	@mkdir -p $(UNIT_DIR)
	$(CC) $(UNIT_CFLAGS) -o $@ $< test/fuzz/replay.c $(PURE_SRCS) \
	    $(PURE_LIBS) $(SAN_LD)

fuzz:
	@mkdir -p $(TOP)/build/fuzz
	@for f in $(FUZZ_NAMES); do \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined -Ingx_ent_core \
	        -Ingx_ent_tenant -Ingx_ent_ratelimit -Ingx_ent_sso \
	        -Ingx_ent_scim $(XMLSEC_CFLAGS) -o $(TOP)/build/fuzz/$$f \
	        test/fuzz/$$f.c \
	        $(PURE_SRCS) $(PURE_LIBS) || exit 1; \
	    mkdir -p test/fuzz/corpus/$${f#fuzz_}; \
	    $(TOP)/build/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=$$(case $$f in fuzz_saml) echo 16384;; \
	                    fuzz_saml_redirect) echo 8192;; *) echo 4096;; esac) \
	        test/fuzz/corpus/$${f#fuzz_} || exit 1; \
	done

# tests

test: all unit
	@ENT_NGINX=$(NGX_BIN) ENT_MODULES=$(MODDIR) ENT_UNIT=$(UNIT_DIR) \
	 ENT_SANITIZE=$(SANITIZE) ENT_TOP=$(TOP) \
	 prove -j$(JOBS) -I t/lib t/

# the integration tests again with nginx under valgrind's memcheck
# (docs/testing.md)
valgrind: all unit
	@ENT_VALGRIND=1 ENT_NGINX=$(NGX_BIN) ENT_MODULES=$(MODDIR) \
	 ENT_UNIT=$(UNIT_DIR) ENT_TOP=$(TOP) prove -j$(JOBS) -I t/lib t/

bench: all
	@ENT_NGINX=$(NGX_BIN) ENT_MODULES=$(MODDIR) bash bench/run

# Debian packages (debian/, with dh-sequence-nginx) into build/deb/,
# built from a copy of the tree: see scripts/deb.sh, docs/packaging.md

.PHONY: deb

deb:
	@JOBS=$(JOBS) bash scripts/deb.sh

clean:
	rm -rf build bin
	rm -f modules/*.so modules/.built

distclean: clean
