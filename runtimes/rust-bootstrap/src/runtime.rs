//! A tiny client of the AWS Lambda Runtime API, std only.
//!
//! You normally do not need to edit this file: `main.rs` hands its handler to [`run`].
//!
//! Where the API is served:
//! - in Trace's local sandbox, over the Unix socket named by `TRACE_RUNTIME_SOCKET`
//!   (the sandbox has no network at all);
//! - on AWS (`provided.al2023`), over TCP at `AWS_LAMBDA_RUNTIME_API` (`host:port`).
//!
//! The loop is Lambda's: `GET /2018-06-01/runtime/invocation/next`, call the handler,
//! then `POST .../invocation/{request_id}/response` with its JSON, or
//! `POST .../invocation/{request_id}/error` with `{"errorType": ..., "errorMessage": ...}`
//! and the `Lambda-Runtime-Function-Error-Type` header. A setup failure before the loop
//! is reported with [`init_error`] (`POST /2018-06-01/runtime/init/error`).
//! See <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>.

// A template's library: a handler uses only some of what it offers.
#![allow(dead_code)]

use std::env;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const API: &str = "/2018-06-01/runtime";
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Lambda caps events at 6 MB; anything far larger is not a Runtime API answer.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const USER_AGENT: &str = concat!("trace-udf-bootstrap/", env!("CARGO_PKG_VERSION"));

/// What Lambda tells the handler about the invocation in flight.
#[derive(Debug, Clone)]
pub struct Context {
    /// `Lambda-Runtime-Aws-Request-Id`
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: when the invocation times out, in Unix milliseconds.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`, when sent.
    pub trace_id: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME` from the environment (empty when unset).
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` from the environment (empty when unset).
    pub function_version: String,
}

impl Context {
    /// Time left before the deadline (zero once it has passed).
    pub fn remaining_time(&self) -> Duration {
        Duration::from_millis(self.deadline_ms.saturating_sub(now_ms()))
    }
}

/// A failed invocation: reported to Lambda as `{"errorType": ..., "errorMessage": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    pub error_type: String,
    pub message: String,
}

impl HandlerError {
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError { error_type: error_type.into(), message: message.into() }
    }

    /// The JSON body Lambda expects on `/error` and `/init/error`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"errorType\":{},\"errorMessage\":{}}}",
            json_string(&self.error_type),
            json_string(&self.message)
        )
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// Lets `?` turn any error (I/O, parsing, serde_json, ...) into a failed invocation,
/// typed by the error's Rust type name (`Error` of `std::io` gives `Error`).
impl<E: std::error::Error> From<E> for HandlerError {
    fn from(error: E) -> Self {
        let name = std::any::type_name::<E>();
        let short = name.split('<').next().unwrap_or(name).rsplit("::").next().unwrap_or(name);
        HandlerError::new(short, error.to_string())
    }
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Serves invocations with `handler` until the Runtime API says to stop; never returns.
///
/// The handler gets the event's JSON text and returns the result's JSON text, or a
/// [`HandlerError`]. A panic in the handler fails that invocation (`errorType` `Panic`)
/// and the instance keeps serving.
pub fn run<F>(mut handler: F) -> !
where
    F: FnMut(&str, &Context) -> Result<String, HandlerError>,
{
    let mut client = match Client::from_env() {
        Ok(client) => client,
        Err(message) => fatal(&message),
    };
    loop {
        let invocation = match client.next_invocation() {
            Ok(invocation) => invocation,
            Err(error) => fatal(&format!("getting the next invocation: {error}")),
        };
        let ctx = &invocation.context;
        let outcome = match String::from_utf8(invocation.event) {
            Ok(event) => panic::catch_unwind(AssertUnwindSafe(|| handler(&event, ctx)))
                .unwrap_or_else(|payload| Err(HandlerError::new("Panic", panic_message(&*payload)))),
            Err(error) => Err(HandlerError::new("Runtime.InvalidEvent", format!("the event is not UTF-8: {error}"))),
        };
        let posted = match &outcome {
            Ok(body) => client.post(&format!("{API}/invocation/{}/response", ctx.request_id), &[], body.as_bytes()),
            Err(error) => client.post(
                &format!("{API}/invocation/{}/error", ctx.request_id),
                &[("Lambda-Runtime-Function-Error-Type", &error.error_type)],
                error.to_json().as_bytes(),
            ),
        };
        match posted {
            // 202: accepted; 4xx: this answer was refused (too large, request id no longer awaited),
            // which fails this invocation only: keep serving
            Ok(response) if response.status < 500 => {
                if response.status != 202 {
                    eprintln!(
                        "bootstrap: the answer to {} was refused ({}): {}",
                        ctx.request_id,
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
            }
            // 5xx: the Runtime API is in a state the runtime must exit on
            Ok(response) => fatal(&format!("the Runtime API answered {}", response.status)),
            Err(error) => fatal(&format!("posting the answer to {}: {error}", ctx.request_id)),
        }
    }
}

/// Reports a failure to start (before [`run`]) on `/runtime/init/error`, then exits.
pub fn init_error(error: &HandlerError) -> ! {
    if let Ok(mut client) = Client::from_env() {
        let _ = client.post(
            &format!("{API}/init/error"),
            &[("Lambda-Runtime-Function-Error-Type", &error.error_type)],
            error.to_json().as_bytes(),
        );
    }
    fatal(&format!("init failed: {error}"))
}

fn fatal(message: &str) -> ! {
    eprintln!("bootstrap: {message}");
    process::exit(1)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the handler panicked".to_string()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

// --- the HTTP/1.1 client

struct Invocation {
    event: Vec<u8>,
    context: Context,
}

enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to the Runtime API, reopened when the server closes it.
struct Client {
    endpoint: Endpoint,
    conn: Option<BufReader<Stream>>,
}

impl Client {
    fn from_env() -> Result<Client, String> {
        let endpoint = match (env::var_os("TRACE_RUNTIME_SOCKET"), env::var("AWS_LAMBDA_RUNTIME_API")) {
            (Some(path), _) if !path.is_empty() => Endpoint::Unix(PathBuf::from(path)),
            (_, Ok(address)) if !address.is_empty() => Endpoint::Tcp(address),
            _ => return Err("neither TRACE_RUNTIME_SOCKET nor AWS_LAMBDA_RUNTIME_API is set".to_string()),
        };
        Ok(Client { endpoint, conn: None })
    }

    fn next_invocation(&mut self) -> io::Result<Invocation> {
        let response = self.request("GET", &format!("{API}/invocation/next"), &[], b"")?;
        if response.status != 200 {
            return Err(invalid(format!(
                "status {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )));
        }
        let request_id = match response.header("Lambda-Runtime-Aws-Request-Id") {
            Some(id) if !id.is_empty() && !id.contains('/') => id.to_string(),
            _ => return Err(invalid("no valid Lambda-Runtime-Aws-Request-Id header".to_string())),
        };
        let context = Context {
            request_id,
            deadline_ms: response.header("Lambda-Runtime-Deadline-Ms").and_then(|v| v.parse().ok()).unwrap_or(0),
            invoked_function_arn: response.header("Lambda-Runtime-Invoked-Function-Arn").unwrap_or("").to_string(),
            trace_id: response.header("Lambda-Runtime-Trace-Id").map(str::to_string),
            function_name: env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            function_version: env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default(),
        };
        Ok(Invocation { event: response.body, context })
    }

    fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        self.request("POST", path, headers, body)
    }

    /// Sends one request; a reused connection the server has since closed is retried once afresh.
    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.try_request(method, path, headers, body) {
            Err(error) if reused && is_stale_connection(&error) => self.try_request(method, path, headers, body),
            result => result,
        }
    }

    fn try_request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let result = self.exchange(method, path, headers, body);
        match &result {
            Ok(response) if !keeps_alive(response) => self.conn = None,
            Ok(_) => {}
            Err(_) => self.conn = None,
        }
        result
    }

    fn exchange(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost",
            Endpoint::Tcp(address) => address.as_str(),
        };
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n");
        if method != "GET" || !body.is_empty() {
            request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {}\r\n", header_value(value)));
        }
        request.push_str("\r\n");
        // one write: no small-write/delayed-ACK stall on TCP
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);

        if self.conn.is_none() {
            let stream = match &self.endpoint {
                Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
                Endpoint::Tcp(address) => {
                    let stream = TcpStream::connect(address.as_str())?;
                    stream.set_nodelay(true)?;
                    Stream::Tcp(stream)
                }
            };
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().expect("connected above");
        conn.get_mut().write_all(&bytes)?;
        conn.get_mut().flush()?;
        loop {
            let response = read_response(conn)?;
            if !(100..200).contains(&response.status) {
                return Ok(response);
            }
        }
    }
}

fn is_stale_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

fn keeps_alive(response: &Response) -> bool {
    let framed = response.header("Content-Length").is_some() || is_chunked(response);
    framed && !response.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

fn is_chunked(response: &Response) -> bool {
    response.header("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// A header value with anything that could end the header or break HTTP replaced.
fn header_value(value: &str) -> String {
    value.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// One line without its CRLF, at most `limit` bytes; `UnexpectedEof` if the peer hung up first.
fn read_line(reader: &mut impl BufRead, limit: usize) -> io::Result<String> {
    let mut line = Vec::new();
    let read = reader.take(limit as u64 + 1).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the Runtime API closed the connection"));
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("an HTTP line is too long or cut short".to_string()));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("an HTTP line is not UTF-8".to_string()))
}

fn read_response(reader: &mut impl BufRead) -> io::Result<Response> {
    let status_line = read_line(reader, MAX_HEAD_BYTES)?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("not an HTTP/1.x status line: {status_line:?}")));
    }
    let status: u16 = code.parse().map_err(|_| invalid(format!("bad status line: {status_line:?}")))?;

    let mut headers = Vec::new();
    let mut head_bytes = status_line.len();
    loop {
        let line = read_line(reader, MAX_HEAD_BYTES)?;
        if line.is_empty() {
            break;
        }
        head_bytes += line.len();
        if head_bytes > MAX_HEAD_BYTES {
            return Err(invalid("the response headers are too large".to_string()));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid(format!("bad header line: {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response { status, headers, body: Vec::new() };
    if version == "HTTP/1.0" && !response.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")) {
        response.headers.push(("Connection".to_string(), "close".to_string()));
    }

    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    if is_chunked(&response) {
        response.body = read_chunked(reader)?;
    } else if let Some(length) = response.header("Content-Length") {
        let length: usize = length.parse().map_err(|_| invalid(format!("bad Content-Length: {length:?}")))?;
        if length > MAX_BODY_BYTES {
            return Err(invalid(format!("a body of {length} bytes is over the limit")));
        }
        response.body = vec![0; length];
        reader.read_exact(&mut response.body)?;
    } else {
        // no framing: the body runs to the end of the connection, which is then spent
        reader.take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut response.body)?;
        if response.body.len() > MAX_BODY_BYTES {
            return Err(invalid("the body is over the limit".to_string()));
        }
        response.headers.push(("Connection".to_string(), "close".to_string()));
    }
    Ok(response)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, 1024)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid(format!("bad chunk size: {line:?}")))?;
        if size == 0 {
            // trailers, up to the blank line that ends the message
            while !read_line(reader, MAX_HEAD_BYTES)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(invalid("the chunked body is over the limit".to_string()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, 2)?.is_empty() {
            return Err(invalid("a chunk is not followed by CRLF".to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_chunked_response() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLambda-Runtime-Aws-Request-Id: r1\r\n\r\n\
                    4\r\n{\"a\"\r\n5;ext=1\r\n:1}\r\n\r\n0\r\nX-Trailer: t\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let response = read_response(&mut reader).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("lambda-runtime-aws-request-id"), Some("r1"));
        assert_eq!(response.body, b"{\"a\":1}\r\n");
        assert!(keeps_alive(&response));
    }

    #[test]
    fn reads_a_content_length_response_and_leaves_the_next_one() {
        let raw = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        assert_eq!(read_response(&mut reader).unwrap().body, b"{}");
        assert_eq!(read_response(&mut reader).unwrap().status, 200);
    }

    #[test]
    fn a_body_without_framing_closes_the_connection() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nabc";
        let response = read_response(&mut BufReader::new(&raw[..])).unwrap();
        assert_eq!(response.body, b"abc");
        assert!(!keeps_alive(&response));
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn errors_convert_with_their_type_name() {
        let error: HandlerError = "x".parse::<u32>().unwrap_err().into();
        assert_eq!(error.error_type, "ParseIntError");
    }
}
