# ringcast — the commands a user and CI need. `make help` lists them.

CARGO  ?= cargo
PORT   ?= 8000

.PHONY: help run test lint fmt bench soak release shape

help:
	@echo "make run     build and serve the built-in test tone on port $(PORT)"
	@echo "make test    every test (unit + black-box over loopback)"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make shape   the layout figures of src/ (import cycles, long functions, ...) and their ceilings"
	@echo "make bench   fan-out figures at 1/100/1000 listeners (and icecast2 beside them if installed)"
	@echo "make soak    15 minutes of everything at once (SOAK_SECS=…), memory/descriptors/threads printed"
	@echo "make release optimised binary in target/release/ringcast"
	@echo "make build TARGET=…     cross-compile for a Pi (cross, or cargo + Debian's cross gcc)"
	@echo "make deb [TARGET=…]     a .deb under target/deb/ (the host's without TARGET)"
	@echo "make deb-check [TARGET=…]   the package's fields, files, lintian; on the host: install, upgrade, remove, purge (root)"
	@echo "make deploy PI=user@host TARGET=… [STREAM=name] [CONF=file]   install the package on a Pi over ssh"
	@echo "make deploy-check   make deploy against a loopback sshd, this machine playing the Pi (root)"
	@echo "make size    stripped binary size per target"
	@echo "make arm-memory   memory per listener of the armv7 and ARMv6 binaries under qemu-user"
	@echo "make test-arm   the test suite for aarch64 (qemu-user) and ARMv6 (test-armv6)"
	@echo "make test-armv6 the unit tests and the black-box suite for ARMv6 on qemu-arm -cpu arm1176"
	@echo "make test-armv7 the test suite for armv7 under qemu-user (no package holds that target)"

run:
	$(CARGO) run --release -- -tone -address :$(PORT)

test: verify-units
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The figures of src/'s layout, each with its offenders and its ceiling (tests/blackbox/shape.rs).
shape:
	$(CARGO) test --locked --test blackbox shape -- --nocapture

release:
	$(CARGO) build --locked --release

soak:
	$(CARGO) bench --locked --bench soak

bench:
	$(CARGO) bench --locked --bench fanout

# ---------------------------------------------------------------- Raspberry Pi (cross) ----
# make build TARGET=aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf | arm-unknown-linux-musleabihf (ARMv6)
# make deploy PI=pi@studio-pi TARGET=…  [STREAM=name] [CONF=path/to/name.conf]

TARGET       ?=
PI           ?=
STREAM       ?= ringcast
CONF         ?=
ARM_TARGETS  := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
export CROSS_CONFIG := $(CURDIR)/cross/Cross.toml

# Debian's cross linkers and qemu-user, per target (for the cargo route and test-arm).
linker_aarch64-unknown-linux-gnu       := aarch64-linux-gnu-gcc
linker_armv7-unknown-linux-gnueabihf   := arm-linux-gnueabihf-gcc
linker_arm-unknown-linux-gnueabihf     := arm-linux-gnueabihf-gcc
qemu_aarch64-unknown-linux-gnu         := qemu-aarch64 -L /usr/aarch64-linux-gnu
qemu_armv7-unknown-linux-gnueabihf     := qemu-arm -L /usr/arm-linux-gnueabihf
upper = $(shell echo '$(1)' | tr 'a-z-' 'A-Z_')
# cross when it is installed and a container engine answers; plain cargo otherwise.
use_cross := $(shell command -v cross >/dev/null 2>&1 && { docker info >/dev/null 2>&1 || podman info >/dev/null 2>&1; } && echo yes)

ifeq ($(STREAM),ringcast)
  UNIT := ringcast.service
else
  UNIT := ringcast@$(STREAM).service
endif

.PHONY: build size deploy deploy-check arm-memory test-arm test-armv6 test-armv7 verify-units need-target deb deb-check

need-target:
	$(if $(TARGET),,$(error TARGET is not set: make $(MAKECMDGOALS) TARGET=aarch64-unknown-linux-gnu (or armv7-unknown-linux-gnueabihf, arm-unknown-linux-musleabihf)))

# The oldest glibc a Pi binary may need: Raspberry Pi OS Bullseye's. cargo-zigbuild (PyPI's
# `ziglang` and `cargo-zigbuild`) links against it; Debian bookworm's cross gcc would need 2.34.
GLIBC_FLOOR := 2.31
use_zig := $(shell command -v cargo-zigbuild >/dev/null 2>&1 && echo yes)

# ARMv6 (Pi Zero, Pi 1; every Pi on 32-bit Pi OS): a static musl binary linked by Zig, whose
# musl and start files are ARMv6. rustup has no standard library for it here (404), so it is
# built from rust-src with -Zbuild-std, which stable cargo allows only with RUSTC_BOOTSTRAP=1:
# set for this one target and nowhere else. No glibc at all, so no glibc floor either.
ARMV6 := arm-unknown-linux-musleabihf

ARMV6_ENV := CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" RUSTC_BOOTSTRAP=1
ARMV6_STD := -Zbuild-std=std,panic_abort
ARMV6_QEMU := qemu-arm -cpu arm1176
# The one unit test left out on ARMv6: a day of drift simulated frame by frame, pure integer
# arithmetic already run on 32-bit ARM by test-arm; in a debug build under TCG it takes 7 min.
ARMV6_SKIP := drift_of_100_ppm_either_way

build: need-target
ifeq ($(TARGET),$(ARMV6))
	rustup component add rust-src
	$(ARMV6_ENV) $(CARGO) zigbuild --locked --release $(ARMV6_STD) --target $(TARGET)
else ifeq ($(use_cross),yes)
	cross build --locked --release --target $(TARGET)
else ifeq ($(use_zig),yes)
	$(CARGO) zigbuild --locked --release --target $(TARGET).$(GLIBC_FLOOR)
else
	@echo "warning: cargo-zigbuild is not installed (pip install ziglang cargo-zigbuild): this binary needs Debian bookworm's glibc 2.34, newer than Pi OS Bullseye's 2.31"
	$(if $(filter arm-unknown-linux-gnueabihf,$(TARGET)),@echo "warning: Debian's arm-linux-gnueabihf-gcc emits ARMv7 code; this binary will not run on a Pi Zero/1 (see cross/README.md)")
	CARGO_TARGET_$(call upper,$(TARGET))_LINKER=$(linker_$(TARGET)) \
	  $(CARGO) build --locked --release --target $(TARGET)
endif

# A Debian package of the release binary (cross/deb says why dpkg-deb): the host's without
# TARGET, else the target's (arm64, armhf).
DEB_BIN = $(if $(TARGET),target/$(TARGET)/release/ringcast,target/release/ringcast)
DEB_ARCH = $(if $(TARGET),$(if $(filter aarch64%,$(TARGET)),arm64,armhf),$(shell dpkg --print-architecture))
DEB_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)-1
DEB_FILE = target/deb/ringcast_$(DEB_VERSION)_$(DEB_ARCH).deb

deb:
ifeq ($(TARGET),)
	$(CARGO) build --locked --release
else
	$(MAKE) --no-print-directory build TARGET=$(TARGET)
endif
	cross/deb $(DEB_BIN) $(TARGET)

deb-check: deb
	cross/deb-check $(DEB_FILE)

# Stripped release binary size per target (the release profile strips).
size:
	@for t in $(ARM_TARGETS) $(ARMV6); do $(MAKE) --no-print-directory build TARGET=$$t >/dev/null || exit 1; done
	@$(CARGO) build --locked --release -q
	@printf '%-34s %10s\n' target bytes
	@for t in $(ARM_TARGETS) $(ARMV6); do printf '%-34s %10s\n' $$t $$(stat -c %s target/$$t/release/ringcast); done
	@printf '%-34s %10s\n' "host (`uname -m`)" $$(stat -c %s target/release/ringcast)

# The package, installed over ssh by cross/deploy-remote (which runs on the Pi). SSH and SCP
# may carry options (a port, a key: cross/deploy-check sets them).
SSH ?= ssh
SCP ?= scp
deploy:
	$(if $(PI),,$(error PI is not set: make deploy PI=user@host TARGET=… [STREAM=name] [CONF=file] (no TARGET: the host's package)))
	@echo "deploy: make the $(DEB_ARCH) package, copy it$(if $(CONF), and $(CONF),) to $(PI), install it there with apt"
	@echo "        (the service restarts; /etc/ringcast/$(STREAM).conf $(if $(CONF),from $(CONF),is kept)), enable $(UNIT)"
	$(MAKE) --no-print-directory deb TARGET=$(TARGET)
	dir=$$($(SSH) $(PI) 'mktemp -d /tmp/ringcast-deploy.XXXXXX') && \
	$(SCP) -q $(DEB_FILE) $(CONF) $(PI):$$dir/ && \
	$(SSH) $(PI) sh -s -- $$dir $(notdir $(DEB_FILE)) $(STREAM) $(notdir $(CONF)) < cross/deploy-remote

deploy-check:
	cross/deploy-check

# Memory per listener of the armv7 (glibc) and ARMv6 (static musl) binaries under qemu-user.
arm-memory:
	$(MAKE) --no-print-directory build TARGET=armv7-unknown-linux-gnueabihf
	$(MAKE) --no-print-directory build TARGET=$(ARMV6)
	cross/arm-memory

# The whole test suite built for aarch64 (the arm64 package's target) and run under
# qemu-user, then for ARMv6 (the armhf package's: test-armv6). test-armv7 runs it for the
# armv7 target, which `make build` still offers but no package holds; CI leaves it out.
test-arm:
	rustup target add aarch64-unknown-linux-gnu
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER='$(linker_aarch64-unknown-linux-gnu)' \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER='$(qemu_aarch64-unknown-linux-gnu)' \
	RINGCAST_TEST_RUNNER='$(qemu_aarch64-unknown-linux-gnu)' \
	  $(CARGO) test --locked --target aarch64-unknown-linux-gnu
	$(MAKE) --no-print-directory test-armv6

test-armv7:
	rustup target add armv7-unknown-linux-gnueabihf
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER='$(linker_armv7-unknown-linux-gnueabihf)' \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER='$(qemu_armv7-unknown-linux-gnueabihf)' \
	RINGCAST_TEST_RUNNER='$(qemu_armv7-unknown-linux-gnueabihf)' \
	  $(CARGO) test --locked --target armv7-unknown-linux-gnueabihf

# ARMv6 on an ARM1176 model (a Pi Zero's CPU): the unit tests, the parsers' property tests
# among them, built for it and run under qemu-arm -cpu arm1176; then the black-box suite, run
# on the host, against the static ARMv6 release binary under the same model.
test-armv6:
	$(MAKE) --no-print-directory build TARGET=$(ARMV6)
	$(ARMV6_ENV) CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUNNER='$(ARMV6_QEMU)' \
	  cargo-zigbuild test --locked --bins $(ARMV6_STD) --target $(ARMV6) -- --skip $(ARMV6_SKIP)
	RINGCAST_TEST_BIN='$(CURDIR)/target/$(ARMV6)/release/ringcast' RINGCAST_TEST_RUNNER='$(ARMV6_QEMU)' \
	  $(CARGO) test --locked --test blackbox

# systemd-analyze verify on the units (part of make test). Cargo says where it put the
# binary, so CARGO_TARGET_DIR works.
verify-units:
	systemd/verify "$$($(CARGO) build --locked -q --message-format=json \
	  | sed -n 's/.*"executable":"\([^"]*ringcast\)".*/\1/p' | tail -n 1)"
