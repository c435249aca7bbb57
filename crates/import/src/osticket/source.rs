//! The osTicket database: the connection, the checks made before anything is written, and the
//! rows each phase reads. Nothing here writes to the source.
//!
//! Every integer column is read through `cast(… as signed)` (osTicket's ids are `int unsigned`,
//! which the driver will not decode into `i64`), and every `datetime` through
//! `unix_timestamp(…)`: osTicket stores datetimes in the database server's time zone, and the
//! session keeps the server's zone (the driver's `+00:00` default is turned off), so MySQL itself
//! converts them to instants.

use super::ImportError;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

/// osTicket releases by the schema signature they record in `config` (namespace `core`, key
/// `schema_signature`: the last schema patch of `include/upgrader/streams/core`).
const KNOWN_SIGNATURES: [(&str, &str); 7] = [
    ("98ad7d550c26ac44340350912296e673", "1.10"),
    ("00c949a623b82848baaf3480b51307e3", "1.11/1.12"),
    ("4bd47d94b10bd8a6bab35c119dadf41f", "1.14"),
    ("add628927ee030469f5d3272ebda1e16", "1.15"),
    ("c37e165651dc289240fee7d244990ac1", "1.16"),
    ("83a22ba22b1a6a624fcb1da03882ac1b", "1.17"),
    ("5fb92bef17f3b603659e024c01cc7a59", "1.18"),
];

/// Releases whose schema predates what the import reads.
const TOO_OLD: [&str; 2] = ["1.10", "1.11/1.12"];

/// The columns the import reads, by table (without the prefix). 1.14 to 1.18 all have them.
const REQUIRED: &[(&str, &[&str])] = &[
    ("config", &["namespace", "key", "value"]),
    ("department", &["id", "pid", "name", "created"]),
    (
        "help_topic",
        &[
            "topic_id",
            "topic_pid",
            "topic",
            "dept_id",
            "priority_id",
            "flags",
            "created",
        ],
    ),
    ("ticket_status", &["id", "name", "state", "properties"]),
    (
        "ticket_priority",
        &[
            "priority_id",
            "priority",
            "priority_desc",
            "priority_urgency",
        ],
    ),
    ("sla", &["id", "name", "grace_period", "created"]),
    (
        "organization",
        &["id", "name", "domain", "created", "updated"],
    ),
    (
        "staff",
        &[
            "staff_id",
            "dept_id",
            "username",
            "firstname",
            "lastname",
            "passwd",
            "email",
            "isactive",
            "created",
        ],
    ),
    (
        "user",
        &[
            "id",
            "org_id",
            "default_email_id",
            "name",
            "created",
            "updated",
        ],
    ),
    ("user_email", &["id", "user_id", "address"]),
    (
        "ticket",
        &[
            "ticket_id",
            "number",
            "user_id",
            "status_id",
            "dept_id",
            "topic_id",
            "staff_id",
            "ip_address",
            "source",
            "isanswered",
            "duedate",
            "est_duedate",
            "reopened",
            "closed",
            "lastupdate",
            "created",
            "updated",
        ],
    ),
    (
        "thread",
        &[
            "id",
            "object_id",
            "object_type",
            "lastmessage",
            "lastresponse",
        ],
    ),
    (
        "thread_entry",
        &[
            "id",
            "thread_id",
            "staff_id",
            "user_id",
            "type",
            "poster",
            "source",
            "title",
            "body",
            "format",
            "ip_address",
            "created",
            "pid",
            "flags",
        ],
    ),
    (
        "thread_entry_email",
        &["id", "thread_entry_id", "mid", "headers"],
    ),
    (
        "attachment",
        &["id", "object_id", "type", "file_id", "name", "inline"],
    ),
    ("file", &["id", "bk", "type", "size", "key", "name"]),
    ("file_chunk", &["file_id", "chunk_id", "filedata"]),
    (
        "thread_collaborator",
        &["id", "thread_id", "user_id", "flags", "created"],
    ),
    (
        "thread_event",
        &[
            "id",
            "thread_id",
            "staff_id",
            "username",
            "uid",
            "uid_type",
            "data",
            "annulled",
            "timestamp",
        ],
    ),
    (
        "api_key",
        &[
            "id",
            "isactive",
            "ipaddr",
            "apikey",
            "can_create_tickets",
            "can_exec_cron",
            "notes",
            "created",
            "updated",
        ],
    ),
];

/// What the source is, as found by the checks.
#[derive(Debug, Clone)]
pub(crate) struct SourceInfo {
    /// The database name.
    pub database: String,
    /// `osTicket 1.18 (schema 5fb92bef…)`.
    pub version: String,
    /// Whether the signature is one of a known release.
    pub known_release: bool,
    /// `core` settings the import uses (default department, priority).
    pub core: HashMap<String, String>,
    /// The time zone the source's datetimes are read in: the server's, e.g. `SYSTEM (UTC)`.
    pub time_zone: String,
    /// `ticket__cdata` has `subject` / `priority` columns.
    cdata_subject: bool,
    cdata_priority: bool,
    /// The dynamic-forms tables are there (fallback for subject and priority).
    forms: bool,
    /// `user__cdata` columns `phone` / `notes`.
    user_phone: bool,
    user_notes: bool,
    /// Events are named through `thread_event.event_id` → `event.name` (1.16+); otherwise by
    /// `thread_event.state` (1.14, 1.15).
    event_table: bool,
}

/// An open, checked source.
pub(crate) struct Source {
    conn: MySqlConnection,
    prefix: String,
    pub info: SourceInfo,
}

pub use helpline_core::redact_url as redact;

fn source_error(what: &str) -> impl FnOnce(sqlx::Error) -> ImportError + '_ {
    move |error| ImportError::Source {
        what: what.to_owned(),
        message: error.to_string(),
    }
}

impl Source {
    /// Connects and checks that the database is an osTicket installation this import reads:
    /// the prefix's tables exist, the version is supported, every column read is there.
    pub async fn open(url: &str, prefix: &str) -> Result<Self, ImportError> {
        let shown = redact(url);
        if prefix.is_empty()
            || prefix.len() > 32
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ImportError::BadPrefix(prefix.to_owned()));
        }
        let normalised = match url.split_once("://") {
            Some(("mysql" | "mariadb", rest)) => format!("mysql://{rest}"),
            _ => return Err(ImportError::BadUrl(shown)),
        };
        let options = MySqlConnectOptions::from_str(&normalised)
            .map_err(|e| ImportError::BadUrl(format!("{shown}: {e}")))?
            // Keep the server's time zone: osTicket's datetimes are in it (see the module doc).
            .timezone(None);
        if options.get_database().is_none_or(str::is_empty) {
            return Err(ImportError::BadUrl(format!(
                "{shown}: the URL names no database (mysql://USER:PASS@HOST:PORT/DATABASE)"
            )));
        }
        let mut conn = MySqlConnection::connect_with(&options)
            .await
            .map_err(|error| ImportError::Connect {
                url: shown.clone(),
                message: error.to_string(),
            })?;
        let database: String = sqlx::query_scalar("select database()")
            .fetch_one(&mut conn)
            .await
            .map_err(source_error("the database name"))?;

        // Tables and columns of this database, by name.
        let rows = sqlx::query(
            "select table_name as t, column_name as c from information_schema.columns \
             where table_schema = database()",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(source_error("the list of tables"))?;
        let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in rows {
            let table: String = text(&row, "t")?;
            let column: String = text(&row, "c")?;
            columns
                .entry(table.to_ascii_lowercase())
                .or_default()
                .insert(column.to_ascii_lowercase());
        }
        let lower_prefix = prefix.to_ascii_lowercase();
        let has = |name: &str| columns.contains_key(&format!("{lower_prefix}{name}"));
        if !(has("config") && has("ticket") && has("thread_entry")) {
            // Which prefixes do have osTicket's tables?
            let found: Vec<String> = columns
                .keys()
                .filter_map(|table| table.strip_suffix("ticket__cdata"))
                .filter(|p| {
                    columns.contains_key(&format!("{p}config"))
                        && columns.contains_key(&format!("{p}thread_entry"))
                })
                .map(str::to_owned)
                .collect();
            if found.is_empty() {
                return Err(ImportError::NotOsticket {
                    database,
                    detail: format!(
                        "it has no osTicket tables ({prefix}config, {prefix}ticket, \
                         {prefix}thread_entry, …) under any prefix"
                    ),
                });
            }
            return Err(ImportError::WrongPrefix {
                prefix: prefix.to_owned(),
                database,
                found,
            });
        }

        let config_table = format!("`{prefix}config`");
        let core_rows = sqlx::query(AssertSqlSafe(format!(
            "select `key` as k, value as v from {config_table} where namespace = 'core'"
        )))
        .fetch_all(&mut conn)
        .await
        .map_err(source_error("the core settings"))?;
        let mut core = HashMap::new();
        for row in core_rows {
            let key: String = text(&row, "k")?;
            let value: Option<String> = opt_text(&row, "v")?;
            core.insert(key, value.unwrap_or_default());
        }
        let Some(signature) = core.get("schema_signature").cloned() else {
            return Err(ImportError::NotOsticket {
                database,
                detail: format!(
                    "{prefix}config has no core schema_signature, which every osTicket \
                     installation records"
                ),
            });
        };
        let release = KNOWN_SIGNATURES
            .iter()
            .find(|(sig, _)| sig.eq_ignore_ascii_case(signature.trim()))
            .map(|(_, release)| *release);
        let short = signature.get(..8).unwrap_or(&signature);
        let version = match release {
            Some(release) => format!("osTicket {release} (schema {short}…)"),
            None => format!("osTicket, unknown schema {signature}"),
        };
        if let Some(release) = release
            && TOO_OLD.contains(&release)
        {
            return Err(ImportError::Unsupported(format!(
                "{version} is older than 1.14, the oldest release this import reads \
                 (1.14 to 1.18 are supported): upgrade osTicket to 1.18 first (its upgrader \
                 works in place), then import"
            )));
        }

        let table_columns = |name: &str| {
            columns
                .get(&format!("{lower_prefix}{name}"))
                .cloned()
                .unwrap_or_default()
        };
        let mut missing = Vec::new();
        for (table, wanted) in REQUIRED {
            let present = table_columns(table);
            if present.is_empty() {
                missing.push(format!("table {prefix}{table}"));
                continue;
            }
            for column in *wanted {
                if !present.contains(*column) {
                    missing.push(format!("{prefix}{table}.{column}"));
                }
            }
        }
        let event = table_columns("thread_event");
        let event_table = event.contains("event_id") && table_columns("event").contains("name");
        if !event_table && !event.contains("state") {
            missing.push(format!(
                "{prefix}thread_event.event_id (with {prefix}event) or {prefix}thread_event.state"
            ));
        }
        if !missing.is_empty() {
            return Err(ImportError::Unsupported(format!(
                "{version}: the import reads columns this database does not have: {} \
                 (1.14 to 1.18 have them all)",
                missing.join(", ")
            )));
        }
        let cdata = table_columns("ticket__cdata");
        let user_cdata = table_columns("user__cdata");
        let forms = ["form_entry", "form_entry_values", "form_field"]
            .iter()
            .all(|t| !table_columns(t).is_empty());
        let zone = sqlx::query("select @@session.time_zone as z, @@system_time_zone as s")
            .fetch_one(&mut conn)
            .await
            .map_err(source_error("the server's time zone"))?;
        let (session_zone, system_zone): (String, String) = (text(&zone, "z")?, text(&zone, "s")?);
        let time_zone = if session_zone.eq_ignore_ascii_case("SYSTEM") {
            format!("SYSTEM ({system_zone})")
        } else {
            session_zone
        };
        let info = SourceInfo {
            database,
            version,
            known_release: release.is_some(),
            core,
            time_zone,
            cdata_subject: cdata.contains("subject") && cdata.contains("ticket_id"),
            cdata_priority: cdata.contains("priority") && cdata.contains("ticket_id"),
            forms,
            user_phone: user_cdata.contains("phone") && user_cdata.contains("user_id"),
            user_notes: user_cdata.contains("notes") && user_cdata.contains("user_id"),
            event_table,
        };
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            info,
        })
    }

    /// What identifies this osTicket desk across runs (and across a dump restored under
    /// another database name): its help desk URL and its first ticket's number and time.
    pub async fn identity(&mut self) -> Result<String, ImportError> {
        let url = self
            .info
            .core
            .get("helpdesk_url")
            .map(|u| u.trim().to_owned())
            .unwrap_or_default();
        let sql = format!(
            "select number as n, cast(unix_timestamp(created) as signed) as c from {} \
             order by ticket_id limit 1",
            self.t("ticket")
        );
        let first = match self.all("the first ticket", sql).await?.first() {
            Some(row) => format!("{}@{}", text(row, "n")?, int(row, "c")?),
            None => "no tickets".to_owned(),
        };
        Ok(format!("{url} first ticket {first}"))
    }

    /// A table's quoted name.
    fn t(&self, name: &str) -> String {
        format!("`{}{}`", self.prefix, name)
    }

    /// Runs a statement over the text protocol: one round trip, no prepared statement (each
    /// chunk's id list makes a new statement, which the driver would prepare and cache).
    async fn all(&mut self, what: &str, sql: String) -> Result<Vec<MySqlRow>, ImportError> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(&mut self.conn)
            .await
            .map_err(source_error(what))
    }

    async fn count(&mut self, what: &str, sql: String) -> Result<u64, ImportError> {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut self.conn)
            .await
            .map_err(source_error(what))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn departments(&mut self) -> Result<Vec<DepartmentRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, cast(coalesce(pid, 0) as signed) pid, name, \
             cast(unix_timestamp(created) as signed) created from {} order by id",
            self.t("department")
        );
        self.all("departments", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(DepartmentRow {
                    id: int(row, "id")?,
                    pid: int(row, "pid")?,
                    name: text(row, "name")?,
                    created: opt_int(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn topics(&mut self) -> Result<Vec<TopicRow>, ImportError> {
        let sql = format!(
            "select cast(topic_id as signed) id, cast(topic_pid as signed) pid, topic, \
             cast(dept_id as signed) dept_id, cast(priority_id as signed) priority_id, \
             cast(flags as signed) flags, cast(unix_timestamp(created) as signed) created \
             from {} order by topic_id",
            self.t("help_topic")
        );
        self.all("help topics", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(TopicRow {
                    id: int(row, "id")?,
                    pid: int(row, "pid")?,
                    name: text(row, "topic")?,
                    dept_id: int(row, "dept_id")?,
                    priority_id: int(row, "priority_id")?,
                    flags: int(row, "flags")?,
                    created: opt_int(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn statuses(&mut self) -> Result<Vec<StatusRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, name, state, properties from {} order by id",
            self.t("ticket_status")
        );
        self.all("ticket statuses", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(StatusRow {
                    id: int(row, "id")?,
                    name: text(row, "name")?,
                    state: opt_text(row, "state")?.unwrap_or_default(),
                    properties: opt_text(row, "properties")?,
                })
            })
            .collect()
    }

    pub async fn priorities(&mut self) -> Result<Vec<PriorityRow>, ImportError> {
        let sql = format!(
            "select cast(priority_id as signed) id, priority, priority_desc, \
             cast(priority_urgency as signed) urgency from {} order by priority_id",
            self.t("ticket_priority")
        );
        self.all("priorities", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(PriorityRow {
                    id: int(row, "id")?,
                    key: text(row, "priority")?,
                    desc: opt_text(row, "priority_desc")?.unwrap_or_default(),
                    urgency: int(row, "urgency")?,
                })
            })
            .collect()
    }

    pub async fn slas(&mut self) -> Result<Vec<SlaRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, name, cast(grace_period as signed) grace, \
             cast(unix_timestamp(created) as signed) created from {} order by id",
            self.t("sla")
        );
        self.all("SLAs", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(SlaRow {
                    id: int(row, "id")?,
                    name: text(row, "name")?,
                    grace_hours: int(row, "grace")?,
                    created: opt_int(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn organizations(&mut self) -> Result<Vec<OrganizationRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, name, domain, \
             cast(unix_timestamp(created) as signed) created, \
             cast(unix_timestamp(updated) as signed) updated from {} order by id",
            self.t("organization")
        );
        self.all("organisations", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(OrganizationRow {
                    id: int(row, "id")?,
                    name: text(row, "name")?,
                    domain: opt_text(row, "domain")?,
                    created: opt_int(row, "created")?,
                    updated: opt_int(row, "updated")?,
                })
            })
            .collect()
    }

    pub async fn staff(&mut self) -> Result<Vec<StaffRow>, ImportError> {
        let sql = format!(
            "select cast(staff_id as signed) id, cast(dept_id as signed) dept_id, username, \
             firstname, lastname, passwd, email, cast(isactive as signed) isactive, \
             cast(unix_timestamp(created) as signed) created from {} order by staff_id",
            self.t("staff")
        );
        self.all("staff", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(StaffRow {
                    id: int(row, "id")?,
                    dept_id: int(row, "dept_id")?,
                    username: text(row, "username")?,
                    firstname: opt_text(row, "firstname")?.unwrap_or_default(),
                    lastname: opt_text(row, "lastname")?.unwrap_or_default(),
                    passwd: opt_text(row, "passwd")?,
                    email: opt_text(row, "email")?.unwrap_or_default(),
                    active: int(row, "isactive")? != 0,
                    created: opt_int(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn users(&mut self) -> Result<Vec<UserRow>, ImportError> {
        let (phone, notes, join) = match (self.info.user_phone, self.info.user_notes) {
            (false, false) => ("null", "null", String::new()),
            (p, n) => (
                if p { "c.phone" } else { "null" },
                if n { "c.notes" } else { "null" },
                format!("left join {} c on c.user_id = u.id", self.t("user__cdata")),
            ),
        };
        let sql = format!(
            "select cast(u.id as signed) id, cast(u.org_id as signed) org_id, \
             cast(u.default_email_id as signed) default_email_id, u.name, \
             {phone} as phone, {notes} as notes, \
             cast(unix_timestamp(u.created) as signed) created, \
             cast(unix_timestamp(u.updated) as signed) updated \
             from {} u {join} order by u.id",
            self.t("user")
        );
        self.all("users", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(UserRow {
                    id: int(row, "id")?,
                    org_id: int(row, "org_id")?,
                    default_email_id: int(row, "default_email_id")?,
                    name: opt_text(row, "name")?.unwrap_or_default(),
                    phone: opt_text(row, "phone")?,
                    notes: opt_text(row, "notes")?,
                    created: opt_int(row, "created")?,
                    updated: opt_int(row, "updated")?,
                })
            })
            .collect()
    }

    pub async fn user_emails(&mut self) -> Result<Vec<UserEmailRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, cast(user_id as signed) user_id, address \
             from {} order by id",
            self.t("user_email")
        );
        self.all("user addresses", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(UserEmailRow {
                    id: int(row, "id")?,
                    user_id: int(row, "user_id")?,
                    address: text(row, "address")?,
                })
            })
            .collect()
    }

    /// Every ticket id, ascending (the later phases walk tickets in chunks).
    pub async fn ticket_ids(&mut self) -> Result<Vec<i64>, ImportError> {
        let sql = format!(
            "select cast(ticket_id as signed) id from {} order by ticket_id",
            self.t("ticket")
        );
        self.all("ticket ids", sql)
            .await?
            .iter()
            .map(|row| int(row, "id"))
            .collect()
    }

    /// Tickets with the given ids, with subject and priority from `ticket__cdata` (or, where
    /// it has none, from the ticket form's stored values) and the thread's message times.
    pub async fn tickets(&mut self, ids: &[i64]) -> Result<Vec<TicketRow>, ImportError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = id_list(ids);
        let (subject, priority, join) = match (self.info.cdata_subject, self.info.cdata_priority) {
            (false, false) => ("null", "null", String::new()),
            (s, p) => (
                if s { "c.subject" } else { "null" },
                if p { "c.priority" } else { "null" },
                format!(
                    "left join {} c on c.ticket_id = t.ticket_id",
                    self.t("ticket__cdata")
                ),
            ),
        };
        let thread = self.t("thread");
        let sql = format!(
            "select cast(t.ticket_id as signed) id, t.number, cast(t.user_id as signed) user_id, \
             cast(t.status_id as signed) status_id, cast(t.dept_id as signed) dept_id, \
             cast(t.topic_id as signed) topic_id, cast(t.staff_id as signed) staff_id, \
             t.ip_address, t.source, cast(t.isanswered as signed) isanswered, \
             cast(unix_timestamp(t.duedate) as signed) duedate, \
             cast(unix_timestamp(t.est_duedate) as signed) est_duedate, \
             cast(unix_timestamp(t.reopened) as signed) reopened, \
             cast(unix_timestamp(t.closed) as signed) closed, \
             cast(unix_timestamp(t.lastupdate) as signed) lastupdate, \
             cast(unix_timestamp(t.created) as signed) created, \
             cast(unix_timestamp(t.updated) as signed) updated, \
             {subject} as subject, {priority} as priority, \
             (select cast(unix_timestamp(max(th.lastmessage)) as signed) from {thread} th \
              where th.object_id = t.ticket_id and th.object_type = 'T') lastmessage, \
             (select cast(unix_timestamp(max(th.lastresponse)) as signed) from {thread} th \
              where th.object_id = t.ticket_id and th.object_type = 'T') lastresponse \
             from {} t {join} where t.ticket_id in ({list}) order by t.ticket_id",
            self.t("ticket")
        );
        let mut tickets = self
            .all("tickets", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(TicketRow {
                    id: int(row, "id")?,
                    number: opt_text(row, "number")?.unwrap_or_default(),
                    user_id: int(row, "user_id")?,
                    status_id: int(row, "status_id")?,
                    dept_id: int(row, "dept_id")?,
                    topic_id: int(row, "topic_id")?,
                    staff_id: int(row, "staff_id")?,
                    ip_address: opt_text(row, "ip_address")?,
                    source: opt_text(row, "source")?,
                    is_answered: int(row, "isanswered")? != 0,
                    duedate: opt_int(row, "duedate")?,
                    est_duedate: opt_int(row, "est_duedate")?,
                    reopened: opt_int(row, "reopened")?,
                    closed: opt_int(row, "closed")?,
                    lastupdate: opt_int(row, "lastupdate")?,
                    created: opt_int(row, "created")?,
                    updated: opt_int(row, "updated")?,
                    subject: opt_text(row, "subject")?.filter(|s| !s.trim().is_empty()),
                    priority: opt_text(row, "priority")?
                        .and_then(|p| p.trim().parse::<i64>().ok())
                        .filter(|&p| p > 0),
                    priority_name: None,
                    lastmessage: opt_int(row, "lastmessage")?,
                    lastresponse: opt_int(row, "lastresponse")?,
                })
            })
            .collect::<Result<Vec<_>, ImportError>>()?;

        // Where the materialised table has no subject or priority: the form's stored values.
        let lacking: Vec<i64> = tickets
            .iter()
            .filter(|t| t.subject.is_none() || t.priority.is_none())
            .map(|t| t.id)
            .collect();
        if self.info.forms && !lacking.is_empty() {
            let sql = format!(
                "select cast(fe.object_id as signed) ticket_id, ff.name, v.value, \
                 cast(v.value_id as signed) value_id \
                 from {} fe join {} v on v.entry_id = fe.id join {} ff on ff.id = v.field_id \
                 where fe.object_type = 'T' and fe.object_id in ({}) \
                 and ff.name in ('subject', 'priority') order by fe.id",
                self.t("form_entry"),
                self.t("form_entry_values"),
                self.t("form_field"),
                id_list(&lacking)
            );
            let rows = self.all("ticket form values", sql).await?;
            let mut by_ticket: HashMap<i64, Vec<FormValue>> = HashMap::new();
            for row in &rows {
                by_ticket.entry(int(row, "ticket_id")?).or_default().push((
                    text(row, "name")?,
                    opt_text(row, "value")?,
                    opt_int(row, "value_id")?,
                ));
            }
            for ticket in &mut tickets {
                for (name, value, value_id) in by_ticket.remove(&ticket.id).unwrap_or_default() {
                    match name.as_str() {
                        "subject" if ticket.subject.is_none() => {
                            ticket.subject = value.filter(|s| !s.trim().is_empty());
                        }
                        "priority" if ticket.priority.is_none() => {
                            ticket.priority = value_id.filter(|&p| p > 0);
                            if ticket.priority.is_none() {
                                ticket.priority_name = value.filter(|s| !s.trim().is_empty());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(tickets)
    }

    /// The thread entries of these tickets, each ticket's in thread order (created, then id).
    pub async fn entries(&mut self, tickets: &[i64]) -> Result<Vec<EntryRow>, ImportError> {
        if tickets.is_empty() {
            return Ok(Vec::new());
        }
        let email = self.t("thread_entry_email");
        let ticket = self.t("ticket");
        let sql = format!(
            "select cast(e.id as signed) id, cast(th.object_id as signed) ticket_id, \
             cast(e.staff_id as signed) staff_id, cast(e.user_id as signed) user_id, e.type, \
             e.poster, e.source, e.title, e.body, e.format, e.ip_address, \
             cast(unix_timestamp(e.created) as signed) created, \
             cast(coalesce(e.pid, 0) as signed) pid, cast(coalesce(e.flags, 0) as signed) flags, \
             (select t.number from {ticket} t where t.ticket_id = th.object_id) number, \
             (select m.mid from {email} m where m.thread_entry_id = e.id order by m.id limit 1) mid, \
             (select m.headers from {email} m where m.thread_entry_id = e.id order by m.id limit 1) \
             headers \
             from {} e join {} th on th.id = e.thread_id \
             where th.object_type = 'T' and th.object_id in ({}) \
             order by th.object_id, e.created, e.id",
            self.t("thread_entry"),
            self.t("thread"),
            id_list(tickets)
        );
        self.all("thread entries", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(EntryRow {
                    id: int(row, "id")?,
                    ticket_id: int(row, "ticket_id")?,
                    number: opt_text(row, "number")?.unwrap_or_default(),
                    staff_id: opt_int(row, "staff_id")?.unwrap_or(0),
                    user_id: opt_int(row, "user_id")?.unwrap_or(0),
                    kind: opt_text(row, "type")?.unwrap_or_default(),
                    poster: opt_text(row, "poster")?,
                    source: opt_text(row, "source")?,
                    title: opt_text(row, "title")?,
                    body: opt_text(row, "body")?,
                    format: opt_text(row, "format")?,
                    ip_address: opt_text(row, "ip_address")?,
                    created: opt_int(row, "created")?,
                    pid: int(row, "pid")?,
                    flags: int(row, "flags")?,
                    mid: opt_text(row, "mid")?,
                    headers: opt_text(row, "headers")?,
                })
            })
            .collect()
    }

    /// The attachments (type `H`) of these thread entries, with their file records.
    pub async fn attachments(
        &mut self,
        entries: &[i64],
    ) -> Result<Vec<AttachmentRow>, ImportError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select cast(a.id as signed) id, cast(a.object_id as signed) entry_id, a.name, \
             cast(a.inline as signed) inline, cast(a.file_id as signed) file_id, \
             f.bk, f.type, cast(f.size as signed) size, f.name fname, f.`key` fkey, \
             cast(f.id as signed) found \
             from {} a left join {} f on f.id = a.file_id \
             where a.type = 'H' and a.object_id in ({}) order by a.id",
            self.t("attachment"),
            self.t("file"),
            id_list(entries)
        );
        self.all("attachments", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(AttachmentRow {
                    id: int(row, "id")?,
                    entry_id: int(row, "entry_id")?,
                    name: opt_text(row, "name")?,
                    inline: opt_int(row, "inline")?.unwrap_or(0) != 0,
                    file_id: int(row, "file_id")?,
                    file_found: opt_int(row, "found")?.is_some(),
                    backend: opt_text(row, "bk")?.unwrap_or_default(),
                    content_type: opt_text(row, "type")?.unwrap_or_default(),
                    size: opt_int(row, "size")?.unwrap_or(0),
                    file_name: opt_text(row, "fname")?.unwrap_or_default(),
                    key: opt_text(row, "fkey")?,
                })
            })
            .collect()
    }

    /// A database-stored file's content: its chunks in order, concatenated.
    pub async fn file_content(&mut self, file_id: i64) -> Result<(Vec<u8>, usize), ImportError> {
        let sql = format!(
            "select filedata from {} where file_id = ? order by chunk_id",
            self.t("file_chunk")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(file_id)
            .fetch_all(&mut self.conn)
            .await
            .map_err(source_error("file chunks"))?;
        let mut content = Vec::new();
        for row in &rows {
            let chunk: Option<Vec<u8>> = row
                .try_get("filedata")
                .map_err(source_error("file chunks"))?;
            content.extend_from_slice(&chunk.unwrap_or_default());
        }
        Ok((content, rows.len()))
    }

    pub async fn collaborators(
        &mut self,
        tickets: &[i64],
    ) -> Result<Vec<CollaboratorRow>, ImportError> {
        if tickets.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select cast(c.id as signed) id, cast(th.object_id as signed) ticket_id, \
             cast(c.user_id as signed) user_id, cast(coalesce(c.flags, 0) as signed) flags, \
             cast(unix_timestamp(c.created) as signed) created \
             from {} c join {} th on th.id = c.thread_id \
             where th.object_type = 'T' and th.object_id in ({}) order by c.id",
            self.t("thread_collaborator"),
            self.t("thread"),
            id_list(tickets)
        );
        self.all("collaborators", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(CollaboratorRow {
                    id: int(row, "id")?,
                    ticket_id: int(row, "ticket_id")?,
                    user_id: int(row, "user_id")?,
                    flags: int(row, "flags")?,
                    created: opt_int(row, "created")?,
                })
            })
            .collect()
    }

    pub async fn events(&mut self, tickets: &[i64]) -> Result<Vec<EventRow>, ImportError> {
        if tickets.is_empty() {
            return Ok(Vec::new());
        }
        let (name, join) = if self.info.event_table {
            (
                "n.name",
                format!("left join {} n on n.id = ev.event_id", self.t("event")),
            )
        } else {
            ("ev.state", String::new())
        };
        let sql = format!(
            "select cast(ev.id as signed) id, cast(th.object_id as signed) ticket_id, \
             {name} as name, cast(ev.staff_id as signed) staff_id, cast(ev.uid as signed) uid, \
             ev.uid_type, ev.username, ev.data, cast(ev.annulled as signed) annulled, \
             cast(unix_timestamp(ev.timestamp) as signed) ts \
             from {} ev join {} th on th.id = ev.thread_id {join} \
             where th.object_type = 'T' and th.object_id in ({}) order by ev.id",
            self.t("thread_event"),
            self.t("thread"),
            id_list(tickets)
        );
        self.all("events", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(EventRow {
                    id: int(row, "id")?,
                    ticket_id: int(row, "ticket_id")?,
                    name: opt_text(row, "name")?.unwrap_or_default(),
                    staff_id: opt_int(row, "staff_id")?.unwrap_or(0),
                    uid: opt_int(row, "uid")?.unwrap_or(0),
                    uid_type: opt_text(row, "uid_type")?.unwrap_or_default(),
                    username: opt_text(row, "username")?,
                    data: opt_text(row, "data")?,
                    annulled: opt_int(row, "annulled")?.unwrap_or(0) != 0,
                    timestamp: opt_int(row, "ts")?,
                })
            })
            .collect()
    }

    pub async fn api_keys(&mut self) -> Result<Vec<ApiKeyRow>, ImportError> {
        let sql = format!(
            "select cast(id as signed) id, cast(isactive as signed) isactive, ipaddr, apikey, \
             cast(can_create_tickets as signed) can_create, cast(can_exec_cron as signed) \
             can_cron, notes, cast(unix_timestamp(created) as signed) created, \
             cast(unix_timestamp(updated) as signed) updated from {} order by id",
            self.t("api_key")
        );
        self.all("API keys", sql)
            .await?
            .iter()
            .map(|row| {
                Ok(ApiKeyRow {
                    id: int(row, "id")?,
                    active: int(row, "isactive")? != 0,
                    ipaddr: opt_text(row, "ipaddr")?.unwrap_or_default(),
                    key: opt_text(row, "apikey")?.unwrap_or_default(),
                    can_create_tickets: int(row, "can_create")? != 0,
                    can_exec_cron: int(row, "can_cron")? != 0,
                    notes: opt_text(row, "notes")?,
                    created: opt_int(row, "created")?,
                    updated: opt_int(row, "updated")?,
                })
            })
            .collect()
    }

    /// How many records each later phase will go through (for the progress bar).
    pub async fn counts(&mut self) -> Result<PhaseCounts, ImportError> {
        let thread = self.t("thread");
        let entries = self
            .count(
                "entries",
                format!(
                    "select count(*) from {} e join {thread} th on th.id = e.thread_id \
                     where th.object_type = 'T'",
                    self.t("thread_entry")
                ),
            )
            .await?;
        let collaborators = self
            .count(
                "collaborators",
                format!(
                    "select count(*) from {} c join {thread} th on th.id = c.thread_id \
                     where th.object_type = 'T'",
                    self.t("thread_collaborator")
                ),
            )
            .await?;
        let events = self
            .count(
                "events",
                format!(
                    "select count(*) from {} ev join {thread} th on th.id = ev.thread_id \
                     where th.object_type = 'T'",
                    self.t("thread_event")
                ),
            )
            .await?;
        Ok(PhaseCounts {
            entries,
            collaborators,
            events,
        })
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// A ticket form's stored value: field name, value, and the id of a choice.
type FormValue = (String, Option<String>, Option<i64>);

/// Totals for the progress bar.
pub(crate) struct PhaseCounts {
    pub entries: u64,
    pub collaborators: u64,
    pub events: u64,
}

fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn int(row: &MySqlRow, column: &str) -> Result<i64, ImportError> {
    Ok(opt_int(row, column)?.unwrap_or(0))
}

fn opt_int(row: &MySqlRow, column: &str) -> Result<Option<i64>, ImportError> {
    row.try_get(column).map_err(source_error(column))
}

fn text(row: &MySqlRow, column: &str) -> Result<String, ImportError> {
    Ok(opt_text(row, column)?.unwrap_or_default())
}

/// A text column, also when MySQL reports it as binary (`information_schema` names on some
/// servers, `varbinary` columns): invalid UTF-8 is replaced rather than failing the import.
fn opt_text(row: &MySqlRow, column: &str) -> Result<Option<String>, ImportError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => {
            let bytes: Option<Vec<u8>> = row.try_get(column).map_err(source_error(column))?;
            Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DepartmentRow {
    pub id: i64,
    pub pid: i64,
    pub name: String,
    pub created: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicRow {
    pub id: i64,
    pub pid: i64,
    pub name: String,
    pub dept_id: i64,
    pub priority_id: i64,
    pub flags: i64,
    pub created: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StatusRow {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub properties: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PriorityRow {
    pub id: i64,
    pub key: String,
    pub desc: String,
    pub urgency: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct SlaRow {
    pub id: i64,
    pub name: String,
    pub grace_hours: i64,
    pub created: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct OrganizationRow {
    pub id: i64,
    pub name: String,
    pub domain: Option<String>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StaffRow {
    pub id: i64,
    pub dept_id: i64,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    pub passwd: Option<String>,
    pub email: String,
    pub active: bool,
    pub created: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub id: i64,
    pub org_id: i64,
    pub default_email_id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct UserEmailRow {
    pub id: i64,
    pub user_id: i64,
    pub address: String,
}

#[derive(Debug, Clone)]
pub(crate) struct TicketRow {
    pub id: i64,
    pub number: String,
    pub user_id: i64,
    pub status_id: i64,
    pub dept_id: i64,
    pub topic_id: i64,
    pub staff_id: i64,
    pub ip_address: Option<String>,
    pub source: Option<String>,
    pub is_answered: bool,
    pub duedate: Option<i64>,
    pub est_duedate: Option<i64>,
    pub reopened: Option<i64>,
    pub closed: Option<i64>,
    pub lastupdate: Option<i64>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
    pub subject: Option<String>,
    /// The source's priority id.
    pub priority: Option<i64>,
    /// A priority given by name only (form values without an id).
    pub priority_name: Option<String>,
    pub lastmessage: Option<i64>,
    pub lastresponse: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct EntryRow {
    pub id: i64,
    pub ticket_id: i64,
    /// The ticket's number.
    pub number: String,
    pub staff_id: i64,
    pub user_id: i64,
    pub kind: String,
    pub poster: Option<String>,
    pub source: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub format: Option<String>,
    pub ip_address: Option<String>,
    pub created: Option<i64>,
    /// The entry this one replaced (an edit) or answers; 0 for none.
    pub pid: i64,
    /// `thread_entry.flags` (see [`ENTRY_EDITED`], [`ENTRY_HIDDEN`]).
    pub flags: i64,
    pub mid: Option<String>,
    pub headers: Option<String>,
}

/// osTicket's `ThreadEntry::FLAG_EDITED`: the entry is an edited version of its `pid`.
pub(crate) const ENTRY_EDITED: i64 = 0x2;
/// osTicket's `ThreadEntry::FLAG_HIDDEN`: an earlier version of an edited entry, not shown.
pub(crate) const ENTRY_HIDDEN: i64 = 0x4;
/// osTicket's `Collaborator::FLAG_ACTIVE`: staff approved it (or it was added active).
pub(crate) const COLLABORATOR_ACTIVE: i64 = 0x1;

#[derive(Debug, Clone)]
pub(crate) struct AttachmentRow {
    pub id: i64,
    pub entry_id: i64,
    pub name: Option<String>,
    pub inline: bool,
    pub file_id: i64,
    pub file_found: bool,
    pub backend: String,
    pub content_type: String,
    pub size: i64,
    pub file_name: String,
    pub key: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CollaboratorRow {
    pub id: i64,
    pub ticket_id: i64,
    pub user_id: i64,
    /// `thread_collaborator.flags` (see [`COLLABORATOR_ACTIVE`]).
    pub flags: i64,
    pub created: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: i64,
    pub ticket_id: i64,
    pub name: String,
    pub staff_id: i64,
    pub uid: i64,
    pub uid_type: String,
    pub username: Option<String>,
    pub data: Option<String>,
    pub annulled: bool,
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct ApiKeyRow {
    pub id: i64,
    pub active: bool,
    pub ipaddr: String,
    pub key: String,
    pub can_create_tickets: bool,
    pub can_exec_cron: bool,
    pub notes: Option<String>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("mysql://osticket:s3cret@db.example.com:3306/osticket"),
            "mysql://osticket:****@db.example.com:3306/osticket"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1/ost"),
            "mysql://root@127.0.0.1/ost"
        );
    }
}
