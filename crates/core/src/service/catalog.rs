//! Adding departments, help topics and staff.

use super::{conflict_on_constraint, event_data};
use crate::Error;
use crate::catalog::{Department, HelpTopic, NewDepartment, NewStaff, NewTopic, Staff};
use crate::event::{Actor, EventKind, NewEvent};
use crate::store::Store;
use serde_json::json;

/// The longest catalogue name accepted.
const MAX_NAME_LEN: usize = 128;

fn checked_name(field: &str, raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be one line of at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

fn catalog_event(what: &str, id: i64, actor: Actor) -> NewEvent {
    NewEvent {
        ticket_id: None,
        kind: EventKind::CatalogChanged,
        actor,
        data: event_data(json!({"added": what, "id": id})),
    }
}

/// Adds a department with a unique name.
pub async fn add_department(
    store: &dyn Store,
    name: &str,
    actor: Actor,
) -> Result<Department, Error> {
    let new = NewDepartment {
        name: checked_name("name", name)?,
    };
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                let department = tx.insert_department(&new, now).await.map_err(|e| {
                    conflict_on_constraint(e, || {
                        format!("a department named '{}' already exists", new.name)
                    })
                })?;
                tx.insert_event(&catalog_event("department", department.id.0, actor), now)
                    .await?;
                Ok(department)
            })
        })
        .await
}

/// Adds a help topic routed to an existing department.
pub async fn add_topic(
    store: &dyn Store,
    topic: NewTopic,
    actor: Actor,
) -> Result<HelpTopic, Error> {
    let topic = NewTopic {
        name: checked_name("name", &topic.name)?,
        ..topic
    };
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                if tx.department(topic.department_id).await?.is_none() {
                    return Err(Error::invalid(
                        "department",
                        format!("no department has id {}", topic.department_id),
                    ));
                }
                if let Some(priority) = topic.priority_id
                    && tx.priority(priority).await?.is_none()
                {
                    return Err(Error::invalid(
                        "priority",
                        format!("no priority has id {priority}"),
                    ));
                }
                let stored = tx.insert_topic(&topic, now).await.map_err(|e| {
                    conflict_on_constraint(e, || {
                        format!("a help topic named '{}' already exists", topic.name)
                    })
                })?;
                tx.insert_event(&catalog_event("topic", stored.id.0, actor), now)
                    .await?;
                Ok(stored)
            })
        })
        .await
}

/// Adds a staff member with a unique username and address.
pub async fn add_staff(store: &dyn Store, staff: NewStaff, actor: Actor) -> Result<Staff, Error> {
    let username = staff.username.trim();
    let username_ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if !username_ok {
        return Err(Error::invalid(
            "username",
            "must be 1-64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let staff = NewStaff {
        username: username.to_owned(),
        name: checked_name("name", &staff.name)?,
        ..staff
    };
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                if tx.department(staff.department_id).await?.is_none() {
                    return Err(Error::invalid(
                        "department",
                        format!("no department has id {}", staff.department_id),
                    ));
                }
                let stored = tx.insert_staff(&staff, now).await.map_err(|e| {
                    conflict_on_constraint(e, || {
                        format!(
                            "a staff member with username '{}' or email '{}' already exists",
                            staff.username, staff.email
                        )
                    })
                })?;
                tx.insert_event(&catalog_event("staff", stored.id.0, actor), now)
                    .await?;
                Ok(stored)
            })
        })
        .await
}
