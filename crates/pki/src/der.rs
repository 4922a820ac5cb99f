//! A small strict DER reader over asn1-rs, for the structures x509-parser does
//! not model (the PKCS#8 header, OCSP requests). It hands out each element's
//! complete encoding too, so a caller can echo a structure byte for byte.

use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};

/// What was wrong, phrased for an error message ("<what>: <why>").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(pub String);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Reads a whole input that must be exactly one SEQUENCE.
    pub fn top_sequence(data: &'a [u8], what: &str) -> Result<Reader<'a>, DerError> {
        let mut outer = Reader::new(data);
        let inner = outer.sequence(what)?;
        outer.end(&format!("after {what}"))?;
        Ok(inner)
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag, and its complete encoding.
    pub fn any(&mut self, what: &str) -> Result<(Any<'a>, &'a [u8]), DerError> {
        if self.rest.is_empty() {
            return Err(DerError(format!("{what}: missing (the structure ends early)")));
        }
        let before = self.rest;
        let (rest, any) = Any::from_der(before).map_err(|e| DerError(format!("{what}: not valid DER ({e})")))?;
        self.rest = rest;
        Ok((any, &before[..before.len() - rest.len()]))
    }

    /// The next element, which must carry this universal tag.
    pub fn expect(&mut self, tag: Tag, what: &str) -> Result<Any<'a>, DerError> {
        let (any, _) = self.any(what)?;
        if any.header.class() != Class::Universal || any.header.tag() != tag {
            return Err(DerError(format!("{what}: expected {}, found {}", tag_name(tag), describe(&any))));
        }
        Ok(any)
    }

    pub fn sequence(&mut self, what: &str) -> Result<Reader<'a>, DerError> {
        Ok(self.sequence_raw(what)?.0)
    }

    /// A SEQUENCE, and its complete encoding.
    pub fn sequence_raw(&mut self, what: &str) -> Result<(Reader<'a>, &'a [u8]), DerError> {
        let (any, raw) = self.any(what)?;
        if any.header.class() != Class::Universal || any.header.tag() != Tag::Sequence {
            return Err(DerError(format!("{what}: expected a SEQUENCE, found {}", describe(&any))));
        }
        Ok((Reader::new(any.data), raw))
    }

    pub fn octet_string(&mut self, what: &str) -> Result<&'a [u8], DerError> {
        Ok(self.expect(Tag::OctetString, what)?.data)
    }

    /// An OBJECT IDENTIFIER in dotted form.
    pub fn oid(&mut self, what: &str) -> Result<String, DerError> {
        let any = self.expect(Tag::Oid, what)?;
        let oid = any.as_oid().map_err(|e| DerError(format!("{what}: bad object identifier ({e})")))?;
        Ok(oid.to_id_string())
    }

    /// A non-negative INTEGER as its big-endian magnitude without leading zeros.
    pub fn unsigned_integer(&mut self, what: &str) -> Result<Vec<u8>, DerError> {
        let data = self.expect(Tag::Integer, what)?.data;
        match data {
            [] => Err(DerError(format!("{what}: empty INTEGER"))),
            [first, ..] if first & 0x80 != 0 => Err(DerError(format!("{what}: negative INTEGER"))),
            _ => {
                let start = data.iter().position(|b| *b != 0).unwrap_or(data.len() - 1);
                Ok(data[start..].to_vec())
            }
        }
    }

    /// Consumes the next element if it is context-specific `[tag]`, with its
    /// complete encoding. Implicitly tagged primitives are fine here.
    pub fn tagged(&mut self, tag: u32) -> Result<Option<(Any<'a>, &'a [u8])>, DerError> {
        let Ok((_, any)) = Any::from_der(self.rest) else {
            return Ok(None);
        };
        if any.header.class() == Class::ContextSpecific && any.header.tag() == Tag(tag) {
            return self.any("tagged field").map(Some);
        }
        Ok(None)
    }

    /// Consumes the next element if it is an EXPLICIT context-specific `[tag]`.
    pub fn context(&mut self, tag: u32) -> Result<Option<Any<'a>>, DerError> {
        match self.tagged(tag)? {
            Some((any, _)) if !any.header.is_constructed() => {
                Err(DerError(format!("[{tag}]: an EXPLICIT tag must be constructed")))
            }
            other => Ok(other.map(|(any, _)| any)),
        }
    }

    /// Fails if anything is left.
    pub fn end(&self, what: &str) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError(format!("{what}: {} unexpected trailing bytes", self.rest.len())))
        }
    }
}

fn tag_name(tag: Tag) -> String {
    match tag {
        Tag::Boolean => "a BOOLEAN".into(),
        Tag::Integer => "an INTEGER".into(),
        Tag::BitString => "a BIT STRING".into(),
        Tag::OctetString => "an OCTET STRING".into(),
        Tag::Null => "NULL".into(),
        Tag::Oid => "an OBJECT IDENTIFIER".into(),
        Tag::Enumerated => "an ENUMERATED".into(),
        Tag::Sequence => "a SEQUENCE".into(),
        Tag::Set => "a SET".into(),
        Tag::GeneralizedTime => "a GeneralizedTime".into(),
        Tag(n) => format!("universal tag {n}"),
    }
}

fn describe(any: &Any<'_>) -> String {
    match any.header.class() {
        Class::Universal => tag_name(any.header.tag()),
        Class::ContextSpecific => format!("[{}]", any.header.tag().0),
        other => format!("{other:?} tag {}", any.header.tag().0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_lose_their_sign_byte_and_refuse_negatives() {
        // INTEGER 0x00 0x80 0x01 (positive, needs the sign byte).
        let mut r = Reader::new(&[0x02, 0x03, 0x00, 0x80, 0x01]);
        assert_eq!(r.unsigned_integer("serial").unwrap(), vec![0x80, 0x01]);
        assert!(r.is_empty());
        let mut r = Reader::new(&[0x02, 0x01, 0x00]);
        assert_eq!(r.unsigned_integer("serial").unwrap(), vec![0x00]);
        let mut r = Reader::new(&[0x02, 0x01, 0xff]);
        assert_eq!(r.unsigned_integer("serial").unwrap_err().0, "serial: negative INTEGER");
    }

    #[test]
    fn errors_say_what_and_where() {
        let mut r = Reader::new(&[0x04, 0x01, 0xaa]);
        assert_eq!(r.sequence("CertID").err().unwrap().0, "CertID: expected a SEQUENCE, found an OCTET STRING");
        assert!(Reader::new(&[]).any("request").unwrap_err().0.contains("missing"));
        assert!(Reader::top_sequence(&[0x30, 0x00, 0x00], "request").err().unwrap().0.contains("trailing"));
        assert!(Reader::top_sequence(&[0x30, 0x05, 0x00], "request").err().unwrap().0.contains("not valid DER"));
    }
}
