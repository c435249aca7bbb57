//! Helpline's integration tests: real HTTP over loopback, real databases (SQLite files and,
//! when `HELPLINE_TEST_POSTGRES_URL` is set, one fresh PostgreSQL database per test), and the
//! real `helpline` binary for the command line. One test binary keeps linking cheap.

mod cli;
mod compat_auth;
mod compat_create;
mod compat_errors;
mod import_cli;
mod mail_fetch;
mod mail_intake;
mod mail_live;
mod outbound_live;
mod serve;
mod spec;
mod support;
mod v1_access;
mod v1_posting;
mod v1_tickets;
mod v1_webhooks;
