//! Multi-service scenarios live in `tests/`; this library is empty on purpose. `src/bin`
//! holds the helper processes scenarios start, e.g. a consumer-group member to kill or pause.
//!
//! The scenarios start a real etcd, controllers in the test process and brokers as processes of
//! the `strom-broker` binary (built by `make test` before the tests run), so a test can kill -9
//! a broker and restart it on the same data directory.
