//! End-to-end tests that cross crate boundaries: a real server, real extracts and the `agnes`
//! command together. The tests live under `tests/`; this library holds helpers they share.

use std::path::PathBuf;

/// Whether tests that need an outside component (a data folder, PostgreSQL, a browser) must fail
/// instead of skipping: `CI` is `true` or `1`.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds the nycflights13 CSV folder: `AGNES_NYCFLIGHTS_DIR`, else the project's shared data
/// folder beside the checkout. Returns `None` with a note on stderr when it is missing, so the caller
/// skips; under `CI=true` a missing folder fails the test instead.
pub fn nycflights_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AGNES_NYCFLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nycflights13")
        });
    if dir.join("flights.csv").is_file() {
        return Some(dir);
    }
    assert!(
        !required(),
        "nycflights13 data not found at {}; set AGNES_NYCFLIGHTS_DIR",
        dir.display()
    );
    eprintln!("skipped: nycflights13 data not found at {}", dir.display());
    None
}
