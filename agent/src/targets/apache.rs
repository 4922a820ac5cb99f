//! `apache`: the full chain at `certificate_path` (`SSLCertificateFile`,
//! which takes the chain since Apache 2.4.8), the key at `key_path`
//! (`SSLCertificateKeyFile`); checked with `apachectl configtest`, loaded
//! with `apachectl graceful`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, CERT_MODE, DefaultCommand, KEY_MODE, Kind, Paths, spec};
use super::{Bundle, Target, TargetError};
use crate::targets::files::FileSpec;

const APACHE: Kind = Kind {
    name: "apache",
    default_validate: DefaultCommand { command: "apachectl configtest", package: "apache2" },
    default_reload: DefaultCommand { command: "apachectl graceful", package: "apache2" },
    key_optional: false,
    layout,
};

fn layout(paths: &Paths, bundle: &Bundle) -> Vec<FileSpec> {
    let key = paths.key.as_deref().expect("apache requires key_path");
    vec![spec(&paths.certificate, bundle.fullchain(), CERT_MODE), spec(key, bundle.key(), KEY_MODE)]
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&APACHE, config)
}
