.PHONY: test build bench
test:
	./scripts/test.sh
build:
	go build -o bin/berth ./cmd/berth
bench:
	go run ./bench/api
