//! The Standard Webhooks symmetric signature scheme (`v1`, HMAC-SHA256).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What every serialized secret starts with, so that a pasted secret is recognisable.
const SECRET_PREFIX: &str = "whsec_";
/// The signature version of HMAC-SHA256 signatures (`v1a` would be ed25519, which we do not use).
const SIGNATURE_VERSION: &str = "v1";
/// The key size of new secrets: the HMAC-SHA256 block's worth of entropy that matters.
const GENERATED_KEY_BYTES: usize = 32;
/// The sizes the specification allows: at least 192 bits, at most 512.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// Standard base64; padding optional when reading, because some providers print secrets
/// without it and the key is the same either way.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An endpoint's signing secret: `"whsec_"` + base64 of 24..=64 random bytes (we make 32).
///
/// The key is the base64-*decoded* part. `Debug` never prints it; [`WebhookSecret::to_text`] is
/// the only way to get it out, for showing it to the endpoint's owner once and storing it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A new random secret of 32 bytes, from the operating system-seeded CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0_u8; GENERATED_KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads a secret in its text form `whsec_<base64>` (surrounding whitespace is ignored, as
    /// it often comes with a pasted secret).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_BASE64
            .decode(encoded)
            .map_err(|error| SecretError::NotBase64 {
                reason: error.to_string(),
            })?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength { bytes: key.len() });
        }
        Ok(Self(key))
    }

    /// The text form, `whsec_<base64>`, as endpoint owners paste it into their receivers.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// A MAC keyed with this secret, fed with the signed content `{msg_id}.{timestamp}.{body}`.
    fn mac_of(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a text is not a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("a webhook secret starts with \"whsec_\"")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("the part of the webhook secret after \"whsec_\" is not base64: {reason}")]
    NotBase64 {
        /// What the decoder said.
        reason: String,
    },
    /// The key is shorter than 24 or longer than 64 bytes.
    #[error("a webhook secret's key has 24 to 64 bytes, this one has {bytes}")]
    BadLength {
        /// The decoded key's length.
        bytes: usize,
    },
}

/// Signs a message: `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`, the value of the
/// `webhook-signature` header.
///
/// `msg_id` must not contain `.`: the receiver cannot tell where it ends otherwise (our IDs are
/// generated, never chosen by users).
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret
        .mac_of(msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
}

/// Verifies a delivery as a receiver would.
///
/// `timestamp` and `signature_header` are the raw `webhook-timestamp` and `webhook-signature`
/// header values. The timestamp must be an integer no more than `tolerance_secs` away from `now`
/// (both Unix seconds) — in either direction, so an old message cannot be replayed and a clock
/// far ahead is noticed. The signature header may hold several space-separated signatures (a
/// sender rotating its secret signs with both keys): the delivery is accepted if any `v1`
/// signature matches, compared in constant time; signatures of other versions are skipped.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp {
            value: timestamp.to_owned(),
        })?;
    // abs_diff: no overflow, whatever a hostile header holds.
    let tolerance = u64::try_from(tolerance_secs).unwrap_or(0);
    if sent_at.abs_diff(now) > tolerance {
        return Err(VerifyError::OutsideTolerance {
            timestamp: sent_at,
            now,
            tolerance_secs,
        });
    }
    let expected = secret.mac_of(msg_id, sent_at, body);
    let mut any_v1 = false;
    for candidate in signature_header.split_whitespace() {
        let Some((version, encoded)) = candidate.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        any_v1 = true;
        let Ok(tag) = LENIENT_BASE64.decode(encoded) else {
            continue;
        };
        // verify_slice compares in constant time (and rejects tags of the wrong length).
        if expected.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    if any_v1 {
        Err(VerifyError::Mismatch)
    } else {
        Err(VerifyError::NoSignature)
    }
}

/// Why a delivery's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp {value:?} is not a Unix timestamp in seconds")]
    BadTimestamp {
        /// The header's value.
        value: String,
    },
    /// `webhook-timestamp` is too far from the receiver's clock: a replay or a wrong clock.
    #[error("webhook-timestamp {timestamp} is more than {tolerance_secs} s away from now ({now})")]
    OutsideTolerance {
        /// The timestamp the message carried.
        timestamp: i64,
        /// The receiver's time.
        now: i64,
        /// How far apart they may be.
        tolerance_secs: i64,
    },
    /// `webhook-signature` holds no `v1,<base64>` signature at all.
    #[error("webhook-signature holds no v1 signature")]
    NoSignature,
    /// No `v1` signature matches: another secret, or the ID, timestamp or body were changed.
    #[error("no webhook-signature matches the message and the secret")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published Standard Webhooks test vector (the reference libraries' tests).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_secret() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_SECRET).expect("the vector's secret")
    }

    fn verify_vector(signature_header: &str, now: i64) -> Result<(), VerifyError> {
        verify(
            &vector_secret(),
            VECTOR_ID,
            &VECTOR_TIMESTAMP.to_string(),
            signature_header,
            VECTOR_BODY,
            now,
            300,
        )
    }

    #[test]
    fn the_published_test_vector_signs_and_verifies() {
        let secret = vector_secret();
        assert_eq!(
            sign(&secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
        assert_eq!(verify_vector(VECTOR_SIGNATURE, VECTOR_TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_matching_v1_signature_among_several_is_enough() {
        let header = format!(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1a,aGVsbG8=  {VECTOR_SIGNATURE} v1,Mm7x"
        );
        assert_eq!(verify_vector(&header, VECTOR_TIMESTAMP + 10), Ok(()));
    }

    #[test]
    fn a_wrong_signature_secret_or_body_is_a_mismatch() {
        let wrong = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            verify_vector(wrong, VECTOR_TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vector("v1,not base64!", VECTOR_TIMESTAMP),
            Err(VerifyError::Mismatch)
        );
        let other_secret = WebhookSecret::generate();
        let timestamp = VECTOR_TIMESTAMP.to_string();
        let result = verify(
            &other_secret,
            VECTOR_ID,
            &timestamp,
            VECTOR_SIGNATURE,
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
            300,
        );
        assert_eq!(result, Err(VerifyError::Mismatch));
        let result = verify(
            &vector_secret(),
            VECTOR_ID,
            &timestamp,
            VECTOR_SIGNATURE,
            br#"{"test": 2432232315}"#,
            VECTOR_TIMESTAMP,
            300,
        );
        assert_eq!(result, Err(VerifyError::Mismatch));
        // The timestamp is signed too: a replay cannot move it.
        let moved = (VECTOR_TIMESTAMP + 1).to_string();
        let result = verify(
            &vector_secret(),
            VECTOR_ID,
            &moved,
            VECTOR_SIGNATURE,
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
            300,
        );
        assert_eq!(result, Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_header_without_v1_signatures_says_so() {
        for header in ["", "   ", "v1a,aGVsbG8=", "g0hM9SsE+OTPJTGt", "v2,abc"] {
            assert_eq!(
                verify_vector(header, VECTOR_TIMESTAMP),
                Err(VerifyError::NoSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        assert_eq!(
            verify_vector(VECTOR_SIGNATURE, VECTOR_TIMESTAMP + 300),
            Ok(())
        );
        assert_eq!(
            verify_vector(VECTOR_SIGNATURE, VECTOR_TIMESTAMP - 300),
            Ok(())
        );
        for now in [
            VECTOR_TIMESTAMP + 301,
            VECTOR_TIMESTAMP - 301,
            i64::MIN,
            i64::MAX,
        ] {
            assert!(
                matches!(
                    verify_vector(VECTOR_SIGNATURE, now),
                    Err(VerifyError::OutsideTolerance { .. })
                ),
                "{now}"
            );
        }
    }

    #[test]
    fn a_timestamp_that_is_not_an_integer_is_refused() {
        for timestamp in ["", "soon", "1614265330.5", "99999999999999999999"] {
            let result = verify(
                &vector_secret(),
                VECTOR_ID,
                timestamp,
                VECTOR_SIGNATURE,
                VECTOR_BODY,
                VECTOR_TIMESTAMP,
                300,
            );
            assert!(
                matches!(result, Err(VerifyError::BadTimestamp { .. })),
                "{timestamp:?}: {result:?}"
            );
        }
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_round_trip() {
        let secret = WebhookSecret::generate();
        assert_eq!(secret.0.len(), 32);
        let text = secret.to_text();
        assert!(text.starts_with("whsec_"), "{text}");
        let parsed = WebhookSecret::parse(&text).expect("own text form");
        assert_eq!(parsed.0, secret.0);
        assert_ne!(WebhookSecret::generate().0, secret.0);
        assert_eq!(vector_secret().to_text(), VECTOR_SECRET);
    }

    #[test]
    fn parsing_decodes_the_base64_part_and_checks_its_length() {
        assert_eq!(vector_secret().0.len(), 24);
        let padded = format!("whsec_{}", STANDARD.encode([7_u8; 32]));
        let unpadded = padded.trim_end_matches('=');
        assert_ne!(padded, unpadded);
        for text in [padded.as_str(), unpadded, &format!("  {padded}\n")] {
            assert_eq!(WebhookSecret::parse(text).expect(text).0, vec![7_u8; 32]);
        }
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").map(|_| ()),
            Err(SecretError::MissingPrefix)
        );
        assert!(matches!(
            WebhookSecret::parse("whsec_not*base64"),
            Err(SecretError::NotBase64 { .. })
        ));
        let short = format!("whsec_{}", STANDARD.encode([1_u8; 23]));
        let long = format!("whsec_{}", STANDARD.encode([1_u8; 65]));
        let longest = format!("whsec_{}", STANDARD.encode([1_u8; 64]));
        assert_eq!(
            WebhookSecret::parse(&short).map(|_| ()),
            Err(SecretError::BadLength { bytes: 23 })
        );
        assert_eq!(
            WebhookSecret::parse(&long).map(|_| ()),
            Err(SecretError::BadLength { bytes: 65 })
        );
        assert!(WebhookSecret::parse(&longest).is_ok());
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let secret = vector_secret();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(
            !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
    }
}
