//! Who is calling: the identity the gateway stamped on a request.

/// Metadata keys the gateway sets on every call it forwards.
pub const ACTOR_HEADER: &str = "x-certctl-actor";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The caller of an RPC, as audit events record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub actor: String,
    pub request_id: String,
}

impl Caller {
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Self {
        let get = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Self { actor: get(ACTOR_HEADER), request_id: get(REQUEST_ID_HEADER) }
    }

    /// Puts this caller on an outgoing request, so the next service audits
    /// the same person.
    pub fn stamp<T>(&self, request: &mut tonic::Request<T>) {
        for (key, value) in [(ACTOR_HEADER, &self.actor), (REQUEST_ID_HEADER, &self.request_id)] {
            if let Ok(value) = value.parse() {
                request.metadata_mut().insert(key, value);
            }
        }
    }
}
