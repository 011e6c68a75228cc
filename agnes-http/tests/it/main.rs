//! Integration tests: a real server on a loopback port with a temporary data directory.

mod auth;
mod data;
mod fixture;
mod grants;
mod health;
mod query;
mod restart;
mod routes;
mod setup;
mod tokens;
mod users;
mod wizard;
