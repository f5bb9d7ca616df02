//! [`S3Upload`], a file on its way into the bucket: held in memory while it is small, put in
//! one conditional request once verified; past one part, a multipart upload whose parts go
//! up as they fill (a few at a time) and which completes, conditionally, only at commit.
//! Until then nothing is visible under its name; dropped, it is aborted.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMultipartOptions, PutPayload};
use tokio::task::JoinHandle;

use super::http::{block_on, map_error, spawn};
use super::{Inner, attributes, raced};
use crate::error::{Error, Result};
use crate::protocol::{Attrs, DIGEST_LEN};
use crate::store::PendingFile;
use crate::store::name::Name;

/// The smallest part: above S3's 5 MiB minimum, and what a file must exceed to go up in
/// parts rather than in one request.
const PART_MIN: usize = 8 * 1024 * 1024;

/// Most parts of one object S3 accepts.
const PARTS_MAX: u64 = 10_000;

/// Bytes of parts one upload may have in flight at once (at least one part).
const IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

/// Most files of a group committed at once.
const GROUP_CONCURRENCY: usize = 32;

/// A file being written to the bucket.
pub(super) struct S3Upload {
    inner: Arc<Inner>,
    name: Name,
    attrs: Option<Attrs>,
    digest: Option<[u8; DIGEST_LEN]>,
    /// This upload's random token, kept with its claim and its object.
    token: String,
    /// Bytes not sent yet: the whole file while it fits one part.
    buf: Vec<u8>,
    part_size: usize,
    multipart: Option<Multipart>,
}

/// A multipart upload in progress.
struct Multipart {
    key: Path,
    id: String,
    marker: Path,
    marked: Instant,
    done: Vec<PartId>,
    in_flight: VecDeque<JoinHandle<object_store::Result<PartId>>>,
}

impl S3Upload {
    pub(super) fn new(inner: Arc<Inner>, name: Name, size: u64) -> S3Upload {
        // Parts grow for files over 10,000 minimum parts, in whole MiB.
        let needed = size.div_ceil(PARTS_MAX).div_ceil(1 << 20) << 20;
        let part_size = usize::try_from(needed).unwrap_or(usize::MAX).max(PART_MIN);
        S3Upload {
            inner,
            name,
            attrs: None,
            digest: None,
            token: random_id(),
            buf: Vec::new(),
            part_size,
            multipart: None,
        }
    }

    fn max_in_flight(&self) -> usize {
        (IN_FLIGHT_BYTES / self.part_size).max(1)
    }

    /// Sends the buffer as the next part, starting the multipart upload first if needed, and
    /// waits while too many parts are in flight.
    fn send_part(&mut self) -> Result<()> {
        if self.multipart.is_none() {
            self.multipart = Some(block_on(self.start())?);
        }
        let max = self.max_in_flight();
        let inner = Arc::clone(&self.inner);
        let data = PutPayload::from(std::mem::take(&mut self.buf));
        let Some(mp) = self.multipart.as_mut() else {
            return Ok(());
        };
        block_on(async {
            while mp.in_flight.len() >= max {
                mp.settle_one(&inner, &self.name).await?;
            }
            if mp.marked.elapsed() > inner.config.staged_expiry / 4 {
                inner.mark_stage(&mp.marker, &mp.key, &mp.id).await?;
                mp.marked = Instant::now();
            }
            Ok::<(), Error>(())
        })?;
        let index = mp.done.len() + mp.in_flight.len();
        let (s3, key, id) = (inner.s3.clone(), mp.key.clone(), mp.id.clone());
        mp.in_flight.push_back(spawn(
            async move { s3.put_part(&key, &id, index, data).await },
        ));
        Ok(())
    }

    /// Creates the multipart upload and its stage marker.
    async fn start(&self) -> Result<Multipart> {
        let inner = &self.inner;
        let key = inner.key(&self.name);
        let opts = PutMultipartOptions {
            attributes: attributes(self.attrs, &self.token),
            ..PutMultipartOptions::default()
        };
        let id = inner
            .s3
            .create_multipart_opts(&key, opts)
            .await
            .map_err(|e| map_error(inner.bucket(), &self.name, "starting its upload", e))?;
        let marker = inner.stage_marker(&random_id());
        if let Err(e) = inner.mark_stage(&marker, &key, &id).await {
            let _ = inner.s3.abort_multipart(&key, &id).await;
            return Err(e);
        }
        Ok(Multipart {
            key,
            id,
            marker,
            marked: Instant::now(),
            done: Vec::new(),
            in_flight: VecDeque::new(),
        })
    }

    /// Publishes the verified file: one conditional put, or the last part and a conditional
    /// completion, either under the name's claim. Either way it fails `already-exists` if
    /// the name was taken meanwhile.
    async fn finish(self: Box<Self>) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let (result, claim) = self.finish_claimed().await;
        if let Some(claim) = claim {
            // Left behind, a sweep removes it after the expiry.
            let _ = inner.s3.delete(&claim).await;
        }
        result
    }

    /// [`S3Upload::finish`], leaving the claim it took (if any) to the caller to release.
    async fn finish_claimed(mut self: Box<Self>) -> (Result<()>, Option<Path>) {
        let inner = Arc::clone(&self.inner);
        let data = std::mem::take(&mut self.buf);
        let Some(mut mp) = self.multipart.take() else {
            return inner
                .put_new(
                    &self.name,
                    data.into(),
                    self.attrs,
                    self.digest,
                    &self.token,
                )
                .await;
        };
        let mut claim = None;
        let result = async {
            if !data.is_empty() {
                let index = mp.done.len() + mp.in_flight.len();
                let (s3, key, id) = (inner.s3.clone(), mp.key.clone(), mp.id.clone());
                let part = PutPayload::from(data);
                mp.in_flight.push_back(spawn(
                    async move { s3.put_part(&key, &id, index, part).await },
                ));
            }
            while !mp.in_flight.is_empty() {
                mp.settle_one(&inner, &self.name).await?;
            }
            // The name itself is guarded by the claim and the conditional completion.
            inner.check_file_place(&self.name, false).await?;
            claim = Some(inner.claim(&self.name, &self.token).await?);
            let parts = std::mem::take(&mut mp.done);
            match inner.s3.complete_multipart(&mp.key, &mp.id, parts).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = raced(map_error(inner.bucket(), &self.name, "completing it", e));
                    inner.unless_ours(&self.name, &self.token, e).await
                }
            }
        }
        .await;
        match result {
            Ok(()) => {
                let _ = inner.s3.delete(&mp.marker).await;
            }
            Err(_) => mp.abandon(&inner).await,
        }
        (result, claim)
    }
}

impl Multipart {
    /// Waits for the oldest part in flight.
    async fn settle_one(&mut self, inner: &Inner, name: &Name) -> Result<()> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match handle.await {
            Ok(Ok(part)) => {
                self.done.push(part);
                Ok(())
            }
            Ok(Err(e)) => Err(map_error(inner.bucket(), name, "sending a part", e)),
            Err(e) => Err(Error::io(
                format!("sending a part of {name}"),
                io::Error::other(e),
            )),
        }
    }

    /// Aborts the upload and removes its marker (a sweep does it later if this fails).
    async fn abandon(mut self, inner: &Inner) {
        for handle in self.in_flight.drain(..) {
            handle.abort();
        }
        let _ = inner.s3.abort_multipart(&self.key, &self.id).await;
        let _ = inner.s3.delete(&self.marker).await;
    }
}

/// 128 random bits in hex, naming a stage marker.
fn random_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    // Without randomness the name falls back to the time and process: still unique enough
    // for a marker that only this upload writes.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(std::process::id())).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Write for S3Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer goes up only once more bytes come: a file of exactly one part is
        // still put in one request.
        if self.buf.len() >= self.part_size {
            self.send_part().map_err(io::Error::other)?;
        }
        let n = data.len().min(self.part_size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PendingFile for S3Upload {
    fn commit(self: Box<Self>) -> Result<()> {
        block_on(self.finish())
    }

    fn set_attrs(&mut self, attrs: Attrs) {
        self.attrs = Some(attrs);
    }

    /// Kept with a file put in one request; a multipart upload's metadata was fixed when
    /// it started, before the digest was known, so its digest is computed when asked.
    fn set_digest(&mut self, digest: [u8; DIGEST_LEN]) {
        self.digest = Some(digest);
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // Not committed (`finish` takes it): nothing may stay behind.
        if let Some(mp) = self.multipart.take() {
            let inner = Arc::clone(&self.inner);
            spawn(async move { mp.abandon(&inner).await });
        }
    }
}

/// Commits `files` as the trait asks, up to [`GROUP_CONCURRENCY`] at once: results in
/// order; of two files of one name, the first wins (such a group, or one holding another
/// store's files, is committed in turn).
pub(super) fn commit_group(
    inner: &Arc<Inner>,
    files: Vec<Box<dyn PendingFile>>,
) -> Vec<Result<()>> {
    let mut names = std::collections::HashSet::new();
    let concurrent = files.iter().all(|file| {
        file.as_any()
            .downcast_ref::<S3Upload>()
            .is_some_and(|u| Arc::ptr_eq(&u.inner, inner) && names.insert(u.name.to_string()))
    });
    if !concurrent {
        return files.into_iter().map(PendingFile::commit).collect();
    }
    let uploads = files
        .into_iter()
        .filter_map(|file| file.into_any().downcast::<S3Upload>().ok());
    block_on(async {
        let finished: Vec<(Result<()>, Option<Path>)> = futures::stream::iter(uploads)
            .map(S3Upload::finish_claimed)
            .buffered(GROUP_CONCURRENCY)
            .collect()
            .await;
        let (results, claims): (Vec<_>, Vec<_>) = finished.into_iter().unzip();
        // The group's claims go in bulk (one request per thousand); left behind, a sweep
        // removes them after the expiry.
        let claims = futures::stream::iter(claims.into_iter().flatten().map(Ok)).boxed();
        let _: Vec<_> = inner.s3.delete_stream(claims).collect().await;
        results
    })
}
