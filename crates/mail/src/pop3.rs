//! A small POP3 client: the subset of RFC 1939 a help desk needs to collect mail from a
//! mailbox — greeting, `USER`/`PASS`, `STAT`, `UIDL`, `RETR`, `DELE`, `NOOP`, `QUIT`.
//!
//! The client is generic over its stream: [`Pop3::connect`] gives plain TCP, and `pop3s://`
//! mailboxes run it over TLS ([`Pop3::start`] on a [`crate::tls::MailStream`]; `STLS` is not
//! supported). Reading tolerates bare-LF line
//! ends as well as CRLF. Every read and write is bounded by the timeout given at connect time
//! (a server that stops sending for that long fails the command), and `RETR` by a size cap.
//!
//! Deletions take effect only when [`Pop3::quit`] succeeds: a connection dropped without a
//! successful `QUIT` deletes nothing (RFC 1939 §6), so a crash between fetching and storing a
//! message cannot lose it.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest status or `UIDL` line accepted (RFC 1939 allows 512 octets).
const MAX_RESPONSE_LINE: usize = 16 * 1024;

/// Longest server text kept in an error.
const MAX_ERROR_TEXT: usize = 512;

/// Why a POP3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// The TCP connection could not be made.
    #[error("cannot connect to POP3 server {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake of a `pop3s://` connection failed (certificate not trusted or not
    /// for this host, no TLS on that port, network trouble during the handshake).
    #[error("TLS with the POP3 server {addr} failed: {source}")]
    Tls {
        /// The address as given.
        addr: String,
        /// What went wrong; of kind `InvalidData` when it was the certificate or TLS itself.
        #[source]
        source: io::Error,
    },
    /// Reading from or writing to the server failed.
    #[error("POP3 connection failed: {0}")]
    Io(#[from] io::Error),
    /// The server sent nothing (or accepted nothing) for longer than the timeout.
    #[error("POP3 server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection, possibly in the middle of a response.
    #[error("POP3 server closed the connection")]
    Closed,
    /// The server refused the user name or password (`-ERR` to `USER` or `PASS`, without an
    /// RFC 3206 code that says the failure is temporary or about something else).
    #[error("POP3 server refused the login: {0}")]
    AuthRefused(String),
    /// The server answered `-ERR` to a command; `text` is what it said.
    #[error("POP3 server answered -ERR to {command}: {text}")]
    Server {
        /// The command, without its arguments when they are secret (`PASS`).
        command: String,
        /// The server's text after `-ERR`.
        text: String,
    },
    /// The server's answer is not POP3 as we understand it.
    #[error("POP3 protocol error: {0}")]
    Protocol(String),
    /// A message is larger than the cap given to [`Pop3::retr`]. It was read to its end and
    /// dropped, so the connection is still usable (e.g. to leave the message alone).
    #[error("POP3 message {number} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The message number.
        number: u32,
        /// The cap.
        limit: usize,
    },
    /// An argument would break the command line (it contains CR, LF or is empty).
    #[error("invalid POP3 argument: {0}")]
    InvalidArgument(&'static str),
    /// An earlier IO error, timeout or protocol error left the session in an unknown state.
    #[error("POP3 session is unusable after an earlier error")]
    Unusable,
}

impl Pop3Error {
    /// Whether trying again later may succeed (network trouble, a server-side temporary
    /// failure or a mailbox locked by another session) as opposed to a problem that needs
    /// someone to act (wrong password, a server that does not speak POP3).
    pub fn is_transient(&self) -> bool {
        match self {
            Pop3Error::Tls { source, .. } => source.kind() != io::ErrorKind::InvalidData,
            Pop3Error::Connect { .. }
            | Pop3Error::Io(_)
            | Pop3Error::Timeout(_)
            | Pop3Error::Closed
            | Pop3Error::Unusable => true,
            Pop3Error::Server { text, .. } => {
                let code = response_code(text).unwrap_or_default();
                code.eq_ignore_ascii_case("IN-USE") || code.eq_ignore_ascii_case("SYS/TEMP")
            }
            Pop3Error::AuthRefused(_)
            | Pop3Error::Protocol(_)
            | Pop3Error::TooLarge { .. }
            | Pop3Error::InvalidArgument(_) => false,
        }
    }
}

/// A POP3 session over `S` (plain TCP from [`Pop3::connect`]).
#[derive(Debug)]
pub struct Pop3<S> {
    stream: BufReader<S>,
    timeout: Duration,
    greeting: String,
    /// Set by any error that may leave a response half read.
    broken: bool,
}

impl Pop3<TcpStream> {
    /// Connects to `addr` (`host:port`) and reads the greeting. `timeout` bounds the connection
    /// and, later, every wait for the server.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self, Pop3Error> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(Pop3Error::Connect {
                    addr: addr.to_owned(),
                    source,
                });
            }
            Err(_) => {
                return Err(Pop3Error::Connect {
                    addr: addr.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    ),
                });
            }
        };
        // Commands are small and answered one at a time: send them at once.
        stream.set_nodelay(true).ok();
        Self::start(stream, timeout).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3<S> {
    /// Starts a session on an already connected stream (TLS, a test double): reads the
    /// greeting, which must be `+OK`.
    pub async fn start(stream: S, timeout: Duration) -> Result<Self, Pop3Error> {
        let mut session = Pop3 {
            stream: BufReader::new(stream),
            timeout,
            greeting: String::new(),
            broken: false,
        };
        session.greeting = session.read_status("greeting").await?;
        Ok(session)
    }

    /// The text of the server's `+OK` greeting.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Logs in with `USER` and `PASS`. A refusal is [`Pop3Error::AuthRefused`], unless the
    /// server marks it as something else with an RFC 3206 code (`[IN-USE]`, `[SYS/TEMP]`…),
    /// which is [`Pop3Error::Server`].
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        check_argument(user, "user name")?;
        check_argument(password, "password")?;
        for (line, command) in [
            (format!("USER {user}"), "USER"),
            (format!("PASS {password}"), "PASS"),
        ] {
            match self.command(&line, command).await {
                Ok(_) => {}
                Err(Pop3Error::Server { text, .. }) if is_auth_failure(&text) => {
                    return Err(Pop3Error::AuthRefused(text));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `STAT`: the number of messages and their total size in octets.
    pub async fn stat(&mut self) -> Result<(u32, u64), Pop3Error> {
        let text = self.command("STAT", "STAT").await?;
        let mut words = text.split_ascii_whitespace();
        match (
            words.next().and_then(|n| n.parse().ok()),
            words.next().and_then(|n| n.parse().ok()),
        ) {
            (Some(count), Some(size)) => Ok((count, size)),
            _ => Err(self.protocol(format!("malformed STAT answer: {text}"))),
        }
    }

    /// `UIDL`: every message's number and unique id, in the server's order.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL", "UIDL").await?;
        let mut ids = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.read_line(&mut line, MAX_RESPONSE_LINE).await? {
                return Err(self.protocol("UIDL line too long".to_owned()));
            }
            if is_terminator(&line) {
                return Ok(ids);
            }
            let text = String::from_utf8_lossy(unstuff(trim_eol(&line))).into_owned();
            match parse_uidl_entry(&text) {
                Some(entry) => ids.push(entry),
                None => return Err(self.protocol(format!("malformed UIDL line: {text}"))),
            }
        }
    }

    /// `UIDL n`: the unique id of one message.
    pub async fn uidl_one(&mut self, number: u32) -> Result<String, Pop3Error> {
        let text = self
            .command(&format!("UIDL {number}"), &format!("UIDL {number}"))
            .await?;
        match parse_uidl_entry(&text) {
            Some((n, id)) if n == number => Ok(id),
            _ => Err(self.protocol(format!("malformed UIDL answer: {text}"))),
        }
    }

    /// `RETR n`: the message's bytes, dot-unstuffed, with the line ends the server sent
    /// (CRLF normally) and without the terminating `.` line. A message over `max_bytes` is
    /// read to its end, dropped, and answered with [`Pop3Error::TooLarge`].
    pub async fn retr(&mut self, number: u32, max_bytes: usize) -> Result<Vec<u8>, Pop3Error> {
        let command = format!("RETR {number}");
        self.command(&command, &command).await?;
        let mut message = Vec::new();
        let mut too_large = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let room = if too_large {
                0
            } else {
                max_bytes - message.len()
            };
            // Room for one stuffing dot more than the content, and always for a ".\r\n"
            // terminator, so that the end is seen even while skipping an oversized message.
            let truncated = self.read_line(&mut line, room.saturating_add(3)).await?;
            if !truncated && is_terminator(&line) {
                break;
            }
            let content = unstuff(&line);
            if too_large || truncated || content.len() > room {
                too_large = true;
                continue;
            }
            message.extend_from_slice(content);
        }
        if too_large {
            return Err(Pop3Error::TooLarge {
                number,
                limit: max_bytes,
            });
        }
        Ok(message)
    }

    /// `DELE n`: marks a message for deletion when the session ends with a successful `QUIT`.
    pub async fn dele(&mut self, number: u32) -> Result<(), Pop3Error> {
        let command = format!("DELE {number}");
        self.command(&command, &command).await.map(drop)
    }

    /// `NOOP`: keeps the session alive, checks that the server still answers.
    pub async fn noop(&mut self) -> Result<(), Pop3Error> {
        self.command("NOOP", "NOOP").await.map(drop)
    }

    /// `QUIT`: ends the session and commits the deletions. Only an `+OK` here means the
    /// messages marked with [`Pop3::dele`] are gone.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT", "QUIT").await?;
        // The server closes the connection; a failure to shut down our side changes nothing.
        let _ = tokio::time::timeout(self.timeout, self.stream.get_mut().shutdown()).await;
        Ok(())
    }

    /// Sends one command line and reads its status line; `+OK` gives the text after it, `-ERR`
    /// a [`Pop3Error::Server`] naming `shown` (the command without secrets).
    async fn command(&mut self, line: &str, shown: &str) -> Result<String, Pop3Error> {
        if self.broken {
            return Err(Pop3Error::Unusable);
        }
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let timeout = self.timeout;
        let stream = self.stream.get_mut();
        let written = tokio::time::timeout(timeout, async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.fail(Pop3Error::Io(e))),
            Err(_) => return Err(self.fail(Pop3Error::Timeout(timeout))),
        }
        self.read_status(shown).await
    }

    /// Reads a status line: `+OK text` → `Ok(text)`, `-ERR text` → [`Pop3Error::Server`].
    async fn read_status(&mut self, shown: &str) -> Result<String, Pop3Error> {
        let mut line = Vec::new();
        if self.read_line(&mut line, MAX_RESPONSE_LINE).await? {
            return Err(self.protocol(format!("answer to {shown} is too long")));
        }
        let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        if let Some(rest) = strip_prefix_ignore_case(&text, "+OK") {
            Ok(rest.trim_start().to_owned())
        } else if let Some(rest) = strip_prefix_ignore_case(&text, "-ERR") {
            Err(Pop3Error::Server {
                command: shown.to_owned(),
                text: shorten(rest.trim_start()),
            })
        } else {
            Err(self.protocol(format!(
                "answer to {shown} is neither +OK nor -ERR: {}",
                shorten(&text)
            )))
        }
    }

    /// Reads one line, through its `\n`, appending at most `limit` bytes of it to `line` and
    /// dropping the rest. `Ok(true)` when bytes were dropped. The end of the stream before the
    /// `\n` is [`Pop3Error::Closed`].
    async fn read_line(&mut self, line: &mut Vec<u8>, limit: usize) -> Result<bool, Pop3Error> {
        if self.broken {
            return Err(Pop3Error::Unusable);
        }
        let mut truncated = false;
        loop {
            let timeout = self.timeout;
            let available = match tokio::time::timeout(timeout, self.stream.fill_buf()).await {
                Ok(Ok(available)) => available,
                Ok(Err(e)) => return Err(self.fail(Pop3Error::Io(e))),
                Err(_) => return Err(self.fail(Pop3Error::Timeout(timeout))),
            };
            if available.is_empty() {
                return Err(self.fail(Pop3Error::Closed));
            }
            let (taken, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            let room = limit.saturating_sub(line.len());
            if taken > room {
                truncated = true;
            }
            line.extend_from_slice(&available[..taken.min(room)]);
            self.stream.consume(taken);
            if complete {
                return Ok(truncated);
            }
        }
    }

    /// Marks the session unusable and gives back `error`.
    fn fail(&mut self, error: Pop3Error) -> Pop3Error {
        self.broken = true;
        error
    }

    /// A protocol error; the session cannot be trusted to be in step any more.
    fn protocol(&mut self, message: String) -> Pop3Error {
        self.fail(Pop3Error::Protocol(message))
    }
}

/// Refuses arguments that would end the command line early or leave it empty.
fn check_argument(value: &str, what: &'static str) -> Result<(), Pop3Error> {
    if value.is_empty() || value.contains(['\r', '\n']) {
        return Err(Pop3Error::InvalidArgument(what));
    }
    Ok(())
}

/// The RFC 2449 response code at the start of a `-ERR` text (`[IN-USE] …` → `IN-USE`).
fn response_code(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('[')?;
    Some(&rest[..rest.find(']')?])
}

/// Is a `-ERR` to `USER`/`PASS` about the credentials? RFC 3206 `[AUTH]`, or no code at all
/// (most servers); `[IN-USE]`, `[SYS/TEMP]`, `[SYS/PERM]` and others are not.
fn is_auth_failure(text: &str) -> bool {
    match response_code(text) {
        None => true,
        Some(code) => code.eq_ignore_ascii_case("AUTH"),
    }
}

/// `n uid` (the rest of a `+OK` to `UIDL n`, or one line of `UIDL`).
fn parse_uidl_entry(text: &str) -> Option<(u32, String)> {
    let mut words = text.split_ascii_whitespace();
    let number = words.next()?.parse().ok()?;
    let id = words.next()?;
    if words.next().is_some() {
        return None;
    }
    Some((number, id.to_owned()))
}

/// A multi-line response's last line: `.` and its line end.
fn is_terminator(line: &[u8]) -> bool {
    matches!(line, b".\r\n" | b".\n")
}

/// A line of a multi-line response without its byte-stuffing dot (`..x` → `.x`).
fn unstuff(line: &[u8]) -> &[u8] {
    line.strip_prefix(b".").unwrap_or(line)
}

/// A line without its `\n` or `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Server text for an error message, cut to a sane length.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, DuplexStream};
    use tokio::task::JoinHandle;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// One step of a scripted server: wait for this command line from the client (`None`:
    /// send without waiting, used for the greeting), then send the bytes.
    type Step = (Option<&'static str>, &'static [u8]);

    /// A fake server playing `script` on one end of a pipe, then closing it. The task fails
    /// (and so does the test, when it is awaited) if the client sends anything unexpected.
    fn fake_server(script: Vec<Step>) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move {
            let mut server = BufReader::new(server);
            for (expect, answer) in script {
                if let Some(expect) = expect {
                    let mut line = String::new();
                    server.read_line(&mut line).await.expect("read command");
                    assert_eq!(line, format!("{expect}\r\n"), "unexpected command");
                }
                server.get_mut().write_all(answer).await.expect("write");
            }
            server.get_mut().flush().await.expect("flush");
        });
        (client, task)
    }

    /// A session logged in as `u`/`p` followed by `rest` of the script.
    async fn logged_in(rest: Vec<Step>) -> (Pop3<DuplexStream>, JoinHandle<()>) {
        let mut script: Vec<Step> = vec![
            (None, b"+OK POP3 ready <1.2@test>\r\n"),
            (Some("USER u"), b"+OK\r\n"),
            (Some("PASS p"), b"+OK Logged in.\r\n"),
        ];
        script.extend(rest);
        let (stream, task) = fake_server(script);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        pop.login("u", "p").await.expect("login");
        (pop, task)
    }

    #[tokio::test]
    async fn greeting_login_stat_uidl_and_quit() {
        let (mut pop, task) = logged_in(vec![
            (Some("STAT"), b"+OK 2 320\r\n"),
            (
                Some("UIDL"),
                b"+OK\r\n1 000000016b06ff33\r\n2 whqtswO00WBw418f9t5JxYwZ\r\n.\r\n",
            ),
            (Some("UIDL 2"), b"+OK 2 whqtswO00WBw418f9t5JxYwZ\r\n"),
            (Some("NOOP"), b"+OK\r\n"),
            (Some("DELE 1"), b"+OK Marked to be deleted.\r\n"),
            (Some("QUIT"), b"+OK Logging out, messages deleted.\r\n"),
        ])
        .await;
        assert_eq!(pop.greeting(), "POP3 ready <1.2@test>");
        assert_eq!(pop.stat().await.expect("stat"), (2, 320));
        assert_eq!(
            pop.uidl().await.expect("uidl"),
            vec![
                (1, "000000016b06ff33".to_owned()),
                (2, "whqtswO00WBw418f9t5JxYwZ".to_owned())
            ]
        );
        assert_eq!(
            pop.uidl_one(2).await.expect("uidl 2"),
            "whqtswO00WBw418f9t5JxYwZ"
        );
        pop.noop().await.expect("noop");
        pop.dele(1).await.expect("dele");
        pop.quit().await.expect("quit");
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn empty_uidl_list() {
        let (mut pop, task) = logged_in(vec![(Some("UIDL"), b"+OK 0 messages\r\n.\r\n")]).await;
        assert!(pop.uidl().await.expect("uidl").is_empty());
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn retr_unstuffs_dots_and_keeps_a_line_that_is_just_a_dot() {
        let (mut pop, task) = logged_in(vec![(
            Some("RETR 1"),
            b"+OK 120 octets\r\n\
              Subject: dots\r\n\
              \r\n\
              ..\r\n\
              ...two\r\n\
              .unstuffed by a sloppy server\r\n\
              end\r\n\
              .\r\n",
        )])
        .await;
        let message = pop.retr(1, 1024).await.expect("retr");
        assert_eq!(
            message,
            b"Subject: dots\r\n\r\n.\r\n..two\r\nunstuffed by a sloppy server\r\nend\r\n"
        );
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn retr_then_more_commands_stay_in_step() {
        let (mut pop, task) = logged_in(vec![
            (Some("RETR 1"), b"+OK\r\nA: 1\r\n\r\nbody\r\n.\r\n"),
            (Some("RETR 2"), b"+OK\r\nB: 2\r\n\r\n.\r\n"),
            (Some("QUIT"), b"+OK\r\n"),
        ])
        .await;
        assert_eq!(
            pop.retr(1, 100).await.expect("retr 1"),
            b"A: 1\r\n\r\nbody\r\n"
        );
        assert_eq!(pop.retr(2, 100).await.expect("retr 2"), b"B: 2\r\n\r\n");
        pop.quit().await.expect("quit");
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn bare_lf_responses_are_understood() {
        let (stream, task) = fake_server(vec![
            (None, b"+OK hi\n"),
            (Some("USER u"), b"+OK\n"),
            (Some("PASS p"), b"+OK\n"),
            (Some("UIDL"), b"+OK\n1 a\n2 b\n.\n"),
            (Some("RETR 2"), b"+OK\nX: y\n\n..dot\nlast\n.\n"),
        ]);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        pop.login("u", "p").await.expect("login");
        assert_eq!(
            pop.uidl().await.expect("uidl"),
            vec![(1, "a".to_owned()), (2, "b".to_owned())]
        );
        assert_eq!(
            pop.retr(2, 100).await.expect("retr"),
            b"X: y\n\n.dot\nlast\n"
        );
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn err_on_pass_is_auth_refused_with_the_server_text() {
        let (stream, task) = fake_server(vec![
            (None, b"+OK ready\r\n"),
            (Some("USER u"), b"+OK\r\n"),
            (
                Some("PASS wrong"),
                b"-ERR [AUTH] Authentication failed.\r\n",
            ),
        ]);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        let error = pop.login("u", "wrong").await.expect_err("refused");
        match &error {
            Pop3Error::AuthRefused(text) => assert_eq!(text, "[AUTH] Authentication failed."),
            other => panic!("expected AuthRefused, got {other:?}"),
        }
        assert!(!error.is_transient());
        assert!(
            !error.to_string().contains("wrong"),
            "no password in errors"
        );
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn err_on_user_without_code_is_auth_refused() {
        let (stream, task) = fake_server(vec![
            (None, b"+OK ready\r\n"),
            (Some("USER nobody"), b"-ERR no such user\r\n"),
        ]);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        assert!(matches!(
            pop.login("nobody", "p").await,
            Err(Pop3Error::AuthRefused(text)) if text == "no such user"
        ));
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn mailbox_in_use_is_a_transient_server_error_not_a_bad_password() {
        let (stream, task) = fake_server(vec![
            (None, b"+OK ready\r\n"),
            (Some("USER u"), b"+OK\r\n"),
            (
                Some("PASS p"),
                b"-ERR [IN-USE] Mailbox locked by another session\r\n",
            ),
        ]);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        let error = pop.login("u", "p").await.expect_err("in use");
        match &error {
            Pop3Error::Server { command, text } => {
                assert_eq!(command, "PASS");
                assert_eq!(text, "[IN-USE] Mailbox locked by another session");
            }
            other => panic!("expected Server, got {other:?}"),
        }
        assert!(error.is_transient());
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn err_on_retr_keeps_the_session_usable() {
        let (mut pop, task) = logged_in(vec![
            (Some("RETR 9"), b"-ERR There's no message 9.\r\n"),
            (Some("RETR 1"), b"+OK\r\nA: b\r\n\r\n.\r\n"),
        ])
        .await;
        match pop.retr(9, 100).await {
            Err(Pop3Error::Server { command, text }) => {
                assert_eq!(command, "RETR 9");
                assert_eq!(text, "There's no message 9.");
            }
            other => panic!("expected Server, got {other:?}"),
        }
        assert_eq!(pop.retr(1, 100).await.expect("retr 1"), b"A: b\r\n\r\n");
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn server_closing_mid_response_is_closed_and_poisons_the_session() {
        let (mut pop, task) = logged_in(vec![(
            Some("RETR 1"),
            b"+OK\r\nSubject: cut\r\n\r\nhalf a li",
        )])
        .await;
        assert!(matches!(pop.retr(1, 1024).await, Err(Pop3Error::Closed)));
        assert!(matches!(pop.noop().await, Err(Pop3Error::Unusable)));
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn server_closing_mid_uidl_list_is_closed() {
        let (mut pop, task) = logged_in(vec![(Some("UIDL"), b"+OK\r\n1 a\r\n")]).await;
        let error = pop.uidl().await.expect_err("closed");
        assert!(matches!(error, Pop3Error::Closed));
        assert!(error.is_transient());
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn retr_over_the_cap_is_too_large_and_the_session_stays_in_step() {
        let (mut pop, task) = logged_in(vec![
            (
                Some("RETR 1"),
                b"+OK\r\nSubject: big\r\n\r\n0123456789012345678901234567890123456789\r\n\
                  ..more after the cap\r\n.\r\n",
            ),
            (Some("RETR 2"), b"+OK\r\nS: s\r\n\r\n.\r\n"),
        ])
        .await;
        match pop.retr(1, 32).await {
            Err(Pop3Error::TooLarge { number, limit }) => assert_eq!((number, limit), (1, 32)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(pop.retr(2, 32).await.expect("retr 2"), b"S: s\r\n\r\n");
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn retr_of_exactly_the_cap_is_accepted() {
        let (mut pop, task) = logged_in(vec![(Some("RETR 1"), b"+OK\r\nA: b\r\n\r\n.\r\n")]).await;
        assert_eq!(pop.retr(1, 8).await.expect("retr"), b"A: b\r\n\r\n");
        task.await.expect("server script");
        let (mut pop, task) = logged_in(vec![(Some("RETR 1"), b"+OK\r\nA: b\r\n\r\n.\r\n")]).await;
        assert!(matches!(
            pop.retr(1, 7).await,
            Err(Pop3Error::TooLarge { .. })
        ));
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn a_greeting_that_is_not_pop3_is_a_protocol_error() {
        let (stream, task) = fake_server(vec![(None, b"220 smtp.example.com ESMTP\r\n")]);
        match Pop3::start(stream, TIMEOUT).await {
            Err(Pop3Error::Protocol(text)) => assert!(text.contains("220 smtp"), "{text}"),
            other => panic!("expected Protocol, got {other:?}"),
        }
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn err_greeting_is_a_server_error() {
        let (stream, task) = fake_server(vec![(None, b"-ERR [SYS/TEMP] try later\r\n")]);
        let error = Pop3::start(stream, TIMEOUT).await.expect_err("refused");
        assert!(matches!(&error, Pop3Error::Server { command, .. } if command == "greeting"));
        assert!(error.is_transient());
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let (client, mut server) = tokio::io::duplex(1024);
        let keep = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink).await;
        });
        let started = tokio::time::Instant::now();
        let error = Pop3::start(client, Duration::from_millis(100))
            .await
            .expect_err("timeout");
        assert!(matches!(error, Pop3Error::Timeout(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        keep.abort();
    }

    #[tokio::test]
    async fn malformed_answers_are_protocol_errors() {
        let (mut pop, task) = logged_in(vec![(Some("STAT"), b"+OK lots\r\n")]).await;
        assert!(matches!(pop.stat().await, Err(Pop3Error::Protocol(_))));
        task.await.expect("server script");
        let (mut pop, task) = logged_in(vec![(Some("UIDL"), b"+OK\r\none two\r\n.\r\n")]).await;
        assert!(matches!(pop.uidl().await, Err(Pop3Error::Protocol(_))));
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn arguments_with_line_breaks_are_refused_before_sending() {
        let (stream, task) = fake_server(vec![(None, b"+OK ready\r\n")]);
        let mut pop = Pop3::start(stream, TIMEOUT).await.expect("greeting");
        assert!(matches!(
            pop.login("u\r\nDELE 1", "p").await,
            Err(Pop3Error::InvalidArgument("user name"))
        ));
        assert!(matches!(
            pop.login("u", "").await,
            Err(Pop3Error::InvalidArgument("password"))
        ));
        task.await.expect("server script");
    }

    #[tokio::test]
    async fn connect_to_a_closed_port_is_a_connect_error() {
        // Bind and drop a listener to find a port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        match Pop3::connect(&addr, TIMEOUT).await {
            Err(Pop3Error::Connect { addr: shown, .. }) => assert_eq!(shown, addr),
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[test]
    fn line_helpers() {
        assert!(is_terminator(b".\r\n"));
        assert!(is_terminator(b".\n"));
        assert!(!is_terminator(b"..\r\n"));
        assert!(!is_terminator(b". \r\n"));
        assert_eq!(unstuff(b"..\r\n"), b".\r\n");
        assert_eq!(unstuff(b"x.\r\n"), b"x.\r\n");
        assert_eq!(trim_eol(b"a\r\n"), b"a");
        assert_eq!(trim_eol(b"a\n"), b"a");
        assert_eq!(response_code("[IN-USE] locked"), Some("IN-USE"));
        assert_eq!(response_code("no code"), None);
        assert!(is_auth_failure("[AUTH] Authentication failed."));
        assert!(is_auth_failure("Authentication failed."));
        assert!(!is_auth_failure("[SYS/TEMP] Temporary failure"));
        assert_eq!(strip_prefix_ignore_case("+ok fine", "+OK"), Some(" fine"));
        assert_eq!(strip_prefix_ignore_case("+O", "+OK"), None);
    }
}
