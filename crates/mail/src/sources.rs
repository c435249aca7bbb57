//! The IMAP and POP3 mailboxes behind [`MailSource`], and the connector that opens them:
//! plain TCP for `imap://` and `pop3://`, TLS from the first byte for `imaps://` and `pop3s://`
//! (see [`crate::tls`]).

use crate::fetch::{Connector, MailSource, SourceError, Waiting};
use crate::imap::{ImapError, ImapMailbox};
use crate::pop3::{Pop3, Pop3Error};
use crate::tls::{self, MailStream, OpenError, TlsSettings};
use helpline_core::mailbox::{AfterFetch, Mailbox, MailboxAddress};
use std::time::Duration;

/// How long one step with a mail server may take before the round gives up.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens real mailboxes; TLS ones trust what `tls` says.
pub fn connector(tls: TlsSettings) -> Box<Connector> {
    Box::new(move |mailbox: &Mailbox| {
        let address = mailbox.address.clone();
        let tls = tls.clone();
        Box::pin(async move {
            if address.protocol.is_imap() {
                let session = connect_imap(&address, &tls).await.map_err(imap_error)?;
                Ok(Box::new(ImapSource(Some(session))) as Box<dyn MailSource>)
            } else {
                let session = connect_pop3(&address, &tls).await.map_err(pop3_error)?;
                Ok(Box::new(Pop3Source(Some(session))) as Box<dyn MailSource>)
            }
        })
    })
}

/// Opens an IMAP session on `address` (`imap://` or `imaps://`) with its folder selected: the
/// one way the intake connects to IMAP, for fetch rounds and for IDLE alike.
pub async fn connect_imap(
    address: &MailboxAddress,
    tls: &TlsSettings,
) -> Result<ImapMailbox<MailStream>, ImapError> {
    let addr = address.host_port();
    let stream = tls::open(
        &addr,
        &address.host,
        address.protocol.is_tls().then_some(tls),
        STEP_TIMEOUT,
    )
    .await
    .map_err(|error| match error {
        OpenError::Connect(source) => ImapError::Connect {
            addr: addr.clone(),
            source,
        },
        OpenError::Tls(source) => ImapError::Tls {
            addr: addr.clone(),
            source,
        },
    })?;
    ImapMailbox::from_stream(
        stream,
        &address.user,
        &address.password,
        &address.folder,
        STEP_TIMEOUT,
    )
    .await
}

/// Opens a logged-in POP3 session on `address` (`pop3://` or `pop3s://`).
pub async fn connect_pop3(
    address: &MailboxAddress,
    tls: &TlsSettings,
) -> Result<Pop3<MailStream>, Pop3Error> {
    let addr = address.host_port();
    let stream = tls::open(
        &addr,
        &address.host,
        address.protocol.is_tls().then_some(tls),
        STEP_TIMEOUT,
    )
    .await
    .map_err(|error| match error {
        OpenError::Connect(source) => Pop3Error::Connect {
            addr: addr.clone(),
            source,
        },
        OpenError::Tls(source) => Pop3Error::Tls {
            addr: addr.clone(),
            source,
        },
    })?;
    let mut session = Pop3::start(stream, STEP_TIMEOUT).await?;
    session.login(&address.user, &address.password).await?;
    Ok(session)
}

fn imap_error(error: ImapError) -> SourceError {
    SourceError(error.to_string())
}

fn pop3_error(error: Pop3Error) -> SourceError {
    SourceError(error.to_string())
}

/// An IMAP folder: unseen messages by UID; the unique id is `UIDVALIDITY:UID`, so a folder
/// rebuilt by the server (new UIDVALIDITY) is taken in afresh rather than mismatched.
pub struct ImapSource(Option<ImapMailbox<MailStream>>);

impl ImapSource {
    fn session(&mut self) -> Result<&mut ImapMailbox<MailStream>, SourceError> {
        self.0
            .as_mut()
            .ok_or_else(|| SourceError("the IMAP session is closed".into()))
    }
}

#[async_trait::async_trait]
impl MailSource for ImapSource {
    fn protocol(&self) -> &'static str {
        "imap"
    }

    async fn waiting(&mut self, position: Option<&str>) -> Result<Vec<Waiting>, SourceError> {
        let session = self.session()?;
        let validity = session.uid_validity();
        // After a recorded position of this folder: everything newer, read or not. Without
        // one (a new mailbox), or after the server renumbered the folder: the unseen messages.
        let after = position
            .and_then(|p| p.split_once(':'))
            .and_then(|(v, uid)| Some((v.parse::<u32>().ok()?, uid.parse::<u32>().ok()?)))
            .filter(|(v, _)| *v == validity)
            .map(|(_, uid)| uid);
        let uids = match after {
            Some(last) => session.uids_from(last.saturating_add(1)).await,
            None => session.unseen_uids().await,
        }
        .map_err(imap_error)?;
        Ok(uids
            .into_iter()
            .map(|uid| Waiting {
                handle: uid,
                unique_id: format!("{validity}:{uid}"),
                position: Some(format!("{validity}:{uid}")),
            })
            .collect())
    }

    async fn fetch(
        &mut self,
        message: &Waiting,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        match self.session()?.fetch(message.handle, max_bytes).await {
            Ok(raw) => Ok(Some(raw)),
            Err(ImapError::TooLarge { .. }) => Ok(None),
            Err(error) => Err(imap_error(error)),
        }
    }

    async fn done(&mut self, message: &Waiting, after: &AfterFetch) -> Result<(), SourceError> {
        let session = self.session()?;
        match after {
            AfterFetch::Seen => session.mark_seen(message.handle).await,
            AfterFetch::Archive(folder) => {
                // Seen first, so a copy left behind by a failed move is not fetched again.
                session
                    .mark_seen(message.handle)
                    .await
                    .map_err(imap_error)?;
                session.move_to(message.handle, folder).await
            }
            AfterFetch::Delete => session.delete(message.handle).await,
        }
        .map_err(imap_error)
    }

    async fn close(mut self: Box<Self>) -> Result<(), SourceError> {
        match self.0.take() {
            Some(session) => session.logout().await.map_err(imap_error),
            None => Ok(()),
        }
    }
}

/// A POP3 maildrop: every message by UIDL; deletions take effect when the session ends.
pub struct Pop3Source(Option<Pop3<MailStream>>);

impl Pop3Source {
    fn session(&mut self) -> Result<&mut Pop3<MailStream>, SourceError> {
        self.0
            .as_mut()
            .ok_or_else(|| SourceError("the POP3 session is closed".into()))
    }
}

#[async_trait::async_trait]
impl MailSource for Pop3Source {
    fn protocol(&self) -> &'static str {
        "pop3"
    }

    async fn waiting(&mut self, _position: Option<&str>) -> Result<Vec<Waiting>, SourceError> {
        // A maildrop only holds what has not been taken in (taken mail is deleted).
        let ids = self.session()?.uidl().await.map_err(pop3_error)?;
        Ok(ids
            .into_iter()
            .map(|(number, unique_id)| Waiting {
                handle: number,
                unique_id,
                position: None,
            })
            .collect())
    }

    async fn fetch(
        &mut self,
        message: &Waiting,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        match self.session()?.retr(message.handle, max_bytes).await {
            Ok(raw) => Ok(Some(raw)),
            Err(Pop3Error::TooLarge { .. }) => Ok(None),
            Err(error) => Err(pop3_error(error)),
        }
    }

    async fn done(&mut self, message: &Waiting, _after: &AfterFetch) -> Result<(), SourceError> {
        // POP3 has no flags or folders: a message taken in is deleted (mailboxes are refused
        // any other setting when added).
        self.session()?
            .dele(message.handle)
            .await
            .map_err(pop3_error)
    }

    async fn close(mut self: Box<Self>) -> Result<(), SourceError> {
        match self.0.take() {
            Some(session) => session.quit().await.map_err(pop3_error),
            None => Ok(()),
        }
    }
}
