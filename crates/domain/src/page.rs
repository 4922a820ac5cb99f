//! AIP-158 pagination: page sizes and opaque page tokens bound to their query.
//!
//! A token carries the keyset cursor (the sort key and id of the last row
//! returned) and a fingerprint of the query that produced it, so a token
//! replayed against a different filter or order is refused instead of
//! silently returning the wrong rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// 0 means the default; above the maximum is capped; negative is an error.
pub fn page_size(requested: i32) -> Result<i64, DomainError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(DomainError::invalid("page_size", "must not be negative")),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Fingerprint of everything that shapes a listing except the page position.
pub fn query_fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    q: String,
    k: serde_json::Value,
}

/// Encodes a keyset cursor for the query with this fingerprint.
pub fn encode_token(fingerprint: &str, cursor: serde_json::Value) -> String {
    let token = Token { q: fingerprint.to_owned(), k: cursor };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).expect("a token always serialises"))
}

/// Decodes a page token; `None` for the first page.
pub fn decode_token(token: &str, fingerprint: &str) -> Result<Option<serde_json::Value>, DomainError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || DomainError::invalid("page_token", "not a page token issued by this server");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.q != fingerprint {
        return Err(DomainError::invalid(
            "page_token",
            "this page token belongs to a different query: repeat the filters and order_by of the first request, or start without a page token",
        ));
    }
    Ok(Some(token.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(i32::MAX).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn tokens_are_bound_to_their_query() {
        let a = query_fingerprint(&["owner=alice", "order=name"]);
        let b = query_fingerprint(&["owner=bob", "order=name"]);
        assert_ne!(a, b);
        let token = encode_token(&a, serde_json::json!(["x", 3]));
        assert_eq!(decode_token(&token, &a).unwrap(), Some(serde_json::json!(["x", 3])));
        assert!(decode_token(&token, &b).is_err());
        assert!(decode_token("garbage!", &a).is_err());
        assert_eq!(decode_token("", &a).unwrap(), None);
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(query_fingerprint(&["ab", "c"]), query_fingerprint(&["a", "bc"]));
    }
}
