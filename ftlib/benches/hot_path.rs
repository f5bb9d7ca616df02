//! Micro-benchmarks of the per-byte hot path: framing a chunk, decoding it, framing a listing
//! batch, the XXH3-128 digest, the copy of a TLS record at two alignments, reading a file
//! into buffers at three alignments, a whole download
//! over loopback at several chunk sizes, and 100 small files moved one by one against
//! pipelined with group commit (on disk).
//! The end-to-end comparison with other tools is `bench/run.py`; this is the quick check
//! that a change to the codec or the transfer loop did not slow the hot path down.
//!
//! `cargo bench -p ftlib --bench hot_path` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ft_testutil::noise;
use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::{Body, DEFAULT_CHUNK, Entry, EntryKind, Response};
use ftlib::store::DirStore;
use ftlib::{Client, ClientConfig, Server, ServerConfig};
use xxhash_rust::xxh3::Xxh3;

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            name: format!("file-{i:06}.dat"),
            kind: EntryKind::File,
            size: 4096 + i as u64,
            modified: 1_700_000_000 + i as i64,
            executable: false,
        })
        .collect()
}

fn codec_benches(c: &mut Criterion) {
    let chunk = noise(DEFAULT_CHUNK, 0);
    let mut frame = Vec::new();
    codec::encode_frame(&Body::Chunk(&chunk), &mut frame).expect("encode chunk");

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("encode_chunk_256KiB", |b| {
        let mut out = Vec::new();
        b.iter(|| codec::encode_frame(&Body::Chunk(black_box(&chunk)), &mut out).expect("encode"));
    });
    group.bench_function("decode_chunk_256KiB", |b| {
        let payload = &frame[HEADER_LEN..];
        b.iter(
            || match codec::decode::<Body<'_>>(black_box(payload)).expect("decode") {
                Body::Chunk(bytes) => bytes.len(),
                other => panic!("not a chunk: {other:?}"),
            },
        );
    });

    let batch = Response::Listing(entries(256));
    let mut listing = Vec::new();
    codec::encode_frame(&batch, &mut listing).expect("encode entries");
    group.throughput(Throughput::Bytes(listing.len() as u64));
    group.bench_function("encode_entries_256", |b| {
        let mut out = Vec::new();
        b.iter(|| codec::encode_frame(black_box(&batch), &mut out).expect("encode"));
    });
    group.bench_function("decode_entries_256", |b| {
        let payload = &listing[HEADER_LEN..];
        b.iter(|| codec::decode::<Response>(black_box(payload)).expect("decode"));
    });
    group.finish();
}

fn digest_benches(c: &mut Criterion) {
    let chunk = noise(DEFAULT_CHUNK, 0);
    let mut group = c.benchmark_group("digest");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    // What transfer.rs does per chunk: a streaming update of a running state.
    group.bench_function("xxh3_128_update_256KiB", |b| {
        let mut hasher = Xxh3::new();
        b.iter(|| hasher.update(black_box(&chunk)));
    });
    group.finish();
}

/// The copy rustls makes of each 16 KiB TLS record, with the destination 16 bytes past the
/// source modulo 4 KiB, and 256 bytes past: under glibc on AMD Zen the first is much slower
/// (`rep movsb`), unless `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1073741824`, which
/// ftserver and ftclient set for themselves (`ftlib::avoid_slow_memory_copies`). Both
/// buffers are in one allocation, so the allocator does not decide the distance.
fn copy_benches(c: &mut Criterion) {
    const RECORD: usize = 16 * 1024;
    let mut group = c.benchmark_group("copy");
    group.throughput(Throughput::Bytes(RECORD as u64));
    for past in [16, 256] {
        let mut both = noise(RECORD + 4096 + RECORD + past, 1);
        let (src, dst) = both.split_at_mut(RECORD + 4096);
        group.bench_function(format!("16KiB_dst_{past}B_past_src_mod_4KiB"), |b| {
            b.iter(|| {
                dst[past..past + RECORD].copy_from_slice(black_box(&src[..RECORD]));
                black_box(&dst[past]);
            });
        });
    }
    group.finish();
}

/// Reading a 32 MiB file (tmpfs where there is one, so from the page cache) in 256 KiB reads
/// into a buffer that starts on a 4 KiB boundary, 16 bytes past one (where glibc puts a
/// large block) and 256 past. The kernel copies file pages with `rep movsb` too, and on AMD
/// Zen the second is about three times slower, which no glibc tunable reaches: ft reads
/// files into page-aligned buffers (`sys::PageAligned`, docs/PERFORMANCE.md).
fn read_benches(c: &mut Criterion) {
    use std::io::{Read, Seek};
    const SIZE: usize = 32 * 1024 * 1024;
    const READ: usize = 256 * 1024;
    let dir = scratch();
    let path = dir.path().join("source");
    std::fs::write(&path, noise(SIZE, 3)).expect("write the source");
    let mut file = std::fs::File::open(&path).expect("open the source");
    let mut group = c.benchmark_group("read_file");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    let mut storage = vec![0u8; READ + 2 * 4096];
    let page = storage.as_ptr().align_offset(4096).min(4096);
    for past in [0, 16, 256] {
        let buf = &mut storage[page + past..page + past + READ];
        group.bench_function(format!("256KiB_reads_into_{past}B_past_a_page"), |b| {
            b.iter(|| {
                file.rewind().expect("rewind");
                let mut total = 0;
                loop {
                    match file.read(buf).expect("read") {
                        0 => break,
                        n => total += n,
                    }
                }
                assert_eq!(total, SIZE);
            });
        });
    }
    group.finish();
}

/// A directory on tmpfs when there is one, so the disk does not decide.
fn scratch() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    let builder = tempfile::Builder::new().prefix("ft-bench-").to_owned();
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(&shm) {
            return dir;
        }
    }
    builder.tempdir().expect("temporary directory")
}

/// A whole `get` of a 32 MiB file over loopback, into a sink, for several server chunk
/// sizes: what the 256 KiB default buys against smaller and larger chunks.
fn loopback_benches(c: &mut Criterion) {
    const SIZE: usize = 32 * 1024 * 1024;
    let served = scratch();
    std::fs::write(served.path().join("big.bin"), noise(SIZE, 0)).expect("write served file");

    let mut group = c.benchmark_group("loopback_get");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    for chunk in [16 * 1024, 64 * 1024, DEFAULT_CHUNK, 1024 * 1024] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let mut config = ServerConfig::plain();
        config.chunk_size = chunk;
        let store = DirStore::open(served.path()).expect("open store");
        let server = Server::new(listener, store, config).expect("server");
        let addr = server.local_addr().expect("address");
        let stop = server.shutdown_handle();
        let running = std::thread::spawn(move || server.run(|_| {}));
        let mut client =
            Client::connect(addr, ClientConfig::trusting(ftlib::Trust::Plain)).expect("connect");

        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{}KiB", chunk / 1024)),
            &chunk,
            |b, _| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let got = client
                            .get_into("big.bin", &mut std::io::sink(), |_| {})
                            .expect("get");
                        assert_eq!(got, SIZE as u64);
                    }
                    start.elapsed()
                });
            },
        );
        drop(client);
        stop.shutdown();
        running.join().expect("server thread").expect("server run");
    }
    group.finish();
}

/// A directory on disk (not tmpfs), where an fsync costs what it costs.
fn disk_scratch() -> tempfile::TempDir {
    let builder = tempfile::Builder::new().prefix("ft-bench-").to_owned();
    builder
        .tempdir_in("/var/tmp")
        .or_else(|_| builder.tempdir())
        .expect("temporary directory")
}

fn empty(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
}

/// 100 files of 4 KiB over one connection: `put`/`get` one at a time (each waits for its
/// fsync and acknowledgement) against `put_many`/`get_many` (pipelined, group commit).
fn small_file_benches(c: &mut Criterion) {
    const FILES: usize = 100;
    let local = disk_scratch();
    let served = disk_scratch();
    let got = disk_scratch();
    let files: Vec<(PathBuf, String)> = (0..FILES)
        .map(|i| {
            let name = format!("f{i:03}");
            let path = local.path().join(&name);
            std::fs::write(&path, noise(4096 + i, 0)).expect("write local file");
            (path, name)
        })
        .collect();
    let names: Vec<String> = files.iter().map(|f| f.1.clone()).collect();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let store = DirStore::open(served.path()).expect("open store");
    let server = Server::new(listener, store, ServerConfig::plain()).expect("server");
    let addr = server.local_addr().expect("address");
    let stop = server.shutdown_handle();
    let running = std::thread::spawn(move || server.run(|_| {}));
    let mut client =
        Client::connect(addr, ClientConfig::trusting(ftlib::Trust::Plain)).expect("connect");
    let into = DirStore::open(got.path()).expect("open local store");

    let mut group = c.benchmark_group("small_files_100x4KiB");
    group.throughput(Throughput::Elements(FILES as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("put_one_by_one", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for (path, name) in &files {
                    client.put(path, name, |_| {}).expect("put");
                }
                spent += start.elapsed();
                empty(served.path());
            }
            spent
        });
    });
    group.bench_function("put_many_pipelined", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                client.put_many(
                    &files,
                    |_, _| {},
                    |_, r| {
                        r.expect("put");
                    },
                );
                spent += start.elapsed();
                empty(served.path());
            }
            spent
        });
    });
    for (path, name) in &files {
        std::fs::copy(path, served.path().join(name)).expect("serve file");
    }
    group.bench_function("get_one_by_one", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for name in &names {
                    client.get(name, &into, false, |_| {}).expect("get");
                }
                spent += start.elapsed();
                empty(got.path());
            }
            spent
        });
    });
    group.bench_function("get_many_pipelined", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                client.get_many(
                    &names,
                    &into,
                    false,
                    |_, _| {},
                    |_, r| {
                        r.expect("get");
                    },
                );
                spent += start.elapsed();
                empty(got.path());
            }
            spent
        });
    });
    group.finish();
    drop(client);
    stop.shutdown();
    running.join().expect("server thread").expect("server run");
}

criterion_group!(
    benches,
    codec_benches,
    digest_benches,
    copy_benches,
    read_benches,
    loopback_benches,
    small_file_benches
);
criterion_main!(benches);
