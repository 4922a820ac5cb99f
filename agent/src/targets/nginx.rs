//! `nginx`: the full chain at `certificate_path` (`ssl_certificate`), the key
//! at `key_path` (`ssl_certificate_key`); checked with `nginx -t`, loaded
//! with `nginx -s reload`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, CERT_MODE, DefaultCommand, KEY_MODE, Kind, Paths, spec};
use super::{Bundle, Target, TargetError};
use crate::targets::files::FileSpec;

const NGINX: Kind = Kind {
    name: "nginx",
    default_validate: DefaultCommand { command: "nginx -t", package: "nginx" },
    default_reload: DefaultCommand { command: "nginx -s reload", package: "nginx" },
    key_optional: false,
    layout,
};

fn layout(paths: &Paths, bundle: &Bundle) -> Vec<FileSpec> {
    let key = paths.key.as_deref().expect("nginx requires key_path");
    vec![spec(&paths.certificate, bundle.fullchain(), CERT_MODE), spec(key, bundle.key(), KEY_MODE)]
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&NGINX, config)
}
