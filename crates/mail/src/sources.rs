//! The IMAP and POP3 mailboxes behind [`MailSource`], and the connector that opens them.

use crate::fetch::{Connector, MailSource, SourceError, Waiting};
use crate::imap::{ImapError, ImapMailbox};
use crate::pop3::{Pop3, Pop3Error};
use helpline_core::mailbox::{AfterFetch, MailProtocol, Mailbox};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long one step with a mail server may take before the round gives up.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens real mailboxes.
pub fn connector() -> Box<Connector> {
    Box::new(|mailbox: &Mailbox| {
        let address = mailbox.address.clone();
        Box::pin(async move {
            match address.protocol {
                MailProtocol::Imap => {
                    let session = ImapMailbox::connect(
                        &address.host_port(),
                        &address.user,
                        &address.password,
                        &address.folder,
                        STEP_TIMEOUT,
                    )
                    .await
                    .map_err(imap_error)?;
                    Ok(Box::new(ImapSource(Some(session))) as Box<dyn MailSource>)
                }
                MailProtocol::Pop3 => {
                    let mut session = Pop3::connect(&address.host_port(), STEP_TIMEOUT)
                        .await
                        .map_err(pop3_error)?;
                    session
                        .login(&address.user, &address.password)
                        .await
                        .map_err(pop3_error)?;
                    Ok(Box::new(Pop3Source(Some(session))) as Box<dyn MailSource>)
                }
                MailProtocol::Imaps | MailProtocol::Pop3s => Err(SourceError(format!(
                    "{}:// (TLS) mailboxes cannot be fetched yet; use {}:// on a trusted network",
                    address.protocol.as_str(),
                    if address.protocol.is_imap() {
                        "imap"
                    } else {
                        "pop3"
                    }
                ))),
            }
        })
    })
}

fn imap_error(error: ImapError) -> SourceError {
    SourceError(error.to_string())
}

fn pop3_error(error: Pop3Error) -> SourceError {
    SourceError(error.to_string())
}

/// An IMAP folder: unseen messages by UID; the unique id is `UIDVALIDITY:UID`, so a folder
/// rebuilt by the server (new UIDVALIDITY) is taken in afresh rather than mismatched.
pub struct ImapSource(Option<ImapMailbox<TcpStream>>);

impl ImapSource {
    fn session(&mut self) -> Result<&mut ImapMailbox<TcpStream>, SourceError> {
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

    async fn waiting(&mut self) -> Result<Vec<Waiting>, SourceError> {
        let session = self.session()?;
        let validity = session.uid_validity();
        let uids = session.unseen_uids().await.map_err(imap_error)?;
        Ok(uids
            .into_iter()
            .map(|uid| Waiting {
                handle: uid,
                unique_id: format!("{validity}:{uid}"),
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
pub struct Pop3Source(Option<Pop3<TcpStream>>);

impl Pop3Source {
    fn session(&mut self) -> Result<&mut Pop3<TcpStream>, SourceError> {
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

    async fn waiting(&mut self) -> Result<Vec<Waiting>, SourceError> {
        let ids = self.session()?.uidl().await.map_err(pop3_error)?;
        Ok(ids
            .into_iter()
            .map(|(number, unique_id)| Waiting {
                handle: number,
                unique_id,
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
