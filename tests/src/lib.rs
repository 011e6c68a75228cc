//! End-to-end tests that cross crate boundaries: a real server, real extracts and the `agnes`
//! command together. The tests live under `tests/`; this library holds helpers they share.
