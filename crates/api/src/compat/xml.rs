//! osTicket's XML create body.

use super::dataurl;
use super::payload::{RawAttachment, RawMessage, RawTicket, loose_bool};
use helpline_core::FieldError;
use helpline_core::body::BodyFormat;

/// Reads an XML body. `Err` holds the text of a 400 answer (the body is not well-formed XML).
///
/// The root element's attributes (`alert`, `autorespond`, `source`, …) and its child elements
/// are fields. DTDs are refused by the parser, so entity-expansion attacks cannot start.
pub fn parse(body: &[u8]) -> Result<RawTicket, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("XML error: not UTF-8 ({e})"))?;
    let document = roxmltree::Document::parse(text).map_err(|e| format!("XML error: {e}"))?;
    let root = document.root_element();
    let mut ticket = RawTicket::default();
    for attribute in root.attributes() {
        set_scalar(&mut ticket, attribute.name(), attribute.value().to_owned());
    }
    for child in root.children().filter(roxmltree::Node::is_element) {
        let name = child.tag_name().name();
        match name {
            "message" => {
                let format = if child
                    .attribute("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("text/html"))
                {
                    BodyFormat::Html
                } else {
                    BodyFormat::Text
                };
                ticket.message = Some(RawMessage {
                    text: Ok(element_text(child).trim().to_owned()),
                    format,
                });
            }
            "attachments" => {
                let files = child.children().filter(roxmltree::Node::is_element);
                for (index, file) in files.enumerate() {
                    if file.tag_name().name() == "file" {
                        ticket.attachments.push(attachment(file));
                    } else {
                        ticket.structure_errors.push(FieldError::new(
                            format!("attachments[{index}]"),
                            "must be a <file> element",
                        ));
                    }
                }
            }
            "phone" => {
                let number = element_text(child).trim().to_owned();
                // osTicket drops the `ext` attribute; keep it the way its JSON form writes one.
                ticket.phone = Some(match child.attribute("ext").map(str::trim) {
                    Some(ext) if !ext.is_empty() => format!("{number}X{ext}"),
                    _ => number,
                });
            }
            _ => set_scalar(&mut ticket, name, element_text(child).trim().to_owned()),
        }
    }
    Ok(ticket)
}

fn set_scalar(ticket: &mut RawTicket, name: &str, value: String) {
    match name {
        "name" => ticket.name = Some(value),
        "email" => ticket.email = Some(value),
        "subject" => ticket.subject = Some(value),
        "phone" => ticket.phone = Some(value),
        "notes" => ticket.notes = Some(value),
        "topicId" => ticket.topic_id = Some(value),
        "priority" | "priorityId" => ticket.priority = Some(value),
        "source" => ticket.source = Some(value),
        "ip" => ticket.ip = Some(value),
        "alert" => ticket.alert = Some(loose_bool(&value)),
        "autorespond" => ticket.autorespond = Some(loose_bool(&value)),
        _ => {
            if name != "ticket" {
                tracing::warn!(field = %name, "unexpected data in API request, ignored");
            }
        }
    }
}

/// All text inside an element, CDATA included.
fn element_text(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

/// `<file name=".." type=".." encoding="base64">…</file>`.
fn attachment(file: roxmltree::Node<'_, '_>) -> RawAttachment {
    let name = file.attribute("name").unwrap_or_default().to_owned();
    let content_type = file
        .attribute("type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    let text = element_text(file);
    let data = if file
        .attribute("encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("base64"))
    {
        dataurl::decode_base64(&text)
    } else {
        Ok(text.trim().as_bytes().to_vec())
    };
    RawAttachment {
        name,
        content_type,
        data,
    }
}
