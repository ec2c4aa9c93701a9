//! A fake CVM endpoint on 127.0.0.1:0, written on raw TCP so that tests control every byte:
//! statuses, bodies, resets and bodies that never finish. It records every request and checks
//! its TC3 signature with the wire crate's signer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cvmfleet_wire::sign::{SecretKey, Tc3Request, parse_tc3_authorization, sha256_hex, tc3_sign, utc_date};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The SecretId the fake expects.
pub const SECRET_ID: &str = "AKIDfakeClientTests0001";
/// The SecretKey the fake verifies with; distinctive so that leak tests can search for it.
pub const SECRET_KEY: &str = "SeCrEtKeY-never-print-4f9a1c";

/// What the fake answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200, `Content-Type: application/json`, this body.
    Json(String),
    /// This status and body.
    Status(u16, String),
    /// Close the connection abruptly (RST) without answering.
    Reset,
    /// Send the headers and half the body, then go silent.
    Stall,
    /// Wait, then answer.
    Delayed(Duration, Box<Reply>),
}

/// A success envelope with these response fields.
pub fn success(fields: Value, request_id: &str) -> Reply {
    let mut fields = fields;
    if let Value::Object(map) = &mut fields {
        map.insert("RequestId".into(), Value::String(request_id.into()));
    }
    Reply::Json(serde_json::json!({ "Response": fields }).to_string())
}

/// An error envelope.
pub fn error(code: &str, message: &str, request_id: &str) -> Reply {
    Reply::Json(String::from_utf8(cvmfleet_wire::envelope::encode_error(code, message, request_id)).unwrap())
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn action(&self) -> &str {
        self.header("X-TC-Action").unwrap_or_default()
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or_default()
    }

    /// The request's parameters as JSON (POST body) or flattened pairs read back (GET).
    pub fn params(&self) -> Value {
        if self.method == "GET" {
            let pairs: Vec<(String, String)> = form_pairs(self.query()).into_iter().collect();
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                map.insert(k, Value::String(v));
            }
            Value::Object(map)
        } else {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }
    }

    /// Checks the TC3 signature the way a server must: from the headers named in
    /// SignedHeaders, the raw query and the body as received.
    pub fn verify_signature(&self) -> Result<(), String> {
        let auth = parse_tc3_authorization(self.header("Authorization").ok_or("no Authorization")?)
            .map_err(|e| e.to_string())?;
        if auth.secret_id != SECRET_ID {
            return Err(format!("unknown SecretId {}", auth.secret_id));
        }
        let timestamp: i64 = self
            .header("X-TC-Timestamp")
            .ok_or("no X-TC-Timestamp")?
            .parse()
            .map_err(|_| "bad X-TC-Timestamp")?;
        if auth.date != utc_date(timestamp) || !matches!(auth.service.as_str(), "cvm" | "tag") {
            return Err(format!("bad credential scope {}/{}", auth.date, auth.service));
        }
        let mut headers = Vec::new();
        for name in &auth.signed_headers {
            headers.push((name.as_str(), self.header(name).ok_or(format!("signed header {name} missing"))?));
        }
        let payload_hash = sha256_hex(&self.body);
        let expected = tc3_sign(
            &Tc3Request {
                method: &self.method,
                query: self.query(),
                headers: &headers,
                payload_hash: &payload_hash,
                service: &auth.service,
                timestamp,
            },
            &SecretKey::new(SECRET_KEY),
        );
        if expected.signature == auth.signature {
            Ok(())
        } else {
            Err(format!("signature mismatch; canonical request:\n{}", expected.canonical_request))
        }
    }
}

/// Decodes `a=b&c=d` (percent-decoding names and values).
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The running fake. Dropping it stops the server.
pub struct Fake {
    pub addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Serves with `handler(request, index)`, `index` counting requests from 0.
    pub async fn start(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move { serve_connection(stream, handler, recorded).await });
            }
        });
        Fake { addr, requests, task }
    }

    /// Answers with `replies` in order, then repeats the last one.
    pub async fn scripted(replies: Vec<Reply>) -> Fake {
        Fake::start(move |_, index| replies[index.min(replies.len() - 1)].clone()).await
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn serve_connection(mut stream: TcpStream, handler: Arc<Handler>, recorded: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else { return };
        let index = {
            let mut all = recorded.lock().unwrap();
            all.push(request.clone());
            all.len() - 1
        };
        let mut reply = handler(&request, index);
        while let Reply::Delayed(wait, inner) = reply {
            tokio::time::sleep(wait).await;
            reply = *inner;
        }
        let (status, body) = match reply {
            Reply::Json(body) => (200, body),
            Reply::Status(status, body) => (status, body),
            Reply::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Reply::Stall => {
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Resp";
                let _ = stream.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Delayed(..) => unreachable!("unwrapped above"),
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 request (head plus Content-Length body); `None` at end of stream.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + length].to_vec();
    buf.drain(..body_start + length);
    Some(Recorded { method, target, headers, body })
}
