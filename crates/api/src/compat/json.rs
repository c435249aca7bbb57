//! osTicket's JSON create body.

use super::payload::{RawTicket, attachment_from_string, loose_bool, message_from_string};
use crate::compat::dataurl;
use helpline_core::FieldError;
use serde_json::{Map, Value};

/// Reads a JSON body. `Err` holds the text of a 400 answer (the body is not usable JSON).
pub fn parse(body: &[u8]) -> Result<RawTicket, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Syntax error, malformed JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("Syntax error, malformed JSON: the body must be a JSON object".into());
    };
    Ok(from_object(fields))
}

fn from_object(fields: Map<String, Value>) -> RawTicket {
    let mut ticket = RawTicket::default();
    for (key, value) in fields {
        match key.as_str() {
            "name" => ticket.name = scalar(&key, &value, &mut ticket.structure_errors),
            "email" => ticket.email = scalar(&key, &value, &mut ticket.structure_errors),
            "subject" => ticket.subject = scalar(&key, &value, &mut ticket.structure_errors),
            "phone" => ticket.phone = scalar(&key, &value, &mut ticket.structure_errors),
            "notes" => ticket.notes = scalar(&key, &value, &mut ticket.structure_errors),
            "topicId" => ticket.topic_id = scalar(&key, &value, &mut ticket.structure_errors),
            "priority" | "priorityId" => {
                ticket.priority = scalar(&key, &value, &mut ticket.structure_errors);
            }
            "source" => ticket.source = scalar(&key, &value, &mut ticket.structure_errors),
            "ip" => ticket.ip = scalar(&key, &value, &mut ticket.structure_errors),
            "alert" => ticket.alert = Some(truthy(&value)),
            "autorespond" => ticket.autorespond = Some(truthy(&value)),
            "message" => {
                ticket.message = scalar(&key, &value, &mut ticket.structure_errors)
                    .map(|text| message_from_string(&text));
            }
            "attachments" => attachments(value, &mut ticket),
            _ => tracing::warn!(field = %key, "unexpected data in API request, ignored"),
        }
    }
    ticket
}

/// Strings are taken as they are, numbers as their decimal text; `null` is absent.
fn scalar(key: &str, value: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => {
            errors.push(FieldError::new(
                key,
                "must be a string, not a list or object",
            ));
            None
        }
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => loose_bool(s),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `[{"file.ext": "data:…"}, …]`, or the structured form
/// `[{"name": …, "type": …, "data": …, "encoding": "base64"}]` osTicket uses internally.
fn attachments(value: Value, ticket: &mut RawTicket) {
    let Value::Array(items) = value else {
        if !value.is_null() {
            ticket.structure_errors.push(FieldError::new(
                "attachments",
                "must be a list of {\"filename\": \"data:…\"} objects",
            ));
        }
        return;
    };
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            ticket.structure_errors.push(FieldError::new(
                format!("attachments[{index}]"),
                "must be an object {\"filename\": \"data:…\"}",
            ));
            continue;
        };
        if map.contains_key("name") && map.contains_key("data") {
            ticket.attachments.push(structured(&map));
            continue;
        }
        for (name, data) in map {
            match data {
                Value::String(data) => ticket
                    .attachments
                    .push(attachment_from_string(&name, &data)),
                _ => ticket.structure_errors.push(FieldError::new(
                    format!("attachments[{index}]"),
                    format!("{name}: the content must be a data: URL string"),
                )),
            }
        }
    }
}

fn structured(map: &Map<String, Value>) -> super::payload::RawAttachment {
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    let data = text("data");
    if text("encoding").eq_ignore_ascii_case("base64") {
        super::payload::RawAttachment {
            name: name.to_owned(),
            content_type: map
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream")
                .to_owned(),
            data: dataurl::decode_base64(data),
        }
    } else {
        let mut attachment = attachment_from_string(name, data);
        if let Some(kind) = map.get("type").and_then(Value::as_str) {
            attachment.content_type = kind.to_owned();
        }
        attachment
    }
}
