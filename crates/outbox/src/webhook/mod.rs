//! Webhook signing and delivery, following Standard Webhooks (<https://www.standardwebhooks.com>).
//!
//! Every delivery is a `POST` of a JSON body with three headers: `webhook-id` (the message's ID,
//! the same on every retry, so receivers can drop duplicates), `webhook-timestamp` (Unix seconds
//! of this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
//! `"{id}.{timestamp}.{body}"` under the endpoint's secret). [`sign`] and [`verify`] implement the
//! scheme; [`WebhookClient`] makes the HTTP request.

mod http;
mod sign;

pub use self::http::{DeliveryError, DeliveryResponse, WebhookClient, WebhookRequest, is_success};
pub use self::sign::{SecretError, VerifyError, WebhookSecret, sign, verify};
