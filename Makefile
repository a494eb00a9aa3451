# The two commands of the README's quick start: `make run` and `make test`.
.PHONY: run stop fleet test lint format deps broker broker-stop s3 s3-stop cluster cluster-stop build bench chaos clean

run: deps broker build
	scripts/demo.sh

stop:
	scripts/demo.sh stop

fleet:
	scripts/fleet-demo.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

format:
	swift format format --in-place --parallel --recursive Package.swift Sources Tests

deps:
	scripts/install-deps.sh

broker:
	scripts/broker.sh start

broker-stop:
	scripts/broker.sh stop

s3:
	scripts/s3.sh start

s3-stop:
	scripts/s3.sh stop

cluster:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

build:
	scripts/build-release.sh

bench: deps broker
	scripts/bench-amqp.sh

chaos:
	scripts/chaos.sh $(or $(CHAOS),long)

clean:
	scripts/broker.sh stop || true
	scripts/cluster.sh stop || true
	scripts/s3.sh stop || true
	rm -rf .build .run
