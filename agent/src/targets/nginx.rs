//! `nginx`: the full chain at `certificate_path` (`ssl_certificate`), the key
//! at `key_path` (`ssl_certificate_key`); checked with `nginx -t`, loaded
//! with `nginx -s reload`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Target, TargetError};

const NGINX: Kind = Kind {
    name: "nginx",
    default_validate: DefaultCommand { command: "nginx -t", package: "nginx" },
    default_reload: DefaultCommand { command: "nginx -s reload", package: "nginx" },
    key_optional: false,
    layout: web::fullchain_then_key,
    protocol: web::tls_only,
};

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&NGINX, config)
}
