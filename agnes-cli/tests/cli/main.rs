//! Tests of the `agnes` binary, run as a separate process the way users run it.

mod commands;
mod contract;
mod demo;
mod login;
mod smoke;
mod support;
