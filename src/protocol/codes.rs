//! The error codes of a refused request (`{"error": {"code": …}}`, docs/protocol.md), one enum
//! for the server that sends them and the client that reads them. A code this build does not
//! know (a newer server) still parses, as [`ErrorCode::Other`].
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know.
            Other(String),
        }

        impl ErrorCode {
            /// Every known code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it travels.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other(s) => s,
                }
            }

            /// The code for `text`; an unknown one is kept as [`ErrorCode::Other`].
            pub fn parse(text: &str) -> ErrorCode {
                match text {
                    $($text => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other.to_string()),
                }
            }
        }
    };
}

codes! {
    /// The body is not the JSON the endpoint takes.
    BadJson = "bad_json",
    /// A request the server cannot take (a missing header, a bad query).
    BadRequest = "bad_request",
    /// The gzip body does not unpack.
    BadGzip = "bad_gzip",
    /// The device's signature does not verify.
    BadSignature = "bad_signature",
    /// The batch's id or device in the body differs from its headers.
    BatchMismatch = "batch_mismatch",
    /// A batch id already stored with another body.
    BatchReused = "batch_reused",
    /// The compressed body is over `max_body_bytes`.
    BodyTooLarge = "body_too_large",
    /// The body unpacks past `max_decompressed_bytes`.
    DecompressedTooLarge = "decompressed_too_large",
    /// More records than `max_batch_records`.
    TooManyRecords = "too_many_records",
    /// The body ended or stalled before its `Content-Length` (a network problem: retry).
    IncompleteBody = "incomplete_body",
    /// A body without `Content-Length`.
    LengthRequired = "length_required",
    /// The device is not enrolled here.
    DeviceUnknown = "device_unknown",
    /// The device was revoked by the admin.
    DeviceRevoked = "device_revoked",
    /// A device a relay brought; it cannot send itself.
    DeviceRelayed = "device_relayed",
    /// The enrolment token is not known.
    TokenUnknown = "token_unknown",
    /// The enrolment token was used already.
    TokenUsed = "token_used",
    /// The enrolment token has expired.
    TokenExpired = "token_expired",
    /// A wrong or missing admin token.
    AdminUnauthorized = "admin_unauthorized",
    /// Too many requests: wait `Retry-After`.
    RateLimited = "rate_limited",
    /// No such path.
    NotFound = "not_found",
    /// `GET /v1/batches/{id}`: no answer journalled for this device's batch of that id (and
    /// body): send the batch itself.
    BatchUnknown = "batch_unknown",
    /// The path does not take that method.
    MethodNotAllowed = "method_not_allowed",
    /// The server failed; nothing was committed.
    Internal = "internal",
}

impl ErrorCode {
    /// A network problem or a busy moment in the server's own words: worth retrying the same
    /// bytes (other refusals are not).
    pub fn is_transient(&self) -> bool {
        matches!(self, ErrorCode::IncompleteBody | ErrorCode::RateLimited)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ErrorCode::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_unknown_ones_are_kept() {
        for c in ErrorCode::ALL {
            assert_eq!(&ErrorCode::parse(c.as_str()), c);
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *c);
        }
        assert_eq!(ErrorCode::ALL.len(), 23);
        let newer: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(newer, ErrorCode::Other("quota_exceeded".into()));
        assert_eq!(newer.as_str(), "quota_exceeded");
    }
}
