//! An IMAP mailbox the intake reads from: one logged-in session with one selected folder, over
//! async-imap 0.12 (tokio).
//!
//! The intake's cycle is: [`ImapMailbox::unseen_uids`], [`ImapMailbox::fetch`] each one (which
//! never sets `\Seen` by itself, so a crash before the message is stored loses nothing), store
//! the bytes, then [`ImapMailbox::mark_seen`], [`ImapMailbox::move_to`] or
//! [`ImapMailbox::delete`] it, and [`ImapMailbox::idle`] until more mail comes.
//!
//! Messages are named by UID, never by sequence number: sequence numbers shift whenever anything
//! is expunged, UIDs do not — as long as [`ImapMailbox::uid_validity`] stays the same. A caller
//! that remembers UIDs across sessions must forget them all when it changes.
//!
//! [`ImapMailbox::connect`] opens plain TCP; [`ImapMailbox::from_stream`] takes any stream that
//! is already open — `imaps://` mailboxes come through it over TLS
//! ([`crate::sources::connect_imap`]).
//!
//! Why not async-imap's own FETCH/SEARCH/STORE/EXPUNGE methods: in 0.12 they stop at the tagged
//! completion without looking at it, so a `NO` or `BAD` to them comes back as an empty result,
//! and the NO/BAD text of the other commands is flattened into a `Debug` string. This module
//! sends those commands itself ([`async_imap::Session::run_command`]) and reads the responses
//! with async-imap's parser, so every failure keeps its status, response code and text.
//! async-imap still does the framing and parsing, LOGIN, CAPABILITY and IDLE.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, RequestId, Response, ResponseCode, Status,
};
use async_imap::types::{Capability, UnsolicitedResponse};
use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite, BufWriter};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why an IMAP operation failed.
///
/// [`ImapError::is_transient`] tells the intake whether to try again later (network, timeouts,
/// a server hiccup) or to report a configuration problem (login refused, folder missing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The TCP connection could not be opened (refused, unreachable, name not resolved, or not
    /// within the timeout).
    #[error("cannot connect to the IMAP server {addr}: {source}")]
    Connect {
        /// The address as configured.
        addr: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake of an `imaps://` connection failed (certificate not trusted or not
    /// for this host, no TLS on that port, network trouble during the handshake).
    #[error("TLS with the IMAP server {addr} failed: {source}")]
    Tls {
        /// The address as configured.
        addr: String,
        /// What went wrong; of kind `InvalidData` when it was the certificate or TLS itself.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the open connection failed, or the server closed it.
    #[error("IMAP connection failed: {0}")]
    Io(#[source] io::Error),
    /// The server did not complete an operation within the timeout. The session is closed
    /// afterwards: a late answer would be mistaken for the next command's.
    #[error("the IMAP server did not answer {operation} within {after:?}")]
    Timeout {
        /// The IMAP command (`SELECT`, `UID FETCH`, `IDLE`, …) or `greeting`.
        operation: &'static str,
        /// The timeout in force.
        after: Duration,
    },
    /// The server refused the user name and password.
    #[error("the IMAP server refused the login: {text}")]
    AuthRefused {
        /// The server's text, with its response code (`[AUTHENTICATIONFAILED] …`).
        text: String,
    },
    /// The folder does not exist (and, for [`ImapMailbox::move_to`], could not be created).
    #[error("the IMAP folder {folder:?} does not exist: {text}")]
    MailboxMissing {
        /// The folder as the caller named it.
        folder: String,
        /// The server's text.
        text: String,
    },
    /// The server answered `NO` (it understood the command but would not do it).
    #[error("the IMAP server answered NO to {operation}: {text}")]
    No {
        /// The IMAP command.
        operation: &'static str,
        /// The server's text, with its response code.
        text: String,
    },
    /// The server answered `BAD` (it did not accept the command as sent).
    #[error("the IMAP server answered BAD to {operation}: {text}")]
    Bad {
        /// The IMAP command.
        operation: &'static str,
        /// The server's text, with its response code.
        text: String,
    },
    /// The server sent something that breaks the protocol (unparseable, missing, or unexpected
    /// data). The session is closed afterwards.
    #[error("IMAP protocol error: {0}")]
    Protocol(String),
    /// The message is not (or no longer) in the folder.
    #[error("there is no message with UID {uid} in the IMAP folder")]
    MessageMissing {
        /// The UID asked for.
        uid: u32,
    },
    /// The message is larger than the caller's limit; nothing past the limit was transferred.
    #[error("the message with UID {uid} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The message.
        uid: u32,
        /// Its size as the server reports it (`RFC822.SIZE`), when it did.
        size: Option<u32>,
        /// The caller's limit.
        limit: usize,
    },
    /// A folder name that cannot be sent to the server (see [`imap_folder_name`]).
    #[error("invalid IMAP folder name {name:?}: {reason}")]
    InvalidFolderName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server does not offer an extension the operation needs (e.g. `IDLE`).
    #[error("the IMAP server does not offer {0}")]
    Unsupported(&'static str),
    /// An earlier timeout or connection failure closed this session; connect again.
    #[error("the IMAP session was closed by an earlier error")]
    Closed,
}

impl ImapError {
    /// Whether trying again later (with a new connection) may succeed without anyone changing
    /// the configuration: network trouble, timeouts, a server that misbehaved or said `NO` for
    /// now. Refused logins, missing folders, bad folder names, missing extensions and
    /// certificates that are not trusted are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Tls { source, .. } => source.kind() != io::ErrorKind::InvalidData,
            Self::Connect { .. }
            | Self::Io(_)
            | Self::Timeout { .. }
            | Self::Protocol(_)
            | Self::No { .. }
            | Self::Closed => true,
            Self::AuthRefused { .. }
            | Self::MailboxMissing { .. }
            | Self::Bad { .. }
            | Self::MessageMissing { .. }
            | Self::TooLarge { .. }
            | Self::InvalidFolderName { .. }
            | Self::Unsupported(_) => false,
        }
    }

    /// Whether the session can no longer be used after this error: the connection is gone, or
    /// its responses can no longer be matched to commands.
    fn ends_session(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Tls { .. }
                | Self::Io(_)
                | Self::Timeout { .. }
                | Self::Protocol(_)
                | Self::Closed
        )
    }
}

/// What [`ImapMailbox::idle`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// The server reported new messages (`EXISTS`/`RECENT`), now or while the previous command
    /// ran: call [`ImapMailbox::unseen_uids`].
    NewMail,
    /// Nothing new arrived within the wait.
    Timeout,
}

/// A stream IMAP can run over: a [`TcpStream`], a TLS stream, a [`crate::tls::MailStream`].
pub trait ImapTransport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ImapTransport for T {}

/// async-imap writes a command's tag, text and line end as separate writes; without a buffer
/// each one is its own TCP segment, and Nagle's algorithm then holds the later ones back for a
/// delayed ACK. The buffer is flushed once per command, so each command is one write.
type Wire<S> = BufWriter<S>;

/// A logged-in IMAP session with one folder selected (read-write).
///
/// Operations take `&mut self` and run one at a time. Each is bounded by the timeout given at
/// connect; after a timeout or a connection failure the session is closed and every further
/// call answers [`ImapError::Closed`] — connect again. The same holds when a caller drops an
/// operation's future before it completes: the session is closed rather than left out of step.
pub struct ImapMailbox<S: ImapTransport = TcpStream> {
    /// `None` once an error ended the session. IDLE also takes it out for its duration, since
    /// async-imap's IDLE handle owns the session until `DONE`.
    session: Option<Session<Wire<S>>>,
    /// The selected folder as the caller named it (for messages).
    folder: String,
    /// Its wire form ([`imap_folder_name`]).
    folder_wire: String,
    uid_validity: u32,
    /// Upper-cased capability atoms from after login (Dovecot announces MOVE and UIDPLUS only
    /// then, not in its greeting).
    capabilities: HashSet<String>,
    timeout: Duration,
    /// An `EXISTS`/`RECENT` arrived alongside an earlier command: the next [`Self::idle`] returns
    /// at once, because the server will not announce that mail again.
    new_mail_seen: bool,
    /// A command was sent and its completion not read yet. Still set when the next command
    /// starts means the caller dropped the previous future half-way (a `select!`, a timeout of
    /// its own): its responses are still on the wire, so the session cannot go on.
    in_flight: bool,
}

impl<S: ImapTransport> fmt::Debug for ImapMailbox<S> {
    /// The session itself is left out: it would print buffers, not state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("folder", &self.folder)
            .field("uid_validity", &self.uid_validity)
            .field("open", &self.session.is_some())
            .field("capabilities", &self.capabilities)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ImapMailbox<TcpStream> {
    /// Connects over plain TCP to `addr` (`host:port`), logs in with `LOGIN` and selects
    /// `folder` (e.g. `INBOX`) read-write.
    ///
    /// `timeout` bounds each step (connect, greeting, login, select) and, later, each
    /// operation on its own. Plain TCP sends the password in the clear: use it on loopback or
    /// inside a trusted network only, until TLS is added with [`ImapMailbox::from_stream`].
    pub async fn connect(
        addr: &str,
        user: &str,
        password: &str,
        folder: &str,
        timeout: Duration,
    ) -> Result<Self, ImapError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ImapError::Connect {
                    addr: addr.to_owned(),
                    source,
                });
            }
            Err(_) => {
                return Err(ImapError::Connect {
                    addr: addr.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    ),
                });
            }
        };
        // Commands are small and each waits for its answer: do not let Nagle delay them.
        stream.set_nodelay(true).map_err(ImapError::Io)?;
        Self::from_stream(stream, user, password, folder, timeout).await
    }
}

impl<S: ImapTransport> ImapMailbox<S> {
    /// Like [`ImapMailbox::connect`], over a stream that is already open and on which the
    /// server's greeting has not been read yet — e.g. a TLS stream for `imaps` (port 993).
    /// (STARTTLS on port 143 will need its own constructor: after the upgrade there is no
    /// second greeting to read.)
    pub async fn from_stream(
        stream: S,
        user: &str,
        password: &str,
        folder: &str,
        timeout: Duration,
    ) -> Result<Self, ImapError> {
        let folder_wire = imap_folder_name(folder)?;
        if has_line_break(user) || has_line_break(password) {
            // async-imap would refuse them too, but only after the greeting; say why plainly.
            return Err(ImapError::AuthRefused {
                text: "the user name or password contains a line break or NUL, which IMAP \
                       LOGIN cannot send"
                    .to_owned(),
            });
        }

        let mut client = Client::new(BufWriter::new(stream));
        let greeting = within(timeout, "greeting", async {
            client.read_response().await.map_err(ImapError::Io)
        })
        .await?;
        check_greeting(greeting.as_ref().map(|g| g.parsed()))?;

        let (session, announced) = within(timeout, "LOGIN", async {
            client
                .login_with_capabilities(user, password)
                .await
                .map_err(|(e, _client)| login_error(e))
        })
        .await?;

        let mut mailbox = Self {
            session: Some(session),
            folder: folder.to_owned(),
            folder_wire,
            uid_validity: 0,
            capabilities: HashSet::new(),
            timeout,
            new_mail_seen: false,
            in_flight: false,
        };

        mailbox.capabilities = match announced {
            // Dovecot puts the post-login list in the LOGIN completion: no extra round trip.
            Some(caps) => capability_names(caps.iter()),
            None => {
                let session = mailbox.session.as_mut().ok_or(ImapError::Closed)?;
                let caps = within(timeout, "CAPABILITY", async {
                    session
                        .capabilities()
                        .await
                        .map_err(|e| from_async_imap("CAPABILITY", e))
                })
                .await?;
                capability_names(caps.iter())
            }
        };

        mailbox.select().await?;
        Ok(mailbox)
    }

    /// The folder's `UIDVALIDITY`. UIDs are only meaningful together with it: when it differs
    /// from the value stored with remembered UIDs, those UIDs name other messages now.
    pub fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// Whether the server offers `IDLE` (RFC 2177), per its post-login `CAPABILITY`. Without
    /// it, [`Self::idle`] fails with [`ImapError::Unsupported`] and the caller polls.
    pub fn supports_idle(&self) -> bool {
        self.has_capability("IDLE")
    }

    /// Whether the server offers `MOVE` (RFC 6851), which [`Self::move_to`] prefers.
    pub fn supports_move(&self) -> bool {
        self.has_capability("MOVE")
    }

    /// Whether the server offers `UIDPLUS` (RFC 4315), so that expunging removes only the
    /// message meant.
    pub fn supports_uidplus(&self) -> bool {
        self.has_capability("UIDPLUS")
    }

    /// The selected folder, as given to [`ImapMailbox::connect`].
    pub fn folder(&self) -> &str {
        &self.folder
    }

    fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    /// The UIDs of the messages still to take in, ascending: `UID SEARCH UNSEEN UNDELETED`.
    ///
    /// `UNSEEN` because the intake marks what it has taken (or moves or deletes it), and
    /// `UNDELETED` because a message flagged `\Deleted` is on its way out — e.g. left behind by
    /// a COPY-based move that was interrupted before its expunge, and already copied.
    pub async fn unseen_uids(&mut self) -> Result<Vec<u32>, ImapError> {
        // Dovecot (2.3) searches the folder as this session last saw it and does not look for
        // new mail during a SEARCH — not even to announce it afterwards. NOOP is the command
        // RFC 3501 names for that: it brings the view up to date, so the search sees all mail
        // delivered until now.
        self.run("NOOP", "NOOP", None).await?;
        // Everything announced so far is in this search; only what comes with it counts for
        // the next idle.
        self.new_mail_seen = false;
        let responses = self
            .run("UID SEARCH", "UID SEARCH UNSEEN UNDELETED", None)
            .await?;
        let mut uids: Vec<u32> = responses
            .into_iter()
            .filter_map(|r| match r {
                Untagged::Search(ids) => Some(ids),
                _ => None,
            })
            .flatten()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// UIDs of the folder's messages from `first` on, read or unread (not those flagged
    /// deleted), in ascending order.
    pub async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>, ImapError> {
        check_uid(first)?;
        self.run("NOOP", "NOOP", None).await?;
        self.new_mail_seen = false;
        let command = format!("UID SEARCH UID {first}:* UNDELETED");
        let responses = self.run("UID SEARCH", &command, None).await?;
        let mut uids: Vec<u32> = responses
            .into_iter()
            .filter_map(|r| match r {
                Untagged::Search(ids) => Some(ids),
                _ => None,
            })
            .flatten()
            // `n:*` also matches the highest UID when it is below n (RFC 3501 §6.4.8).
            .filter(|uid| *uid >= first)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The raw bytes of message `uid` (`BODY.PEEK[]`, which unlike `BODY[]` leaves `\Seen`
    /// alone), as the server stores them (CRLF line ends).
    ///
    /// At most `max_bytes + 1` bytes are transferred (a partial fetch), so an oversized message
    /// costs neither the time nor the memory to download it: it fails with
    /// [`ImapError::TooLarge`]. A UID that is not in the folder fails with
    /// [`ImapError::MessageMissing`].
    pub async fn fetch(&mut self, uid: u32, max_bytes: usize) -> Result<Vec<u8>, ImapError> {
        check_uid(uid)?;
        // IMAP partial lengths are 32-bit; a limit beyond that asks for everything.
        let want = u32::try_from(max_bytes.saturating_add(1)).unwrap_or(u32::MAX);
        let command = format!("UID FETCH {uid} (UID RFC822.SIZE BODY.PEEK[]<0.{want}>)");
        let responses = self.run("UID FETCH", &command, None).await?;

        // Other FETCH responses may come along: flag changes made by other clients, for other
        // messages or for this one (then with its UID but without a body). Only what carries
        // our UID counts, merged.
        let (mut size, mut body) = (None, None);
        for response in responses {
            if let Untagged::Fetch {
                uid: Some(u),
                size: s,
                body: b,
            } = response
                && u == uid
            {
                size = size.or(s);
                body = body.or(b);
            }
        }

        let Some(body) = body else {
            return if size.is_some() {
                Err(ImapError::Protocol(format!(
                    "the server answered UID FETCH {uid} without the message body"
                )))
            } else {
                Err(ImapError::MessageMissing { uid })
            };
        };
        // The body decides, not RFC822.SIZE: a partial fetch returns the whole message when it is
        // shorter than asked for, and some servers (Exchange) report sizes that are estimates.
        if body.len() > max_bytes {
            return Err(ImapError::TooLarge {
                uid,
                size,
                limit: max_bytes,
            });
        }
        Ok(body)
    }

    /// Flags message `uid` `\Seen`, so [`Self::unseen_uids`] no longer lists it. A UID no longer
    /// in the folder is not an error (another client already took it away).
    pub async fn mark_seen(&mut self, uid: u32) -> Result<(), ImapError> {
        check_uid(uid)?;
        let command = format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)");
        self.run("UID STORE", &command, None).await.map(drop)
    }

    /// Moves message `uid` to `folder`, creating the folder when the server says it is missing
    /// (and subscribing to it, so that mail clients show it).
    ///
    /// With `MOVE` this is `UID MOVE`, atomic on the server. Without it: `UID COPY`, flag
    /// `\Deleted`, then `UID EXPUNGE` when `UIDPLUS` is offered, else `EXPUNGE` — which also
    /// removes any other message someone flagged `\Deleted` in this folder. A crash between the
    /// copy and the expunge leaves a copy behind, but [`Self::unseen_uids`] skips `\Deleted`
    /// messages, so it is not taken in twice. A UID no longer in the folder is not an error.
    ///
    /// `folder` is a full name as the server spells it, with the server's own hierarchy
    /// separator (`Archive/2024` or `Archive.2024`); it must not be the selected folder.
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> Result<(), ImapError> {
        check_uid(uid)?;
        let wire = imap_folder_name(folder)?;
        if same_folder(&wire, &self.folder_wire) {
            return Err(ImapError::InvalidFolderName {
                name: folder.to_owned(),
                reason: "is the folder being read; a message cannot be moved onto itself",
            });
        }
        match self.transfer(uid, folder, &wire).await {
            Err(ImapError::MailboxMissing { .. }) => {
                self.create_folder(folder, &wire).await?;
                self.transfer(uid, folder, &wire).await
            }
            other => other,
        }
    }

    /// One attempt at moving `uid` to `wire` (see [`Self::move_to`]).
    async fn transfer(&mut self, uid: u32, folder: &str, wire: &str) -> Result<(), ImapError> {
        let target = quote(wire);
        if self.supports_move() {
            let command = format!("UID MOVE {uid} {target}");
            return self.run("UID MOVE", &command, Some(folder)).await.map(drop);
        }
        let command = format!("UID COPY {uid} {target}");
        self.run("UID COPY", &command, Some(folder)).await?;
        self.remove(uid).await
    }

    /// `CREATE`s `wire`, tolerating a folder that appeared meanwhile, then subscribes to it.
    async fn create_folder(&mut self, folder: &str, wire: &str) -> Result<(), ImapError> {
        let target = quote(wire);
        match self
            .run("CREATE", &format!("CREATE {target}"), Some(folder))
            .await
        {
            Ok(_) => {}
            // Another client (or a concurrent worker) created it first: that is what we wanted.
            Err(ImapError::No { text, .. })
                if text.to_ascii_uppercase().contains("ALREADYEXISTS") => {}
            Err(ImapError::No { text, .. }) => {
                return Err(ImapError::MailboxMissing {
                    folder: folder.to_owned(),
                    text: format!("it could not be created: {text}"),
                });
            }
            Err(e) => return Err(e),
        }
        // Subscribing is a courtesy to people who open the mailbox in a mail client; a server
        // that refuses it has still created the folder, so its NO is not passed on.
        match self
            .run("SUBSCRIBE", &format!("SUBSCRIBE {target}"), Some(folder))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.ends_session() => Err(e),
            Err(e) => {
                tracing::debug!(folder, error = %e, "IMAP SUBSCRIBE refused");
                Ok(())
            }
        }
    }

    /// Deletes message `uid` for good: flags it `\Deleted` and expunges it (`UID EXPUNGE` with
    /// `UIDPLUS`, else `EXPUNGE`, with the caveat given at [`Self::move_to`]). A UID no longer in
    /// the folder is not an error.
    pub async fn delete(&mut self, uid: u32) -> Result<(), ImapError> {
        check_uid(uid)?;
        self.remove(uid).await
    }

    /// `\Deleted` plus expunge, shared by [`Self::delete`] and the COPY-based move.
    async fn remove(&mut self, uid: u32) -> Result<(), ImapError> {
        let command = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
        self.run("UID STORE", &command, None).await?;
        if self.supports_uidplus() {
            self.run("UID EXPUNGE", &format!("UID EXPUNGE {uid}"), None)
                .await
                .map(drop)
        } else {
            self.run("EXPUNGE", "EXPUNGE", None).await.map(drop)
        }
    }

    /// Waits with `IDLE` (RFC 2177) until the server reports new mail or `wait` has passed.
    ///
    /// Returns [`IdleOutcome::NewMail`] at once when new mail was announced during an earlier
    /// command (the server says so only once). Other news — flag changes, expunges, the server's
    /// `* OK Still here` keep-alives — does not end the wait. Keep `wait` below 29 minutes
    /// (RFC 2177: servers may drop a client idle for 30) and call again to go on waiting.
    ///
    /// Fails with [`ImapError::Unsupported`] when the server does not offer IDLE
    /// ([`Self::supports_idle`]); poll with [`Self::unseen_uids`] then.
    ///
    /// Dropping the future before it completes (e.g. in `tokio::select!` to stop a worker)
    /// closes the session: later calls answer [`ImapError::Closed`], [`Self::logout`] `Ok`.
    pub async fn idle(&mut self, wait: Duration) -> Result<IdleOutcome, ImapError> {
        if !self.supports_idle() {
            return Err(ImapError::Unsupported("IDLE"));
        }
        // async-imap's IDLE handle owns the session until `done()` hands it back; while it is
        // out, any failure leaves `self.session` empty, i.e. closed.
        let mut session = self.session.take().ok_or(ImapError::Closed)?;
        // Both are consumed here, or the next idle would report the same mail again.
        let announced = drain_unsolicited(&mut session);
        if std::mem::take(&mut self.new_mail_seen) || announced {
            self.session = Some(session);
            return Ok(IdleOutcome::NewMail);
        }

        let timeout = self.timeout;
        let mut handle = session.idle();
        within(timeout, "IDLE", async {
            handle.init().await.map_err(|e| from_async_imap("IDLE", e))
        })
        .await?;

        let deadline = Instant::now() + wait;
        let mut outcome = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break IdleOutcome::Timeout;
            }
            // The stop source must live while the future runs: dropping it interrupts the wait
            // at once (async-imap then reports `ManualInterrupt`).
            let (wait_future, _stop) = handle.wait_with_timeout(remaining);
            let response = match tokio::time::timeout_at(deadline, wait_future).await {
                Err(_elapsed) => break IdleOutcome::Timeout,
                Ok(result) => result.map_err(|e| from_async_imap("IDLE", e))?,
            };
            match response {
                IdleResponse::Timeout => {}
                // We never trigger the stop source, so this is async-imap's way of saying the
                // server closed the connection.
                IdleResponse::ManualInterrupt => {
                    return Err(ImapError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the IMAP server closed the connection during IDLE",
                    )));
                }
                IdleResponse::NewData(data) => match idle_news(data.parsed()) {
                    IdleNews::NewMail => break IdleOutcome::NewMail,
                    IdleNews::Other => {}
                    IdleNews::Bye(text) => {
                        return Err(ImapError::Io(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("the IMAP server ended the session during IDLE: {text}"),
                        )));
                    }
                },
            }
        };

        let mut session = within(timeout, "IDLE", async {
            handle.done().await.map_err(|e| from_async_imap("IDLE", e))
        })
        .await?;
        // Mail may arrive between the end of the wait and DONE's completion; it is announced
        // then, and would otherwise be missed until the next delivery.
        if drain_unsolicited(&mut session) {
            outcome = IdleOutcome::NewMail;
        }
        self.session = Some(session);
        Ok(outcome)
    }

    /// Ends the session politely (`LOGOUT`). A session already closed by an earlier error has
    /// nothing to log out of and returns `Ok`.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        if self.session.is_none() {
            return Ok(());
        }
        self.run("LOGOUT", "LOGOUT", None).await.map(drop)
    }

    /// `SELECT`s the folder and records its `UIDVALIDITY`.
    async fn select(&mut self) -> Result<(), ImapError> {
        let command = format!("SELECT {}", quote(&self.folder_wire));
        let folder = self.folder.clone();
        let (responses, code) = self.run_full("SELECT", &command, Some(&folder)).await?;
        // SELECT's `* n EXISTS` is the folder's size, not news.
        self.new_mail_seen = false;
        if code == Some(SelectMode::ReadOnly) {
            return Err(ImapError::No {
                operation: "SELECT",
                text: format!(
                    "[READ-ONLY] the folder {folder:?} can only be read; the intake needs to \
                     flag, move or delete what it takes"
                ),
            });
        }
        let uid_validity = responses.into_iter().find_map(|r| match r {
            Untagged::UidValidity(v) => Some(v),
            _ => None,
        });
        self.uid_validity = uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!(
                "SELECT {folder:?} gave no UIDVALIDITY: the server does not keep UIDs, which \
                 the intake relies on"
            ))
        })?;
        Ok(())
    }

    /// Runs one tagged command and returns its untagged responses, or its failure.
    async fn run(
        &mut self,
        operation: &'static str,
        command: &str,
        folder: Option<&str>,
    ) -> Result<Vec<Untagged>, ImapError> {
        self.run_full(operation, command, folder)
            .await
            .map(|(responses, _)| responses)
    }

    /// [`Self::run`], also returning the `READ-ONLY`/`READ-WRITE` code of the completion.
    /// `folder` names the folder the command is about, so that a `NO` saying it does not exist
    /// becomes [`ImapError::MailboxMissing`]. A timeout or connection failure closes the session.
    async fn run_full(
        &mut self,
        operation: &'static str,
        command: &str,
        folder: Option<&str>,
    ) -> Result<(Vec<Untagged>, Option<SelectMode>), ImapError> {
        if self.in_flight {
            self.session = None;
            self.in_flight = false;
        }
        let timeout = self.timeout;
        let session = self.session.as_mut().ok_or(ImapError::Closed)?;
        let new_mail_seen = &mut self.new_mail_seen;
        self.in_flight = true;
        let result = within(
            timeout,
            operation,
            exchange(session, command, new_mail_seen),
        )
        .await;
        self.in_flight = false;
        let result = match result {
            Ok((responses, Completion::Ok(mode))) => Ok((responses, mode)),
            Ok((_, Completion::No { text, missing })) => match folder {
                Some(folder) if missing => Err(ImapError::MailboxMissing {
                    folder: folder.to_owned(),
                    text,
                }),
                _ => Err(ImapError::No { operation, text }),
            },
            Ok((_, Completion::Bad(text))) => Err(ImapError::Bad { operation, text }),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if e.ends_session() {
                self.session = None;
            }
            tracing::debug!(operation, error = %e, "IMAP command failed");
        }
        result
    }
}

/// How a tagged command ended, when the connection itself is fine.
enum Completion {
    Ok(Option<SelectMode>),
    No { text: String, missing: bool },
    Bad(String),
}

/// The access a `SELECT` granted, from its completion's response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelectMode {
    ReadOnly,
    ReadWrite,
}

/// Sends `command` and reads up to its tagged completion. Untagged responses are returned for
/// the caller to pick from; `EXISTS`/`RECENT` among them set `new_mail_seen`.
async fn exchange<S: ImapTransport>(
    session: &mut Session<Wire<S>>,
    command: &str,
    new_mail_seen: &mut bool,
) -> Result<(Vec<Untagged>, Completion), ImapError> {
    let tag: RequestId = session
        .run_command(command)
        .await
        .map_err(|e| from_async_imap("command", e))?;
    let mut untagged = Vec::new();
    let mut farewell: Option<String> = None;
    loop {
        let Some(response) = session.read_response().await.map_err(ImapError::Io)? else {
            let why = farewell.map_or_else(String::new, |text| format!(": {text}"));
            return Err(ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the IMAP server closed the connection{why}"),
            )));
        };
        match response.parsed() {
            Response::Done {
                tag: done,
                status,
                outcome,
            } if *done == tag => {
                let text = outcome_text(outcome.code.as_ref(), outcome.information.as_deref());
                let completion = match status {
                    Status::Ok => Completion::Ok(match outcome.code {
                        Some(ResponseCode::ReadOnly) => Some(SelectMode::ReadOnly),
                        Some(ResponseCode::ReadWrite) => Some(SelectMode::ReadWrite),
                        _ => None,
                    }),
                    Status::No => Completion::No {
                        missing: is_missing_mailbox(outcome.code.as_ref(), &text),
                        text,
                    },
                    Status::Bad => Completion::Bad(text),
                    Status::PreAuth | Status::Bye => {
                        return Err(ImapError::Protocol(format!(
                            "the command completed with {status:?}: {text}"
                        )));
                    }
                };
                return Ok((untagged, completion));
            }
            Response::Done { .. } => {
                // A completion for a tag we are not waiting for cannot happen while commands
                // run one at a time; ignoring it is safer than guessing what it completes.
                tracing::debug!(?response, "IMAP completion for another tag ignored");
                continue;
            }
            // Sent before the server closes the connection (LOGOUT, shutdown, idle timeout);
            // kept to explain the end of the stream if it comes instead of a completion.
            Response::Data {
                status: Status::Bye,
                outcome,
            } => {
                farewell = Some(outcome_text(
                    outcome.code.as_ref(),
                    outcome.information.as_deref(),
                ));
            }
            other => {
                if announces_new_mail(other) {
                    *new_mail_seen = true;
                }
                match untagged_data(other) {
                    Untagged::Other => {}
                    data => untagged.push(data),
                }
            }
        }
    }
}

/// What the commands here need from untagged responses, copied out of async-imap's buffers
/// (whose type it does not export).
#[derive(Debug, PartialEq, Eq)]
enum Untagged {
    /// `* SEARCH …`.
    Search(Vec<u32>),
    /// `* n FETCH (…)`: the attributes [`ImapMailbox::fetch`] asks for.
    Fetch {
        uid: Option<u32>,
        size: Option<u32>,
        body: Option<Vec<u8>>,
    },
    /// `* OK [UIDVALIDITY n]`, from SELECT.
    UidValidity(u32),
    /// Anything else; not kept.
    Other,
}

fn untagged_data(response: &Response<'_>) -> Untagged {
    match response {
        Response::MailboxData(MailboxDatum::Search(ids)) => Untagged::Search(ids.clone()),
        Response::Fetch(_, attributes) => {
            let (mut uid, mut size, mut body) = (None, None, None);
            for attribute in attributes {
                match attribute {
                    AttributeValue::Uid(u) => uid = Some(*u),
                    AttributeValue::Rfc822Size(s) => size = Some(*s),
                    // `BODY[]` and `BODY[]<0>` (partial) alike; sections such as `BODY[TEXT]`
                    // are never asked for.
                    AttributeValue::BodySection {
                        section: None,
                        data: Some(data),
                        ..
                    } => body = Some(data.to_vec()),
                    _ => {}
                }
            }
            Untagged::Fetch { uid, size, body }
        }
        Response::Data {
            status: Status::Ok,
            outcome,
        } => match outcome.code {
            Some(ResponseCode::UidValidity(v)) => Untagged::UidValidity(v),
            _ => Untagged::Other,
        },
        _ => Untagged::Other,
    }
}

/// Whether an untagged response says messages were added to the selected folder.
fn announces_new_mail(response: &Response<'_>) -> bool {
    matches!(
        response,
        Response::MailboxData(MailboxDatum::Exists(_))
            | Response::MailboxData(MailboxDatum::Recent(1..))
    )
}

/// What an untagged response during IDLE means for the waiter.
#[derive(Debug, PartialEq, Eq)]
enum IdleNews {
    NewMail,
    Bye(String),
    Other,
}

fn idle_news(response: &Response<'_>) -> IdleNews {
    match response {
        r if announces_new_mail(r) => IdleNews::NewMail,
        Response::Data {
            status: Status::Bye,
            outcome,
        } => IdleNews::Bye(outcome_text(
            outcome.code.as_ref(),
            outcome.information.as_deref(),
        )),
        _ => IdleNews::Other,
    }
}

/// Empties async-imap's channel of unsolicited responses (filled by its own methods: LOGIN,
/// CAPABILITY, IDLE's DONE) and says whether new mail was among them. Emptying it also keeps it
/// from filling up: it holds 100, and async-imap drops what does not fit.
fn drain_unsolicited<S: ImapTransport>(session: &mut Session<Wire<S>>) -> bool {
    let mut new_mail = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        match response {
            UnsolicitedResponse::Exists(_) => new_mail = true,
            UnsolicitedResponse::Recent(n) if n > 0 => new_mail = true,
            _ => {}
        }
    }
    new_mail
}

/// Runs `future` within `timeout`, naming `operation` if it does not finish.
async fn within<T>(
    timeout: Duration,
    operation: &'static str,
    future: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or(Err(ImapError::Timeout {
            operation,
            after: timeout,
        }))
}

/// The greeting must be `* OK`; `* BYE` is a refusal (too many connections, maintenance),
/// `* PREAUTH` a setup this client does not log in to.
fn check_greeting(greeting: Option<&Response<'_>>) -> Result<(), ImapError> {
    let Some(greeting) = greeting else {
        return Err(ImapError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the IMAP server closed the connection before its greeting",
        )));
    };
    match greeting {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data { status, outcome } => {
            let text = outcome_text(outcome.code.as_ref(), outcome.information.as_deref());
            Err(ImapError::Protocol(match status {
                Status::Bye => format!("the server refused the connection: {text}"),
                Status::PreAuth => format!(
                    "the server logged the connection in by itself (PREAUTH), which is not \
                     supported: {text}"
                ),
                _ => format!("unexpected greeting {status:?}: {text}"),
            }))
        }
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting: {other:?}"
        ))),
    }
}

/// A failed LOGIN: `NO` is the server refusing the credentials; anything else keeps its kind.
fn login_error(e: async_imap::error::Error) -> ImapError {
    match e {
        async_imap::error::Error::No(text) => ImapError::AuthRefused {
            text: async_imap_text(&text),
        },
        other => from_async_imap("LOGIN", other),
    }
}

/// async-imap's error for `operation` as ours.
fn from_async_imap(operation: &'static str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error;
    match e {
        Error::Io(e) => ImapError::Io(e),
        Error::No(text) => ImapError::No {
            operation,
            text: async_imap_text(&text),
        },
        Error::Bad(text) => ImapError::Bad {
            operation,
            text: async_imap_text(&text),
        },
        Error::ConnectionLost => ImapError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the IMAP server closed the connection",
        )),
        other => ImapError::Protocol(format!("{operation}: {other}")),
    }
}

/// The server's text from an async-imap NO/BAD message. async-imap 0.12 formats them as
/// `code: {code:?}, info: {information:?}` (`code: None, info: Some("[AUTHENTICATIONFAILED]
/// Authentication failed.")`); this turns that back into `[AUTHENTICATIONFAILED]
/// Authentication failed.`. Text in any other shape is returned as it is.
fn async_imap_text(formatted: &str) -> String {
    let Some((code, info)) = formatted
        .strip_prefix("code: ")
        .and_then(|rest| rest.split_once(", info: "))
    else {
        return formatted.to_owned();
    };
    let info = match info {
        "None" => String::new(),
        _ => match info
            .strip_prefix("Some(\"")
            .and_then(|i| i.strip_suffix("\")"))
        {
            Some(quoted) => unescape_debug(quoted),
            None => return formatted.to_owned(),
        },
    };
    // Only simple codes (`Some(TryCreate)`) are worth showing; structured ones are noise here.
    let code = code
        .strip_prefix("Some(")
        .and_then(|c| c.strip_suffix(')'))
        .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
        .map(str::to_ascii_uppercase);
    join_code_and_text(code.as_deref(), &info)
}

/// Undoes `{:?}` escaping of a `str` (quotes, backslashes, control and `\u{…}` escapes).
fn unescape_debug(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let hex: String = chars
                    .by_ref()
                    .skip_while(|&c| c == '{')
                    .take_while(|&c| c != '}')
                    .collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push(char::REPLACEMENT_CHARACTER),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A completion's text with its response code in front, as the server wrote it.
fn outcome_text(code: Option<&ResponseCode<'_>>, information: Option<&str>) -> String {
    join_code_and_text(code.and_then(code_name), information.unwrap_or(""))
}

fn join_code_and_text(code: Option<&str>, text: &str) -> String {
    match (code, text.trim()) {
        (Some(code), "") => format!("[{code}]"),
        (Some(code), text) => format!("[{code}] {text}"),
        (None, "") => "(no text)".to_owned(),
        (None, text) => text.to_owned(),
    }
}

/// The name of a response code imap-proto parsed (codes it does not know, such as
/// `NONEXISTENT` or `AUTHENTICATIONFAILED`, stay in the text).
fn code_name(code: &ResponseCode<'_>) -> Option<&'static str> {
    Some(match code {
        ResponseCode::Alert => "ALERT",
        ResponseCode::Parse => "PARSE",
        ResponseCode::ReadOnly => "READ-ONLY",
        ResponseCode::ReadWrite => "READ-WRITE",
        ResponseCode::TryCreate => "TRYCREATE",
        ResponseCode::UidNotSticky => "UIDNOTSTICKY",
        _ => return None,
    })
}

/// Whether a `NO` says the folder it names does not exist: the `TRYCREATE` code (COPY/MOVE),
/// RFC 5530's `NONEXISTENT`, or — since Dovecot 2.3 answers a SELECT of a missing folder with a
/// bare "NO Mailbox doesn't exist: X" — the usual wordings. Only consulted for commands that
/// name a folder.
fn is_missing_mailbox(code: Option<&ResponseCode<'_>>, text: &str) -> bool {
    if matches!(code, Some(ResponseCode::TryCreate)) {
        return true;
    }
    let text = text.to_ascii_lowercase();
    text.starts_with("[trycreate]")
        || text.starts_with("[nonexistent]")
        || [
            "doesn't exist",
            "does not exist",
            "no such mailbox",
            "unknown mailbox",
        ]
        .iter()
        .any(|phrase| text.contains(phrase))
}

/// Upper-cased capability names, `AUTH=` ones included.
fn capability_names<'a>(caps: impl Iterator<Item = &'a Capability>) -> HashSet<String> {
    caps.map(|c| match c {
        Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
        Capability::Auth(mechanism) => format!("AUTH={}", mechanism.to_ascii_uppercase()),
        Capability::Atom(atom) => atom.to_ascii_uppercase(),
    })
    .collect()
}

/// UID 0 does not exist (RFC 3501 §2.3.1.1) and servers answer it with `BAD`.
fn check_uid(uid: u32) -> Result<(), ImapError> {
    if uid == 0 {
        Err(ImapError::MessageMissing { uid })
    } else {
        Ok(())
    }
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n', '\0'])
}

/// An IMAP quoted string. [`imap_folder_name`] guarantees printable ASCII, so only `\` and `"`
/// need escaping.
fn quote(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Whether two wire names are the same folder: `INBOX` is case-insensitive (RFC 3501 §5.1),
/// every other name is case-sensitive.
fn same_folder(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case("INBOX") {
        b.eq_ignore_ascii_case("INBOX")
    } else {
        a == b
    }
}

/// The longest folder name accepted, in bytes on the wire. Servers differ; this is well within
/// Dovecot's and generous for a configured name.
pub const MAX_FOLDER_NAME_BYTES: usize = 255;

/// Checks a folder name from the configuration and returns the form the server is sent: IMAP
/// mailbox names are 7-bit, so anything else (`Entwürfe`, `已处理`) is written in RFC 3501's
/// modified UTF-7 (`Entw&APw-rfe`), and `&` becomes `&-`.
///
/// Refused: an empty name, control characters, `*` and `%` (LIST wildcards, which servers
/// refuse or misread in names), surrounding spaces (almost certainly a typo in the
/// configuration), and names longer than [`MAX_FOLDER_NAME_BYTES`] once encoded. Hierarchy is
/// left to the server: write `Archive/2024` or `Archive.2024` as its separator requires.
pub fn imap_folder_name(name: &str) -> Result<String, ImapError> {
    let invalid = |reason| {
        Err(ImapError::InvalidFolderName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.chars().any(char::is_control) {
        return invalid("it contains a control character");
    }
    if name.contains(['*', '%']) {
        return invalid("it contains * or %, which IMAP uses as wildcards");
    }
    if name.trim() != name {
        return invalid("it starts or ends with a space");
    }
    let encoded = modified_utf7(name);
    if encoded.len() > MAX_FOLDER_NAME_BYTES {
        return invalid("it is too long");
    }
    Ok(encoded)
}

/// RFC 3501 §5.1.3: printable ASCII stands for itself (`&` as `&-`); runs of other characters
/// become `&` + base64 of their UTF-16BE form, with `,` for `/` and no padding, + `-`.
fn modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf16(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_utf16(&mut pending, &mut out);
    out
}

/// Writes `units` as one modified-base64 run (`&…-`) and empties it.
fn flush_utf16(units: &mut Vec<u16>, out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    if units.is_empty() {
        return;
    }
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // 1 byte → 2 characters, 2 → 3, 3 → 4: no padding in modified base64.
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out.push('-');
    units.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::imap_proto::Response;

    fn parse(line: &str) -> Response<'_> {
        Response::parse(line.as_bytes())
            .expect("test response parses")
            .1
    }

    #[test]
    fn folder_names_are_encoded_in_modified_utf7() {
        let ok = |name: &str| imap_folder_name(name).expect("valid folder name");
        assert_eq!(ok("INBOX"), "INBOX");
        assert_eq!(ok("Archive/2024"), "Archive/2024");
        assert_eq!(ok("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(ok("Entwürfe"), "Entw&APw-rfe");
        // RFC 3501 §5.1.3's own example.
        assert_eq!(
            ok("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        // Outside the BMP: a surrogate pair in one run.
        assert_eq!(ok("📥"), "&2D3c5Q-");
    }

    #[test]
    fn folder_names_that_cannot_be_sent_are_refused() {
        for (name, why) in [
            ("", "empty"),
            ("Arch\r\nive", "control"),
            ("Arch\0ive", "control"),
            ("Archive*", "wildcards"),
            ("50%", "wildcards"),
            (" Archive", "space"),
            ("Archive ", "space"),
        ] {
            match imap_folder_name(name) {
                Err(ImapError::InvalidFolderName { reason, .. }) => {
                    assert!(reason.contains(why), "{name:?}: {reason}");
                }
                other => panic!("{name:?} should be refused, got {other:?}"),
            }
        }
        let long = "a".repeat(MAX_FOLDER_NAME_BYTES + 1);
        assert!(imap_folder_name(&long).is_err());
        assert!(imap_folder_name(&"a".repeat(MAX_FOLDER_NAME_BYTES)).is_ok());
        // Encoding can push a short name over the limit.
        assert!(imap_folder_name(&"ü".repeat(100)).is_err());
    }

    #[test]
    fn quoting_escapes_backslash_and_quote() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn inbox_is_case_insensitive_other_names_are_not() {
        assert!(same_folder("INBOX", "inbox"));
        assert!(same_folder("Inbox", "INBOX"));
        assert!(!same_folder("Archive", "archive"));
        assert!(same_folder("Archive", "Archive"));
        assert!(!same_folder("INBOX", "INBOX/Sub"));
    }

    #[test]
    fn async_imap_messages_are_turned_back_into_server_text() {
        assert_eq!(
            async_imap_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            async_imap_text(r#"code: Some(TryCreate), info: Some("Mailbox doesn't exist: X")"#),
            "[TRYCREATE] Mailbox doesn't exist: X"
        );
        assert_eq!(
            async_imap_text(r#"code: None, info: Some("say \"hi\" \\ \u{e9}")"#),
            r#"say "hi" \ é"#
        );
        assert_eq!(async_imap_text("code: None, info: None"), "(no text)");
        assert_eq!(async_imap_text("something else"), "something else");
    }

    #[test]
    fn missing_folders_are_recognised_by_code_and_by_text() {
        assert!(is_missing_mailbox(
            Some(&ResponseCode::TryCreate),
            "[TRYCREATE] Mailbox doesn't exist: Archive"
        ));
        // Dovecot 2.3's SELECT of a missing folder: no response code at all.
        assert!(is_missing_mailbox(None, "Mailbox doesn't exist: Nope"));
        assert!(is_missing_mailbox(None, "[NONEXISTENT] Unknown folder"));
        assert!(!is_missing_mailbox(None, "[OVERQUOTA] Quota exceeded"));
        assert!(!is_missing_mailbox(None, "Permission denied"));
    }

    #[test]
    fn tagged_completions_keep_their_code_and_text() {
        let done = parse("A1 NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n");
        let Response::Done { outcome, .. } = &done else {
            panic!("not a completion");
        };
        assert_eq!(
            outcome_text(outcome.code.as_ref(), outcome.information.as_deref()),
            "[TRYCREATE] Mailbox doesn't exist: Archive"
        );
        // Codes imap-proto does not know stay in the text.
        let done = parse("A2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
        let Response::Done { outcome, .. } = &done else {
            panic!("not a completion");
        };
        assert_eq!(
            outcome_text(outcome.code.as_ref(), outcome.information.as_deref()),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
    }

    #[test]
    fn idle_wakes_for_new_mail_and_bye_only() {
        assert_eq!(idle_news(&parse("* 4 EXISTS\r\n")), IdleNews::NewMail);
        assert_eq!(idle_news(&parse("* 1 RECENT\r\n")), IdleNews::NewMail);
        assert_eq!(idle_news(&parse("* 0 RECENT\r\n")), IdleNews::Other);
        assert_eq!(idle_news(&parse("* 3 EXPUNGE\r\n")), IdleNews::Other);
        assert_eq!(
            idle_news(&parse("* 2 FETCH (FLAGS (\\Seen))\r\n")),
            IdleNews::Other
        );
        assert_eq!(
            idle_news(&parse("* BYE Disconnected for inactivity.\r\n")),
            IdleNews::Bye("Disconnected for inactivity.".to_owned())
        );
    }

    #[test]
    fn greetings_other_than_ok_are_refused() {
        assert!(
            check_greeting(Some(&parse(
                "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"
            )))
            .is_ok()
        );
        assert!(matches!(
            check_greeting(Some(&parse("* BYE Too many connections\r\n"))),
            Err(ImapError::Protocol(text)) if text.contains("Too many connections")
        ));
        assert!(matches!(
            check_greeting(Some(&parse("* PREAUTH ready\r\n"))),
            Err(ImapError::Protocol(_))
        ));
        assert!(matches!(check_greeting(None), Err(ImapError::Io(_))));
    }

    #[test]
    fn async_imap_errors_map_to_ours() {
        use async_imap::error::Error;
        assert!(matches!(
            login_error(Error::No(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
                    .to_owned()
            )),
            ImapError::AuthRefused { text } if text == "[AUTHENTICATIONFAILED] Authentication failed."
        ));
        assert!(matches!(
            login_error(Error::Bad(
                "code: None, info: Some(\"Error in IMAP command\")".to_owned()
            )),
            ImapError::Bad {
                operation: "LOGIN",
                ..
            }
        ));
        assert!(matches!(
            from_async_imap("IDLE", Error::ConnectionLost),
            ImapError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
        assert!(matches!(
            from_async_imap("IDLE", Error::Io(io::Error::other("reset"))),
            ImapError::Io(_)
        ));
    }

    #[test]
    fn transient_errors_are_told_apart_from_configuration_errors() {
        let transient = [
            ImapError::Connect {
                addr: "x:143".into(),
                source: io::Error::other("refused"),
            },
            ImapError::Io(io::Error::other("reset")),
            ImapError::Timeout {
                operation: "SELECT",
                after: Duration::from_secs(1),
            },
            ImapError::Closed,
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e}");
            assert!(e.ends_session(), "{e}");
        }
        let permanent = [
            ImapError::AuthRefused { text: "no".into() },
            ImapError::MailboxMissing {
                folder: "X".into(),
                text: "gone".into(),
            },
            ImapError::Unsupported("IDLE"),
        ];
        for e in &permanent {
            assert!(!e.is_transient(), "{e}");
            assert!(!e.ends_session(), "{e}");
        }
        // A NO keeps the session usable: the next command may well succeed.
        let no = ImapError::No {
            operation: "UID STORE",
            text: "[SERVERBUG] oops".into(),
        };
        assert!(!no.ends_session());
    }

    #[test]
    fn capabilities_are_compared_without_case() {
        let caps = [
            Capability::Imap4rev1,
            Capability::Atom("Idle".into()),
            Capability::Atom("MOVE".into()),
            Capability::Auth("plain".into()),
        ];
        let names = capability_names(caps.iter());
        assert!(names.contains("IDLE"));
        assert!(names.contains("MOVE"));
        assert!(names.contains("AUTH=PLAIN"));
        assert!(names.contains("IMAP4REV1"));
        assert!(!names.contains("UIDPLUS"));
    }

    #[test]
    fn uid_zero_is_never_sent() {
        assert!(matches!(
            check_uid(0),
            Err(ImapError::MessageMissing { uid: 0 })
        ));
        assert!(check_uid(1).is_ok());
    }

    /// The intake runs mailboxes on spawned tasks: every operation's future must be `Send`.
    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        #[allow(dead_code, clippy::unwrap_used)]
        async fn all(mut m: ImapMailbox) {
            m.unseen_uids().await.unwrap();
            m.fetch(1, 10).await.unwrap();
            m.mark_seen(1).await.unwrap();
            m.move_to(1, "A").await.unwrap();
            m.delete(1).await.unwrap();
            m.idle(Duration::from_secs(1)).await.unwrap();
            m.logout().await.unwrap();
        }
        let connect = ImapMailbox::connect("127.0.0.1:1", "u", "p", "INBOX", Duration::ZERO);
        assert_send(&connect);
        // Never called: it only has to compile.
        #[allow(dead_code)]
        fn operations(m: ImapMailbox) {
            assert_send(&all(m));
        }
    }

    /// A scripted IMAP server on the other end of an in-memory stream: for each step it reads
    /// one command line (when `expect` is not empty), checks it contains `expect`, and answers
    /// `reply` with `{tag}` replaced by the command's tag. After the last step it keeps the
    /// stream open without answering.
    fn scripted(steps: Vec<(&'static str, String)>) -> tokio::io::DuplexStream {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server);
            let mut lines = tokio::io::BufReader::new(read);
            let mut tag = String::new();
            for (expect, reply) in steps {
                if !expect.is_empty() {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    assert!(line.contains(expect), "expected {expect:?}, got {line:?}");
                    // `DONE` (ending IDLE) has no tag: IDLE's completion carries IDLE's.
                    if line.trim_end() != "DONE" {
                        tag = line.split(' ').next().unwrap_or_default().to_owned();
                    }
                }
                let reply = reply.replace("{tag}", &tag);
                if write.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            // Silent from here on, but reading, so that writes do not block.
            let mut sink = String::new();
            while lines.read_line(&mut sink).await.unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        client
    }

    const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 LOGIN] Fake ready.\r\n";

    /// Greeting, LOGIN (announcing `caps`) and SELECT of INBOX, then `more`.
    fn logged_in(caps: &str, more: Vec<(&'static str, String)>) -> tokio::io::DuplexStream {
        let mut steps = vec![
            ("", GREETING.to_owned()),
            (
                "LOGIN \"u\" \"p\"",
                format!("{{tag}} OK [CAPABILITY IMAP4rev1 {caps}] Logged in\r\n"),
            ),
            (
                "SELECT \"INBOX\"",
                "* 2 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
                 * OK [UIDNEXT 9] Predicted next UID\r\n{tag} OK [READ-WRITE] Select completed.\r\n"
                    .to_owned(),
            ),
        ];
        steps.extend(more);
        scripted(steps)
    }

    const SHORT: Duration = Duration::from_millis(300);

    async fn open(stream: tokio::io::DuplexStream) -> ImapMailbox<tokio::io::DuplexStream> {
        ImapMailbox::from_stream(stream, "u", "p", "INBOX", SHORT)
            .await
            .expect("scripted login")
    }

    #[tokio::test]
    async fn scripted_session_fetches_and_moves_without_move_or_uidplus() {
        let body = "Subject: hi\r\n\r\nhello\r\n";
        let stream = logged_in(
            "IDLE",
            vec![
                (
                    "NOOP",
                    "* 3 EXISTS\r\n{tag} OK NOOP completed.\r\n".to_owned(),
                ),
                (
                    "UID SEARCH UNSEEN UNDELETED",
                    "* SEARCH 8 5\r\n{tag} OK Search completed.\r\n".to_owned(),
                ),
                (
                    "UID FETCH 5 (UID RFC822.SIZE BODY.PEEK[]<0.1025>)",
                    format!(
                        "* 1 FETCH (FLAGS (\\Seen))\r\n\
                         * 2 FETCH (UID 5 FLAGS (\\Flagged))\r\n\
                         * 2 FETCH (UID 5 RFC822.SIZE {len} BODY[]<0> {{{len}}}\r\n{body})\r\n\
                         {{tag}} OK Fetch completed.\r\n",
                        len = body.len()
                    ),
                ),
                (
                    "UID FETCH 5 (UID RFC822.SIZE BODY.PEEK[]<0.5>)",
                    format!(
                        "* 2 FETCH (UID 5 RFC822.SIZE {len} BODY[]<0> {{5}}\r\nSubje)\r\n\
                         {{tag}} OK Fetch completed.\r\n",
                        len = body.len()
                    ),
                ),
                ("UID FETCH 7 ", "{tag} OK Fetch completed.\r\n".to_owned()),
                // No MOVE: COPY, which says the folder is missing; CREATE; SUBSCRIBE (refused,
                // which is fine); COPY again; \Deleted; no UIDPLUS: plain EXPUNGE.
                (
                    "UID COPY 5 \"Entw&APw-rfe\"",
                    "{tag} NO [TRYCREATE] Mailbox doesn't exist: Entw&APw-rfe\r\n".to_owned(),
                ),
                (
                    "CREATE \"Entw&APw-rfe\"",
                    "{tag} OK Create completed.\r\n".to_owned(),
                ),
                (
                    "SUBSCRIBE \"Entw&APw-rfe\"",
                    "{tag} NO Not today.\r\n".to_owned(),
                ),
                (
                    "UID COPY 5 \"Entw&APw-rfe\"",
                    "{tag} OK Copy completed.\r\n".to_owned(),
                ),
                (
                    "UID STORE 5 +FLAGS.SILENT (\\Deleted)",
                    "{tag} OK Store completed.\r\n".to_owned(),
                ),
                (
                    "EXPUNGE",
                    "* 2 EXPUNGE\r\n{tag} OK Expunge completed.\r\n".to_owned(),
                ),
                ("NOOP", "{tag} OK NOOP completed.\r\n".to_owned()),
                (
                    "UID SEARCH",
                    "{tag} BAD Error in IMAP command UID SEARCH.\r\n".to_owned(),
                ),
                (
                    "LOGOUT",
                    "* BYE Logging out\r\n{tag} OK Logout completed.\r\n".to_owned(),
                ),
            ],
        );
        let mut mailbox = open(stream).await;
        assert_eq!(mailbox.uid_validity(), 1_700_000_000);
        assert!(mailbox.supports_idle());
        assert!(!mailbox.supports_move() && !mailbox.supports_uidplus());

        assert_eq!(mailbox.unseen_uids().await.expect("search"), vec![5, 8]);
        // Unsolicited flag changes (for message 1, and for UID 5 itself) do not get in the way.
        assert_eq!(
            mailbox.fetch(5, 1024).await.expect("fetch"),
            body.as_bytes()
        );
        assert!(matches!(
            mailbox.fetch(5, 4).await,
            Err(ImapError::TooLarge {
                uid: 5,
                size: Some(_),
                limit: 4
            })
        ));
        assert!(matches!(
            mailbox.fetch(7, 1024).await,
            Err(ImapError::MessageMissing { uid: 7 })
        ));
        mailbox.move_to(5, "Entwürfe").await.expect("move");
        // A BAD is reported with its text, and the session goes on.
        match mailbox.unseen_uids().await {
            Err(ImapError::Bad { operation, text }) => {
                assert_eq!(operation, "UID SEARCH");
                assert!(text.contains("Error in IMAP command"), "{text}");
            }
            other => panic!("expected BAD, got {other:?}"),
        }
        mailbox.logout().await.expect("logout");
    }

    #[tokio::test]
    async fn scripted_refusals_are_typed() {
        let refused = scripted(vec![
            ("", GREETING.to_owned()),
            (
                "LOGIN",
                "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".to_owned(),
            ),
        ]);
        match ImapMailbox::from_stream(refused, "u", "p", "INBOX", SHORT).await {
            Err(ImapError::AuthRefused { text }) => {
                assert_eq!(text, "[AUTHENTICATIONFAILED] Authentication failed.");
            }
            other => panic!("expected AuthRefused, got {other:?}"),
        }

        let missing = scripted(vec![
            ("", GREETING.to_owned()),
            (
                "LOGIN",
                "{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n".to_owned(),
            ),
            (
                "SELECT \"Support\"",
                "{tag} NO Mailbox doesn't exist: Support (0.001 + 0.000 secs).\r\n".to_owned(),
            ),
        ]);
        match ImapMailbox::from_stream(missing, "u", "p", "Support", SHORT).await {
            Err(ImapError::MailboxMissing { folder, text }) => {
                assert_eq!(folder, "Support");
                assert!(text.starts_with("Mailbox doesn't exist"), "{text}");
            }
            other => panic!("expected MailboxMissing, got {other:?}"),
        }

        let busy = scripted(vec![("", "* BYE Too many connections\r\n".to_owned())]);
        assert!(matches!(
            ImapMailbox::from_stream(busy, "u", "p", "INBOX", SHORT).await,
            Err(ImapError::Protocol(text)) if text.contains("Too many connections")
        ));

        let read_only = scripted(vec![
            ("", GREETING.to_owned()),
            ("LOGIN", "{tag} OK Logged in\r\n".to_owned()),
            // No capabilities in the LOGIN completion: asked for.
            (
                "CAPABILITY",
                "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK Capability completed.\r\n".to_owned(),
            ),
            (
                "SELECT",
                "* OK [UIDVALIDITY 7] x\r\n{tag} OK [READ-ONLY] Examined.\r\n".to_owned(),
            ),
        ]);
        assert!(matches!(
            ImapMailbox::from_stream(read_only, "u", "p", "INBOX", SHORT).await,
            Err(ImapError::No { operation: "SELECT", text }) if text.contains("READ-ONLY")
        ));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_closes_the_session() {
        let silent = scripted(vec![]);
        assert!(matches!(
            ImapMailbox::from_stream(silent, "u", "p", "INBOX", SHORT).await,
            Err(ImapError::Timeout {
                operation: "greeting",
                ..
            })
        ));

        // Answers up to SELECT, then nothing.
        let mut mailbox = open(logged_in("IDLE", vec![])).await;
        let started = Instant::now();
        assert!(matches!(
            mailbox.unseen_uids().await,
            Err(ImapError::Timeout {
                operation: "NOOP",
                ..
            })
        ));
        assert!(started.elapsed() < SHORT * 3);
        // A late answer could be taken for the next command's: the session is closed.
        assert!(matches!(mailbox.mark_seen(1).await, Err(ImapError::Closed)));
        assert!(matches!(
            mailbox.idle(Duration::from_secs(1)).await,
            Err(ImapError::Closed)
        ));
        mailbox.logout().await.expect("nothing to log out of");
    }

    #[tokio::test]
    async fn idle_waits_through_other_news_and_catches_mail_announced_at_done() {
        let stream = logged_in(
            "IDLE",
            vec![
                // Keep-alive, a flag change and an expunge do not end the wait; EXISTS does.
                (
                    "IDLE",
                    "+ idling\r\n* OK Still here\r\n* 1 FETCH (FLAGS (\\Seen))\r\n\
                     * 1 EXPUNGE\r\n* 2 EXISTS\r\n"
                        .to_owned(),
                ),
                (
                    "DONE",
                    "* 3 EXISTS\r\n{tag} OK Idle completed.\r\n".to_owned(),
                ),
                // Nothing: the wait runs out.
                ("IDLE", "+ idling\r\n".to_owned()),
                ("DONE", "{tag} OK Idle completed.\r\n".to_owned()),
                // Nothing during the wait, but mail announced with DONE's completion.
                ("IDLE", "+ idling\r\n".to_owned()),
                (
                    "DONE",
                    "* 4 EXISTS\r\n{tag} OK Idle completed.\r\n".to_owned(),
                ),
                // Mail announced alongside an ordinary command ends the next idle at once,
                // without sending IDLE (the script would not answer it).
                (
                    "UID STORE 1 +FLAGS.SILENT (\\Seen)",
                    "* 5 EXISTS\r\n{tag} OK Store completed.\r\n".to_owned(),
                ),
            ],
        );
        let mut mailbox = open(stream).await;
        let wait = Duration::from_millis(150);
        assert_eq!(
            mailbox.idle(Duration::from_secs(5)).await.expect("idle"),
            IdleOutcome::NewMail
        );
        let started = Instant::now();
        assert_eq!(
            mailbox.idle(wait).await.expect("idle"),
            IdleOutcome::Timeout
        );
        assert!(started.elapsed() >= wait);
        assert_eq!(
            mailbox.idle(wait).await.expect("idle"),
            IdleOutcome::NewMail
        );
        mailbox.mark_seen(1).await.expect("store");
        assert_eq!(
            mailbox.idle(Duration::from_secs(5)).await.expect("idle"),
            IdleOutcome::NewMail
        );
    }

    #[tokio::test]
    async fn an_abandoned_command_closes_the_session() {
        // The script never answers the NOOP; the caller gives up first.
        let mut mailbox = open(logged_in("IDLE", vec![])).await;
        let abandoned =
            tokio::time::timeout(Duration::from_millis(50), mailbox.unseen_uids()).await;
        assert!(abandoned.is_err(), "the caller's own timeout fired");
        // The NOOP's answer could still arrive and be read as the next command's.
        assert!(matches!(mailbox.mark_seen(1).await, Err(ImapError::Closed)));
    }

    #[tokio::test]
    async fn idle_without_the_capability_is_refused() {
        let mut mailbox = open(logged_in("MOVE", vec![])).await;
        assert!(!mailbox.supports_idle());
        assert!(matches!(
            mailbox.idle(Duration::from_secs(1)).await,
            Err(ImapError::Unsupported("IDLE"))
        ));
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_a_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        drop(listener);
        match ImapMailbox::connect(&addr, "u", "p", "INBOX", SHORT).await {
            Err(e @ ImapError::Connect { .. }) => assert!(e.is_transient()),
            other => panic!("expected Connect, got {other:?}"),
        }
    }
}
