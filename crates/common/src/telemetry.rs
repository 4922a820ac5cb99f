//! Logging set-up for the binaries.

use tracing_subscriber::EnvFilter;

/// Text logs for people, JSON logs for collectors. `RUST_LOG` overrides the level.
pub fn init_logging(json: bool, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
