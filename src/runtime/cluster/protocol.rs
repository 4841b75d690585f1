//! The wire between the coordinator and its workers: length-prefixed JSON frames on a TCP
//! connection, a challenge-response on the job token (HMAC-SHA256 over a fresh nonce; the token
//! itself never crosses the wire), and the same check on every timely mesh connection.

use super::super::commit::NodeCounts;
use super::super::{JobSpec, Outcome, RunError};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::Sha256;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The largest control frame accepted (a job description with many splits stays far below).
pub const MAX_FRAME: usize = 256 << 20;

/// The environment variable a daemon worker (`flow worker --listen`) and a coordinator that
/// reaches daemons read the job token from.
pub const TOKEN_VAR: &str = "FLOW_JOB_TOKEN";

const NONCE: usize = 32;

/// What the coordinator sends a worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// The answer to the worker's challenge, and the coordinator's own challenge.
    Auth {
        mac: Vec<u8>,
        nonce: Vec<u8>,
    },
    Job(Box<Assignment>),
    /// Every process's mesh address, by process index.
    Peers {
        addresses: Vec<String>,
    },
    /// The job is over (committed or aborted): the worker is released.
    Release,
    /// Every process is ready: commit the transactions this process holds (the sinks of
    /// `cluster::transaction_sinks` whose writer runs here); answered by
    /// [`ToCoordinator::Committed`] or [`ToCoordinator::Failed`].
    Commit,
    /// To a daemon (`flow worker --listen`): start a worker process for one job; the daemon
    /// answers [`ToCoordinator::Launched`] and serves no other job until this connection closes.
    Launch,
}

/// A worker's part of a job.
#[derive(Debug, Serialize, Deserialize)]
pub struct Assignment {
    pub spec: JobSpec,
    /// This process's index in the timely mesh (its workers are `process * threads ..`).
    pub process: usize,
    pub processes: usize,
    /// How long the mesh set-up may take, from the moment the peers are known.
    pub connect_timeout_ms: u64,
    pub heartbeat_ms: u64,
    /// The coordinator's working directory, for a worker a daemon started elsewhere: the job's
    /// relative paths are relative to it (on storage every host reaches at the same path), so
    /// the worker runs there and names every file as single-node does. `None`: stay put (a
    /// worker started by the coordinator itself already runs there).
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
}

/// What a worker sends the coordinator.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToCoordinator {
    Challenge {
        nonce: Vec<u8>,
    },
    /// The coordinator proved it knows the token; the worker proves it too.
    AuthOk {
        mac: Vec<u8>,
        pid: u32,
    },
    Refused {
        reason: String,
    },
    /// Where this worker's timely mesh listener is.
    MeshAddress {
        address: String,
    },
    /// Sent every `heartbeat_ms` while the job runs, and once more when its workers are done:
    /// this process's counters so far for every node of the physical plan (rows in and out,
    /// rows rejected, bytes read), by node index.
    Heartbeat {
        nodes: Vec<NodeCounts>,
    },
    /// The workers of this process finished: their outputs are written (phase one).
    Ready {
        outcome: Outcome,
    },
    Failed {
        error: RunError,
    },
    /// This process's transactions are committed: (sink number, where the rows went).
    Committed {
        sinks: Vec<(usize, String)>,
    },
    /// From a daemon: the job's worker process listens at `address`.
    Launched {
        address: String,
        pid: u32,
    },
    /// From a daemon: bytes its worker process wrote on standard output (a stdout sink's rows).
    Output {
        bytes: Vec<u8>,
    },
    /// From a daemon: its worker process has exited (all its output was sent before this).
    Exited {
        status: String,
    },
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()
}

pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (the limit is {MAX_FRAME})"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A fresh random nonce.
pub fn nonce() -> io::Result<Vec<u8>> {
    let mut n = vec![0u8; NONCE];
    getrandom::fill(&mut n).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(n)
}

/// A fresh job token: 32 random bytes, hex.
pub fn new_token() -> io::Result<String> {
    Ok(nonce()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// HMAC-SHA256 of `label ++ nonce` keyed with the token.
pub fn mac(token: &str, label: &[u8], nonce: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes()) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(label);
    m.update(nonce);
    m.finalize().into_bytes().to_vec()
}

/// Whether `tag` is the MAC of `label ++ nonce` under the token (constant time).
pub fn verify(token: &str, label: &[u8], nonce: &[u8], tag: &[u8]) -> bool {
    let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes()) else {
        return false;
    };
    m.update(label);
    m.update(nonce);
    m.verify_slice(tag).is_ok()
}

const COORD: &[u8] = b"flow-coordinator";
const WORKER: &[u8] = b"flow-worker";
const MESH: &[u8] = b"flow-mesh";

/// The time left until `deadline`, at least 1 ms (a zero timeout means "none" to the socket API).
pub fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Blocks until `listener` has a connection to accept (`true`) or `deadline` passes (`false`),
/// without polling on a timer: `poll(2)` with the time left.
fn readable(listener: &TcpListener, deadline: Instant) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        let mut fd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left(deadline).as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut fd, 1, ms) };
        if r > 0 {
            return Ok(true);
        }
        if r == 0 {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            continue;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

/// The coordinator's side: connects to a worker by `deadline` and runs the mutual
/// challenge-response. Returns the connection and the worker's pid.
pub fn connect_worker(
    addr: SocketAddr,
    token: &str,
    deadline: Instant,
) -> io::Result<(TcpStream, u32)> {
    let mut s = loop {
        match TcpStream::connect_timeout(&addr, left(deadline)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(left(deadline)))?;
    let ToCoordinator::Challenge { nonce: theirs } = read_frame(&mut s)? else {
        return Err(io::Error::other("the worker did not send a challenge"));
    };
    let ours = nonce()?;
    write_frame(
        &mut s,
        &ToWorker::Auth {
            mac: mac(token, COORD, &theirs),
            nonce: ours.clone(),
        },
    )?;
    match read_frame(&mut s)? {
        ToCoordinator::AuthOk { mac: tag, pid } if verify(token, WORKER, &ours, &tag) => {
            s.set_read_timeout(None)?;
            Ok((s, pid))
        }
        ToCoordinator::AuthOk { .. } => Err(io::Error::other(
            "the worker answered with a wrong token: it is not this job's worker",
        )),
        ToCoordinator::Refused { reason } => Err(io::Error::other(format!(
            "the worker refused the connection: {reason}"
        ))),
        _ => Err(io::Error::other("unexpected answer to the challenge")),
    }
}

/// The worker's side of [`connect_worker`]: `Err(reason)` when the peer does not know the
/// token (the worker logs it and keeps waiting for its coordinator).
pub fn accept_coordinator(s: &mut TcpStream, token: &str) -> Result<(), String> {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let ours = nonce().map_err(|e| e.to_string())?;
    write_frame(
        s,
        &ToCoordinator::Challenge {
            nonce: ours.clone(),
        },
    )
    .map_err(|e| format!("cannot send the challenge: {e}"))?;
    let msg: ToWorker = read_frame(s).map_err(|e| format!("no answer to the challenge: {e}"))?;
    let ToWorker::Auth { mac: tag, nonce } = msg else {
        return Err("the peer did not answer the challenge".into());
    };
    if !verify(token, COORD, &ours, &tag) {
        let _ = write_frame(
            s,
            &ToCoordinator::Refused {
                reason: "wrong job token".into(),
            },
        );
        return Err("wrong job token".into());
    }
    write_frame(
        s,
        &ToCoordinator::AuthOk {
            mac: mac(token, WORKER, &nonce),
            pid: std::process::id(),
        },
    )
    .map_err(|e| format!("cannot answer the challenge: {e}"))?;
    let _ = s.set_read_timeout(None);
    Ok(())
}

/// The timely mesh of process `me` among `addresses.len()` processes, on sockets opened here:
/// connects to every lower-indexed peer and accepts every higher-indexed one on `listener`, each
/// authenticated with the token, all by `deadline`. `sockets[me]` is `None`, as timely expects.
/// A connection that does not know the token is dropped (and reported through `refused`).
pub fn mesh(
    me: usize,
    addresses: &[String],
    listener: &TcpListener,
    token: &str,
    deadline: Instant,
    refused: &mut dyn FnMut(String),
) -> io::Result<Vec<Option<TcpStream>>> {
    let n = addresses.len();
    let mut sockets: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    for (j, addr) in addresses.iter().enumerate().take(me) {
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| io::Error::other(format!("peer address `{addr}`: {e}")))?;
        let mut s = loop {
            match TcpStream::connect_timeout(&addr, left(deadline)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("cannot reach process {j} at {addr}: {e}"),
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(left(deadline)))?;
        let mut theirs = [0u8; NONCE];
        s.read_exact(&mut theirs)
            .map_err(|e| io::Error::other(format!("process {j} at {addr}: {e}")))?;
        let index = (me as u64).to_be_bytes();
        let mut msg = index.to_vec();
        msg.extend_from_slice(&mac(token, MESH, &[&theirs[..], &index].concat()));
        s.write_all(&msg)?;
        let mut ok = [0u8; 1];
        s.read_exact(&mut ok).map_err(|e| {
            io::Error::other(format!("process {j} at {addr} did not accept us: {e}"))
        })?;
        s.set_read_timeout(None)?;
        sockets[j] = Some(s);
    }
    listener.set_nonblocking(true)?;
    let mut missing = n - me - 1;
    while missing > 0 {
        if Instant::now() >= deadline || !readable(listener, deadline)? {
            let absent: Vec<String> = (me + 1..n)
                .filter(|&j| sockets[j].is_none())
                .map(|j| j.to_string())
                .collect();
            return Err(timed_out(&format!(
                "process(es) {} never connected to the mesh",
                absent.join(", ")
            )));
        }
        let (mut s, peer) = match listener.accept() {
            Ok(x) => x,
            // Readable, but the connection went away before we took it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(left(deadline).min(Duration::from_secs(5))))?;
        let ours = nonce()?;
        let mut answer = [0u8; 8 + 32];
        let got = s.write_all(&ours).and_then(|_| s.read_exact(&mut answer));
        let index_bytes = &answer[..8];
        let j = u64::from_be_bytes(index_bytes.try_into().unwrap_or([0xff; 8])) as usize;
        let good = got.is_ok()
            && j > me
            && j < n
            && sockets[j].is_none()
            && verify(
                token,
                MESH,
                &[&ours[..], index_bytes].concat(),
                &answer[8..],
            );
        if !good {
            refused(format!(
                "refused a mesh connection from {peer}: not a peer of this job"
            ));
            continue;
        }
        s.write_all(&[1])?;
        s.set_read_timeout(None)?;
        sockets[j] = Some(s);
        missing -= 1;
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_never_comes_fails_the_mesh_at_the_deadline() {
        let me = TcpListener::bind("127.0.0.1:0").unwrap();
        // Process 1's address is a port nobody will connect from.
        let addresses = vec![me.local_addr().unwrap().to_string(), "127.0.0.1:9".into()];
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let e = mesh(0, &addresses, &me, "t", deadline, &mut |_| {}).unwrap_err();
        let took = start.elapsed();
        assert!(
            e.to_string().contains("process(es) 1 never connected"),
            "{e}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn a_mesh_connection_without_the_token_is_refused() {
        let l0 = TcpListener::bind("127.0.0.1:0").unwrap();
        let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
        let addresses = vec![
            l0.local_addr().unwrap().to_string(),
            l1.local_addr().unwrap().to_string(),
        ];
        let a2 = addresses.clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        // A stray peer with the wrong token, then the real process 1.
        let stray = std::thread::spawn(move || {
            let _ = mesh(1, &a2, &l1, "wrong", deadline, &mut |_| {});
        });
        let mut refused = Vec::new();
        let a3 = addresses.clone();
        let l1b = TcpListener::bind("127.0.0.1:0").unwrap();
        let real = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            mesh(1, &a3, &l1b, "right", deadline, &mut |_| {}).map(|s| s.len())
        });
        let sockets = mesh(0, &addresses, &l0, "right", deadline, &mut |m| {
            refused.push(m)
        });
        let sockets = sockets.unwrap();
        assert!(sockets[0].is_none() && sockets[1].is_some());
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("not a peer of this job"), "{refused:?}");
        assert_eq!(real.join().unwrap().unwrap(), 2);
        let _ = stray.join();
    }

    #[test]
    fn macs_depend_on_token_label_and_nonce() {
        let m = mac("tok", COORD, b"n1");
        assert!(verify("tok", COORD, b"n1", &m));
        assert!(!verify("tok2", COORD, b"n1", &m));
        assert!(!verify("tok", WORKER, b"n1", &m));
        assert!(!verify("tok", COORD, b"n2", &m));
        assert_eq!(new_token().unwrap().len(), 64);
    }
}
