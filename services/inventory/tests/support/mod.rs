//! What the gRPC and relay tests share: an inventory on a fresh SQLite file
//! served on loopback, a test PKI, and assertions on canonical errors.

// Each test crate uses a different subset.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use certctl_common::db::{Database, DatabaseConfig};
use certctl_inventory::Inventory;
use certctl_inventory::grpc::InventoryGrpc;
use certctl_inventory::store::{Outbox, SqliteStore};
use certctl_pki::KeyType;
use certctl_pki::generate::{CertificateAuthority, IssuedLeaf};
use certctl_proto::inventory::{self as pb, inventory_service_client::InventoryServiceClient};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The inventory's "now" when a test starts.
pub const T0: i64 = 1_750_000_000;
pub const DAY: i64 = 86_400;

pub async fn sqlite_store() -> (TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() };
    let db = Database::connect(&config, certctl_inventory::SERVICE).await.expect("SQLite opens");
    certctl_inventory::migrate(&db).await.expect("SQLite migrates");
    let Database::Sqlite(pool) = db else { unreachable!("a SQLite config opens SQLite") };
    (dir, Arc::new(SqliteStore::new(pool)))
}

/// An inventory served over gRPC on 127.0.0.1, with a clock the test moves.
pub struct Served {
    pub client: InventoryServiceClient<Channel>,
    pub store: Arc<SqliteStore>,
    clock: Arc<AtomicI64>,
    _dir: TempDir,
}

impl Served {
    pub async fn start() -> Self {
        let (dir, store) = sqlite_store().await;
        let clock = Arc::new(AtomicI64::new(T0));
        let now = clock.clone();
        let inventory = Inventory::new(store.clone()).with_clock(move || now.load(Ordering::SeqCst));
        let service = InventoryGrpc::new(inventory).into_server();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("a URL")
            .connect()
            .await
            .expect("the server answers");
        let client = InventoryServiceClient::new(channel);
        Self { client, store, clock, _dir: dir }
    }

    pub fn set_now(&self, now: i64) {
        self.clock.store(now, Ordering::SeqCst);
    }

    /// How many audit events wait in the outbox.
    pub async fn outbox_len(&self) -> usize {
        self.store.outbox_batch(100_000).await.expect("outbox_batch").len()
    }

    pub async fn create_certificate(&self, id: &str, common_name: &str) -> pb::Certificate {
        let certificate = pb::Certificate {
            common_name: common_name.into(),
            subject_alt_names: vec![common_name.into()],
            ..Default::default()
        };
        self.create(id, certificate).await
    }

    pub async fn create(&self, id: &str, certificate: pb::Certificate) -> pb::Certificate {
        let request = pb::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: id.into(),
            ..Default::default()
        };
        let response = self.client.clone().create_certificate(request).await.expect("CreateCertificate");
        response.into_inner().certificate.expect("a certificate")
    }

    pub async fn get(&self, name: &str) -> Result<pb::Certificate, Status> {
        let request = pb::GetCertificateRequest { name: name.into() };
        Ok(self.client.clone().get_certificate(request).await?.into_inner().certificate.expect("a certificate"))
    }

    pub async fn add_version(&self, parent: &str, pem_chain: &str) -> Result<pb::CertificateVersion, Status> {
        let request = pb::CreateCertificateVersionRequest { parent: parent.into(), pem_chain: pem_chain.into() };
        let response = self.client.clone().create_certificate_version(request).await?;
        Ok(response.into_inner().certificate_version.expect("a version"))
    }

    pub async fn list(&self, request: pb::ListCertificatesRequest) -> Result<pb::ListCertificatesResponse, Status> {
        Ok(self.client.clone().list_certificates(request).await?.into_inner())
    }

    pub async fn create_owner(&self, id: &str) {
        let owner = pb::Owner { display_name: id.into(), ..Default::default() };
        let request = pb::CreateOwnerRequest { owner: Some(owner), owner_id: id.into() };
        self.client.clone().create_owner(request).await.expect("CreateOwner");
    }
}

/// A test CA and the leaves it issues.
pub struct Pki {
    pub ca: CertificateAuthority,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        Self { ca: CertificateAuthority::new(name, KeyType::EcdsaP256).expect("a CA") }
    }

    /// A leaf for `common_name` (also its only SAN) valid over [not_before, not_before + lifetime].
    pub fn leaf(&self, common_name: &str, not_before: i64, lifetime: i64) -> IssuedLeaf {
        self.ca
            .issue_leaf(common_name, &[common_name.to_owned()], KeyType::EcdsaP256, not_before, lifetime)
            .expect("a leaf")
    }

    /// The leaf followed by this CA: a chain in the right order.
    pub fn chain(&self, leaf: &IssuedLeaf) -> String {
        format!("{}{}", leaf.certificate_pem, self.ca.certificate_pem)
    }
}

/// Asserts INVALID_ARGUMENT whose BadRequest details name `field`.
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let fields: Vec<String> =
        details.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default();
    assert!(fields.iter().any(|f| f == field), "expected a violation of `{field}`, got {fields:?}: {status:?}");
}

pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) {
    match result {
        Err(status) => assert_eq!(status.code(), code, "{status:?}"),
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
    }
}

pub fn expect_invalid<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, field: &str) {
    match result {
        Err(status) => assert_invalid(&status, field),
        Ok(response) => panic!("expected INVALID_ARGUMENT on `{field}`, got {:?}", response.into_inner()),
    }
}

pub fn ts(seconds: i64) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds, nanos: 0 })
}

pub fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}
