//! [`S3Store`]: files as objects of an S3-compatible bucket, through `object_store`, so that
//! several servers (on several hosts) can serve one bucket and still never overwrite, never
//! show a partial file and never lose an acknowledged one.
//!
//! A name is the key `PREFIX/name` (`/`-separated, byte for byte). Creation is conditional
//! (`If-None-Match: *` on PutObject and on CompleteMultipartUpload), so of racing creators of
//! one name, through any servers, exactly one wins. A small file is held in memory and put in
//! one request once verified; a larger one goes up as a multipart upload that completes only
//! after its digest matched. Directories are key prefixes; an empty one is a hidden marker
//! object. Everything hidden starts with `.ft-`, which no name may, so clients never reach it.

mod http;
mod listing;
mod stage;
mod upload;

use std::fmt;
use std::io;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientConfigKey, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutOptions, PutPayload, RetryConfig,
};

use super::name::Name;
use super::{PendingFile, Source, Store};
use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{Attrs, DIGEST_LEN, Entry, EntryKind};
use http::{block_on, map_error, storage_error};
use upload::S3Upload;

/// Where a server's bucket is and how long it may take.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The key prefix served (no leading or trailing `/`; empty: the whole bucket).
    pub prefix: String,
    /// Longest wait for the engine to answer or to send more bytes; a request slower than
    /// this fails (with kind `storage`) after a few retries.
    pub timeout: Duration,
    /// A staged upload whose marker was not renewed for this long is taken as abandoned (its
    /// server died) and aborted by the next clean-up of any server on the bucket.
    pub staged_expiry: Duration,
    /// Settings that take precedence over the environment's, by the same names
    /// (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`…): for embedders and tests that must not change
    /// the process's environment.
    pub settings: Vec<(String, String)>,
}

impl S3Config {
    /// Parses `s3://BUCKET[/PREFIX]`, with default timeouts.
    ///
    /// # Errors
    /// [`Error::Config`] for anything else, saying what is expected.
    pub fn from_url(url: &str) -> Result<S3Config> {
        let bad = |why: &str| {
            Error::Config(format!(
                "{url:?} is not a bucket: {why} (expected s3://BUCKET or s3://BUCKET/PREFIX)"
            ))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(bad(
                "a bucket name has 3 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            Name::new(prefix).map_err(|e| bad(&format!("the prefix is not usable: {e}")))?;
        }
        Ok(S3Config {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            timeout: Duration::from_secs(30),
            staged_expiry: Duration::from_secs(15 * 60),
            settings: Vec::new(),
        })
    }

    /// `s3://BUCKET/PREFIX`, as given.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A [`Store`] on an S3-compatible bucket (or a prefix of it); clones share the client.
///
/// Endpoint and credentials come from the standard AWS environment variables, as
/// `object_store` reads them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint).
/// It keeps no partials (a resumable upload starts over) and commits a group's files
/// concurrently. What S3 cannot promise is in `docs/ARCHITECTURE.md` ("Storage").
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    s3: AmazonS3,
    config: S3Config,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("url", &self.inner.config.url())
            .finish_non_exhaustive()
    }
}

/// User metadata keys (S3 `x-amz-meta-…`) holding a file's attributes.
const META_MODIFIED: &str = "ft-modified";
const META_EXECUTABLE: &str = "ft-executable";
/// The XXH3-128 verified when a file was put in one request (hex). S3 objects are never
/// changed in place (a new put replaces data and metadata together), so it stays true.
const META_DIGEST: &str = "ft-xxh3";
/// A random token of the upload that made the object: a retried request whose first attempt
/// succeeded unseen (its answer lost) finds its own object there, not another upload's.
const META_TOKEN: &str = "ft-upload";

impl S3Store {
    /// Connects to the bucket of `config` and checks that it can be listed (the endpoint
    /// answers, the credentials are accepted, the bucket exists), then starts the periodic
    /// clean-up of abandoned staged uploads.
    ///
    /// # Errors
    /// [`Error::Storage`] naming the bucket, [`Error::Config`] for an unusable setting.
    pub fn open(config: S3Config) -> Result<S3Store> {
        http::install_crypto();
        let seconds = |d: Duration| format!("{}s", d.as_secs().max(1));
        let mut builder = AmazonS3Builder::from_env();
        for (name, value) in &config.settings {
            let key: AmazonS3ConfigKey = name
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| Error::Config(format!("{name} is not an object store setting")))?;
            builder = builder.with_config(key, value);
        }
        let s3 = builder
            .with_bucket_name(&config.bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_http_connector(http::CreateOnlyConnector)
            // No limit on a whole request (a download streams as slowly as its client
            // reads); instead on connecting and on each wait for bytes.
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                seconds(config.timeout.min(Duration::from_secs(10))),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
                seconds(config.timeout),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: config.timeout,
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| Error::Config(format!("cannot use {}: {e}", config.url())))?;
        let store = S3Store {
            inner: Arc::new(Inner { s3, config }),
        };
        store.probe()?;
        stage::start_sweeper(Arc::downgrade(&store.inner));
        Ok(store)
    }

    /// Lists one key of the prefix: fails when the bucket cannot be used.
    fn probe(&self) -> Result<()> {
        let prefix = self.inner.dir_path(None);
        let first = block_on(async {
            let mut keys = self.inner.s3.list(prefix.as_ref());
            keys.next().await
        });
        match first {
            Some(Err(e)) => Err(storage_error(
                &self.inner.config.bucket,
                "listing it at start",
                e,
            )),
            _ => Ok(()),
        }
    }

    /// The configuration it serves.
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }
}

impl Inner {
    fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// The key of `name` (under the prefix).
    fn key(&self, name: &str) -> Path {
        let full = if self.config.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.config.prefix)
        };
        // Names are checked (no empty, `.` or `..` component, no control character), so
        // they are valid paths; were one not, it would be refused, never altered.
        Path::parse(&full).unwrap_or_else(|_| Path::from_iter([".ft-invalid"]))
    }

    /// The prefix under which `dir`'s contents lie (`None`: the served top).
    fn dir_path(&self, dir: Option<&str>) -> Option<Path> {
        match (self.config.prefix.is_empty(), dir) {
            (true, None) => None,
            (false, None) => Path::parse(&self.config.prefix).ok(),
            (_, Some(dir)) => Some(self.key(dir)),
        }
    }

    /// What `name` is: a file (its size and attributes), a directory, or nothing.
    async fn kind_of(&self, name: &str) -> Result<Option<Entry>> {
        match self.s3.head(&self.key(name)).await {
            Ok(meta) => {
                return Ok(Some(Entry {
                    name: name.to_owned(),
                    kind: EntryKind::File,
                    size: meta.size,
                    modified: meta.last_modified.timestamp(),
                    executable: false,
                }));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(map_error(self.bucket(), name, "looking it up", e)),
        }
        Ok(self.is_dir(name).await?.then(|| dir_entry(name)))
    }

    /// The HEAD of `name`'s object, with its user metadata (`object_store`'s `head` drops it).
    async fn head_of(&self, name: &str) -> object_store::Result<object_store::GetResult> {
        let opts = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        self.s3.get_opts(&self.key(name), opts).await
    }

    /// True when some key lies beneath `name/` (a directory exists as long as anything is
    /// in it, or its marker).
    async fn is_dir(&self, name: &str) -> Result<bool> {
        let mut keys = self.s3.list(Some(&self.key(name)));
        match keys.next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(map_error(self.bucket(), name, "listing it", e)),
        }
    }

    /// Refuses to put a file at `name` when a directory has that name or a file has the name
    /// of a directory it needs, and with `own`, when a file has it already (checked
    /// concurrently: one round trip). S3 itself would let both exist; between servers racing
    /// for them, this check is not atomic (the conditional put is, for the name itself).
    async fn check_file_place(&self, name: &Name, own: bool) -> Result<()> {
        let own = async {
            match own {
                true => self.refuse_file_at(name, Taken::Exists).await,
                false => Ok(()),
            }
        };
        let dir = async {
            if self.is_dir(name).await? {
                return Err(Error::AlreadyExists {
                    name: name.to_string(),
                    why: Taken::Directory,
                });
            }
            Ok(())
        };
        let parents = futures::future::try_join_all(
            name.ancestors()
                .map(|parent| self.refuse_file_at(parent, Taken::NotADirectory)),
        );
        futures::try_join!(own, dir, parents).map(|_| ())
    }

    /// `already-exists` (`why`) when an object has the key of `path`.
    async fn refuse_file_at(&self, path: &str, why: Taken) -> Result<()> {
        match self.s3.head(&self.key(path)).await {
            Ok(_) => Err(Error::AlreadyExists {
                name: path.to_owned(),
                why,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_error(self.bucket(), path, "looking it up", e)),
        }
    }

    /// Puts a verified small file in one conditional request, holding the name's claim (see
    /// [`Inner::claim`]); returns the claim, to be released by the caller, also on failure.
    async fn put_new(
        &self,
        name: &Name,
        data: PutPayload,
        attrs: Option<Attrs>,
        digest: Option<[u8; DIGEST_LEN]>,
        token: &str,
    ) -> (Result<()>, Option<Path>) {
        let claimed = async {
            self.check_file_place(name, false).await?;
            self.claim(name, token).await
        };
        let claim = match claimed.await {
            Ok(claim) => claim,
            Err(e) => return (Err(e), None),
        };
        let mut attributes = attributes(attrs, token);
        if let Some(digest) = digest {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            attributes.insert(Attribute::Metadata(META_DIGEST.into()), hex.into());
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes,
            ..PutOptions::default()
        };
        let put = match self.s3.put_opts(&self.key(name), data, opts).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = raced(map_error(self.bucket(), name, "storing it", e));
                self.unless_ours(name, token, e).await
            }
        };
        (put, Some(claim))
    }

    /// `Ok` when the object at `name` was made by the upload holding `token` (a retried
    /// request after an unseen success), else `e`.
    pub(super) async fn unless_ours(&self, name: &str, token: &str, e: Error) -> Result<()> {
        if e.kind() != crate::ErrorKind::AlreadyExists {
            return Err(e);
        }
        match self.head_of(name).await {
            Ok(got)
                if got
                    .attributes
                    .get(&Attribute::Metadata(META_TOKEN.into()))
                    .is_some_and(|t| t.as_ref() == token) =>
            {
                Ok(())
            }
            _ => Err(e),
        }
    }
}

/// A file opened for reading: `reader`, with the size and attributes `got` describes.
fn source(reader: Box<dyn io::Read + Send>, got: &object_store::GetResult) -> Source {
    let attrs = attrs_of(&got.attributes, got.meta.last_modified.timestamp());
    Source {
        kept: None,
        reader,
        size: got.meta.size,
        modified: attrs.modified,
        nanos: attrs.nanos,
        executable: attrs.executable,
    }
}

/// The entry of directory `name` (S3 keeps no time for a key prefix).
fn dir_entry(name: &str) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: EntryKind::Dir,
        size: 0,
        modified: 0,
        executable: false,
    }
}

/// An `already-exists` at the final step means another upload won the name meanwhile.
fn raced(e: Error) -> Error {
    match e {
        Error::AlreadyExists {
            name,
            why: Taken::Exists,
        } => Error::AlreadyExists {
            name,
            why: Taken::Raced,
        },
        other => other,
    }
}

/// The user metadata that keeps `attrs` with the object, and the token of its upload.
fn attributes(attrs: Option<Attrs>, token: &str) -> Attributes {
    let mut map = Attributes::new();
    map.insert(
        Attribute::Metadata(META_TOKEN.into()),
        token.to_owned().into(),
    );
    if let Some(attrs) = attrs {
        map.insert(
            Attribute::Metadata(META_MODIFIED.into()),
            format!("{}.{:09}", attrs.modified, attrs.nanos).into(),
        );
        if attrs.executable {
            map.insert(Attribute::Metadata(META_EXECUTABLE.into()), "1".into());
        }
    }
    map
}

/// A file's time and execute bit from its metadata, else its last-modified time.
fn attrs_of(attributes: &Attributes, last_modified: i64) -> Attrs {
    let get = |key: &'static str| attributes.get(&Attribute::Metadata(key.into()));
    let (modified, nanos) = get(META_MODIFIED)
        .and_then(|v| {
            let (s, n) = v.split_once('.')?;
            let nanos: u32 = n.parse().ok()?;
            (nanos < 1_000_000_000).then_some((s.parse::<i64>().ok()?, nanos))
        })
        .unwrap_or((last_modified, 0));
    Attrs {
        modified,
        nanos,
        executable: get(META_EXECUTABLE).is_some_and(|v| v.as_ref() == "1"),
    }
}

/// A digest from its 32 hex digits.
fn parse_digest(hex: &str) -> Option<[u8; DIGEST_LEN]> {
    let mut digest = [0u8; DIGEST_LEN];
    if hex.len() != 2 * DIGEST_LEN || !hex.is_ascii() {
        return None;
    }
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store for S3Store {
    fn list(
        &self,
        dir: Option<&Name>,
        recursive: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        let inner = &self.inner;
        if let Some(dir) = dir {
            match block_on(inner.kind_of(dir))? {
                Some(Entry {
                    kind: EntryKind::Dir,
                    ..
                }) => {}
                _ => {
                    return Err(Error::NotFound {
                        name: dir.to_string(),
                        why: Missing::NotADirectory,
                    });
                }
            }
        }
        let prefix = inner.dir_path(dir.map(|d| d.as_str()));
        Ok(Box::new(listing::Listing::new(
            inner.s3.list(prefix.as_ref()),
            prefix,
            recursive,
            inner.config.bucket.clone(),
        )))
    }

    fn stat(&self, name: &Name) -> Result<Entry> {
        let inner = &self.inner;
        let found = block_on(async {
            match inner.head_of(name).await {
                Ok(got) => {
                    let attrs = attrs_of(&got.attributes, got.meta.last_modified.timestamp());
                    Ok(Some(Entry {
                        name: name.to_string(),
                        kind: EntryKind::File,
                        size: got.meta.size,
                        modified: attrs.modified,
                        executable: attrs.executable,
                    }))
                }
                Err(object_store::Error::NotFound { .. }) => {
                    Ok(inner.is_dir(name).await?.then(|| dir_entry(name)))
                }
                Err(e) => Err(map_error(inner.bucket(), name, "looking it up", e)),
            }
        })?;
        found.ok_or_else(|| Error::NotFound {
            name: name.to_string(),
            why: Missing::Absent,
        })
    }

    fn digest(&self, name: &Name) -> Result<[u8; DIGEST_LEN]> {
        let inner = &self.inner;
        let got = block_on(inner.head_of(name))
            .map_err(|e| map_error(inner.bucket(), name, "looking it up", e))?;
        let kept = got
            .attributes
            .get(&Attribute::Metadata(META_DIGEST.into()))
            .and_then(|hex| parse_digest(hex));
        match kept {
            Some(digest) => Ok(digest),
            None => {
                let mut source = self.open(name, 0)?;
                crate::store::kept::hash_all(&mut source.reader)
                    .map_err(|e| Error::io(format!("reading {name}"), e))
            }
        }
    }

    fn make_dir(&self, name: &Name) -> Result<bool> {
        let inner = &self.inner;
        block_on(async {
            let paths = name.ancestors().map(|p| (p, false));
            for (path, last) in paths.chain([(name.as_str(), true)]) {
                match inner.kind_of(path).await? {
                    Some(Entry {
                        kind: EntryKind::Dir,
                        ..
                    }) if last => return Ok(false),
                    Some(Entry {
                        kind: EntryKind::Dir,
                        ..
                    })
                    | None => {}
                    Some(_) => {
                        return Err(Error::AlreadyExists {
                            name: path.to_owned(),
                            why: Taken::NotADirectory,
                        });
                    }
                }
            }
            let marker = inner.key(&format!("{name}/{}", stage::DIR_MARKER));
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match inner.s3.put_opts(&marker, PutPayload::new(), opts).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Ok(false),
                Err(e) => Err(map_error(inner.bucket(), name, "making it", e)),
            }
        })
    }

    fn open(&self, name: &Name, offset: u64) -> Result<Source> {
        let inner = &self.inner;
        let key = inner.key(name);
        let got = block_on(async {
            let range = (offset > 0).then_some(GetRange::Offset(offset));
            let opts = GetOptions {
                range,
                ..GetOptions::default()
            };
            match inner.s3.get_opts(&key, opts).await {
                Ok(got) => Ok(Some(got)),
                // Past the end: an empty reader, but still the whole file's size.
                Err(_) if offset > 0 => Ok(None),
                Err(e) => Err(map_error(inner.bucket(), name, "reading it", e)),
            }
        })?;
        let Some(got) = got else {
            // Asked for the size alone: a HEAD, not a second download.
            let head = block_on(inner.head_of(name))
                .map_err(|e| map_error(inner.bucket(), name, "reading it", e))?;
            if offset < head.meta.size {
                return Err(Error::io(
                    format!("reading {name} from byte {offset}"),
                    io::Error::other("the object store refused the range"),
                ));
            }
            return Ok(source(Box::new(io::empty()), &head));
        };
        let mut opened = source(Box::new(io::empty()), &got);
        opened.reader = Box::new(listing::Body::new(
            got.into_stream(),
            inner.config.timeout,
            name.to_string(),
            inner.config.bucket.clone(),
        ));
        Ok(opened)
    }

    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>> {
        block_on(self.inner.check_file_place(name, true))?;
        Ok(Box::new(S3Upload::new(
            Arc::clone(&self.inner),
            name.clone(),
            size,
        )))
    }

    fn commit_group(&self, files: Vec<Box<dyn PendingFile>>) -> Vec<Result<()>> {
        upload::commit_group(&self.inner, files)
    }

    fn cleanup(&self) -> Result<usize> {
        block_on(stage::sweep(&self.inner))
    }
}

/// For the sweeper, which must not keep a dropped store alive.
type WeakInner = Weak<Inner>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_are_parsed_or_refused_with_the_reason() {
        let ok = S3Config::from_url("s3://my-bucket").expect("bucket");
        assert_eq!((ok.bucket.as_str(), ok.prefix.as_str()), ("my-bucket", ""));
        let ok = S3Config::from_url("s3://b.k-1/team/files/").expect("prefix");
        assert_eq!(
            (ok.bucket.as_str(), ok.prefix.as_str()),
            ("b.k-1", "team/files")
        );
        assert_eq!(ok.url(), "s3://b.k-1/team/files");
        for bad in [
            "my-bucket",
            "http://my-bucket",
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://b_underscore",
            "s3://bucket/../up",
            "s3://bucket/a//b",
            "s3://bucket/.ft-stage",
        ] {
            let e = S3Config::from_url(bad).expect_err(bad);
            assert!(e.to_string().contains("expected s3://BUCKET"), "{bad}: {e}");
        }
    }

    /// A request retried after its first attempt succeeded unseen (its answer lost) finds
    /// its own object or claim and succeeds; another upload's still fails `already-exists`.
    #[test]
    fn a_retry_after_an_unseen_success_finds_its_own_object_and_claim() {
        use ft_testutil::seaweed::Seaweed;
        let seaweed = Seaweed::shared();
        let mut config = S3Config::from_url(&format!("s3://{}", seaweed.bucket())).expect("url");
        config.settings = seaweed.env();
        let store = S3Store::open(config).expect("open");
        let inner = &store.inner;
        let name = Name::new("once.txt").expect("name");
        let put = |token: &str| {
            block_on(inner.put_new(&name, PutPayload::from_static(b"data"), None, None, token))
        };
        let (first, claim) = put("token-a");
        first.expect("the first put");
        // The claim is still held (not released): the same upload may take it again.
        assert!(block_on(inner.claim(&name, "token-a")).is_ok());
        let other = block_on(inner.claim(&name, "token-b")).map(|_| ());
        assert_eq!(
            other.map_err(|e| e.kind()),
            Err(crate::ErrorKind::AlreadyExists)
        );
        if let Some(claim) = claim {
            block_on(inner.s3.delete(&claim)).expect("release");
        }
        let (again, claim) = put("token-a");
        again.expect("the retry of the same upload");
        if let Some(claim) = claim {
            block_on(inner.s3.delete(&claim)).expect("release");
        }
        let (theirs, _) = put("token-b");
        assert_eq!(
            theirs.map_err(|e| e.kind()),
            Err(crate::ErrorKind::AlreadyExists)
        );
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut store.open(&name, 0).expect("open").reader, &mut body)
            .expect("read");
        assert_eq!(body, b"data");
    }

    #[test]
    fn attributes_round_trip_through_metadata() {
        let attrs = Attrs {
            modified: 1_700_000_000,
            nanos: 5,
            executable: true,
        };
        assert_eq!(attrs_of(&attributes(Some(attrs), "t"), 7), attrs);
        let plain = attrs_of(&attributes(None, "t"), 7);
        assert_eq!(
            (plain.modified, plain.nanos, plain.executable),
            (7, 0, false)
        );
    }
}
