//! `caddy`: the full chain at `certificate_path` and the key at `key_path`,
//! the two files of a site's `tls <cert_file> <key_file>`; checked with
//! `caddy validate`, which loads both, and loaded with `caddy reload --force`
//! (without `--force` Caddy ignores a configuration that has not changed,
//! and keeps serving the previous certificate). Both commands reach a
//! running Caddy through its admin endpoint as the configuration names it.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Target, TargetError};

const CADDY: Kind = Kind {
    name: "caddy",
    default_validate: DefaultCommand { command: "caddy validate --config /etc/caddy/Caddyfile", package: "caddy" },
    default_reload: DefaultCommand { command: "caddy reload --config /etc/caddy/Caddyfile --force", package: "caddy" },
    key_optional: false,
    layout: web::fullchain_then_key,
    protocol: web::tls_only,
};

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&CADDY, config)
}
