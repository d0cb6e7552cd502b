# veer — see README.md. `make demo` and `make test` are the two commands a newcomer needs.
CARGO ?= cargo
VEER  := target/debug/veer

.PHONY: demo test bench lint fmt build deps deps-demo deps-test clean real-apiserver

## demo: install what the demo needs (deps-demo), build veer and play its story on this
## machine (no cluster): `veer demo`
demo: deps-demo build
	$(VEER) demo

## test: install what tests need (deps-test), then formatting, clippy and every test; the conformance and
## RBAC tests also run against a real kube-apiserver (v1.20, built once per machine from
## Debian's source package and cached in ~/.cache/veer), started for the run and stopped after.
## Set VEER_TEST_KUBECONFIG to use another real server instead.
test: deps-test lint
	scripts/real-apiserver.sh run $(CARGO) test --workspace

## real-apiserver: build (or reuse) the real kube-apiserver and etcd the tests use, and start
## them on loopback (kubeconfig in target/real-apiserver/; `scripts/real-apiserver.sh stop`)
real-apiserver:
	scripts/real-apiserver.sh start

## bench: print performance figures (no pass/fail) from every bench in benches/, then how
## many validation checks exist per kind and per istioctl analyze code
BENCHES := $(basename $(notdir $(wildcard benches/*.rs)))
bench: deps-test
	$(CARGO) bench $(addprefix --bench ,$(BENCHES))
	$(CARGO) test --test validate_corpus check_counts -- --nocapture --quiet

## lint: formatting and clippy (warnings are errors; every crate denies unwrap/expect outside
## tests), then the architecture rules: no module cycle, no I/O crate under the pure crates,
## the product library apart from the dev tooling, no Result<_, String> in a signature, no
## source, test or bench file past 600 lines (tests/architecture.rs)
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --test architecture

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build

## deps-demo: install what the build and the demo need from Debian's packages (pkg-config,
## OpenSSL headers, git, Prometheus)
deps-demo:
	@scripts/install-deps.sh demo

## deps-test (or deps): deps-demo's, plus what only tests use (git daemon, sshd, Chromium),
## and Debian's kubectl and helm into target/tools
deps-test:
	@scripts/install-deps.sh test

deps: deps-test

clean:
	$(CARGO) clean
