# ringcast — the commands a user and CI need. `make help` lists them.

CARGO  ?= cargo
PORT   ?= 8000

.PHONY: help run test lint fmt bench release

help:
	@echo "make run     build and serve the built-in test tone on port $(PORT)"
	@echo "make test    every test (unit + black-box over loopback)"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make bench   fan-out figures at 1/100/1000 listeners (and icecast2 beside them if installed)"
	@echo "make release optimised binary in target/release/ringcast"

run:
	$(CARGO) run --release -- -tone -address :$(PORT)

test:
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

release:
	$(CARGO) build --locked --release

bench:
	$(CARGO) bench --locked --bench fanout
