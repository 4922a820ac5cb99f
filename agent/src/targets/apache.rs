//! `apache`: the full chain at `certificate_path` (`SSLCertificateFile`,
//! which takes the chain since Apache 2.4.8), the key at `key_path`
//! (`SSLCertificateKeyFile`); checked with `apachectl configtest`, loaded
//! with `apachectl graceful`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Target, TargetError};

const APACHE: Kind = Kind {
    name: "apache",
    default_validate: DefaultCommand { command: "apachectl configtest", package: "apache2" },
    default_reload: DefaultCommand { command: "apachectl graceful", package: "apache2" },
    key_optional: false,
    layout: web::fullchain_then_key,
    protocol: web::tls_only,
};

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&APACHE, config)
}
