//! Tests of the `agnes` binary, run as a separate process the way users run it.

mod contract;
