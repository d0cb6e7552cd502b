# veer — see README.md. `make demo` and `make test` are the two commands a newcomer needs.
CARGO ?= cargo
VEER  := target/debug/veer

.PHONY: demo test bench lint fmt build deps clean real-apiserver

## demo: build veer and play its story on this machine (no cluster): `veer demo`
demo: deps build
	$(VEER) demo

## test: install what tests need, then formatting, clippy and every test; the conformance and
## RBAC tests also run against a real kube-apiserver (v1.20, built once per machine from
## Debian's source package and cached in ~/.cache/veer), started for the run and stopped after.
## Set VEER_TEST_KUBECONFIG to use another real server instead.
test: deps lint
	scripts/real-apiserver.sh run $(CARGO) test --workspace

## real-apiserver: build (or reuse) the real kube-apiserver and etcd the tests use, and start
## them on loopback (kubeconfig in target/real-apiserver/; `scripts/real-apiserver.sh stop`)
real-apiserver:
	scripts/real-apiserver.sh start

## bench: print performance figures (no pass/fail) from every bench in benches/
BENCHES := $(basename $(notdir $(wildcard benches/*.rs)))
bench: deps
	$(CARGO) bench $(addprefix --bench ,$(BENCHES))

## lint: formatting and clippy (warnings are errors; the pure crates deny unwrap/expect outside
## tests), then the architecture rules: no module cycle, no I/O crate under veer-core, no
## source file past 600 lines (tests/architecture.rs)
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --test architecture

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build

## deps: install system tools (git, git daemon, sshd, OpenSSL headers, Prometheus, Chromium) from Debian's packages; kubectl and helm into target/tools
deps:
	@scripts/install-deps.sh

clean:
	$(CARGO) clean
