//! The bucket's hidden bookkeeping under the served prefix: the marker of an empty
//! directory, and one stage marker per multipart upload in progress (`.ft-stage/ID`, holding
//! the upload's key and id), renewed while it makes progress, so that after a crash any
//! server on the bucket can abort the upload's parts ([`sweep`]); and the claim a multipart
//! upload takes on its name just before completing (`.ft-claim/NAME`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::http::{spawn, storage_error};
use super::{Inner, WeakInner, now_secs};
use crate::error::Result;

/// The object that makes an empty directory exist (never listed: names cannot start with
/// `.ft-`).
pub(super) const DIR_MARKER: &str = ".ft-dir";

/// Where stage markers live, under the prefix.
const STAGE_DIR: &str = ".ft-stage";

/// Where completion claims live, under the prefix.
const CLAIM_DIR: &str = ".ft-claim";

impl Inner {
    /// The key of the stage marker `id`.
    pub(super) fn stage_marker(&self, id: &str) -> Path {
        self.key(&format!("{STAGE_DIR}/{id}"))
    }

    /// Writes (or renews) the marker of multipart upload `upload_id` to `key`.
    pub(super) async fn mark_stage(
        &self,
        marker: &Path,
        key: &Path,
        upload_id: &str,
    ) -> Result<()> {
        let text = format!("{key}\n{upload_id}\n");
        self.s3
            .put(marker, PutPayload::from(text.into_bytes()))
            .await
            .map(|_| ())
            .map_err(|e| storage_error(self.bucket(), "recording a staged upload", e))
    }
}

impl Inner {
    /// Claims `name` for the upload holding `token`, with a conditional put of a hidden key;
    /// `already-exists` when another upload holds the claim.
    ///
    /// Why: S3 makes a conditional CompleteMultipartUpload atomic, but SeaweedFS (4.48) does
    /// not — of 4 completions of one key racing with `If-None-Match: *`, 2 or 3 succeeded in
    /// 3 rounds of 15 (measured with boto3 too) — while its conditional PutObject is atomic
    /// (8 racers, 30 rounds, always one winner). So completions of one name are serialised
    /// by a conditional PutObject; the completion stays conditional for stores where it is
    /// atomic and against a file already there.
    pub(super) async fn claim(&self, name: &str, token: &str) -> Result<Path> {
        // Flat and short whatever the name (a key is at most 1,024 bytes): its XXH3-128. Two
        // names sharing a claim would only wait for each other, never overwrite.
        let hash = xxhash_rust::xxh3::xxh3_128(name.as_bytes());
        let claim = self.key(&format!("{CLAIM_DIR}/{hash:032x}"));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let body = PutPayload::from(token.as_bytes().to_vec());
        match self.s3.put_opts(&claim, body, opts).await {
            Ok(_) => Ok(claim),
            Err(e) => {
                // A retried claim whose first attempt succeeded unseen holds our token.
                if let Ok(got) = self.s3.get(&claim).await {
                    if got
                        .bytes()
                        .await
                        .is_ok_and(|b| b.as_ref() == token.as_bytes())
                    {
                        return Ok(claim);
                    }
                }
                Err(super::raced(super::http::map_error(
                    self.bucket(),
                    name,
                    "claiming its name",
                    e,
                )))
            }
        }
    }
}

/// Aborts the multipart uploads whose markers were not renewed within the staged expiry
/// (their server is gone), and removes the markers; returns how many went. Markers it
/// cannot read are left for a later sweep.
pub(super) async fn sweep(inner: &Inner) -> Result<usize> {
    let stale = stale_under(inner, STAGE_DIR, "listing staged uploads").await?;
    // Claims live for one completion; an old one is a crash's between claim and release.
    for claim in stale_under(inner, CLAIM_DIR, "listing claims").await? {
        let _ = inner.s3.delete(&claim).await;
    }
    let mut removed = 0;
    for marker in stale {
        let Ok(got) = inner.s3.get(&marker).await else {
            continue;
        };
        let Ok(text) = got.bytes().await else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines();
        if let (Some(key), Some(id)) = (lines.next(), lines.next()) {
            // Gone already (completed, or aborted by another sweep) is as good.
            if let Ok(key) = Path::parse(key) {
                let _ = inner.s3.abort_multipart(&key, &id.to_owned()).await;
            }
        }
        if inner.s3.delete(&marker).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The keys under the hidden directory `dir` not written for longer than the staged expiry.
async fn stale_under(inner: &Inner, dir: &str, doing: &str) -> Result<Vec<Path>> {
    let expiry = i64::try_from(inner.config.staged_expiry.as_secs()).unwrap_or(i64::MAX);
    let now = now_secs();
    let mut stale = Vec::new();
    let mut keys = inner.s3.list(Some(&inner.key(dir)));
    while let Some(meta) = keys.next().await {
        let meta = meta.map_err(|e| storage_error(inner.bucket(), doing, e))?;
        if now.saturating_sub(meta.last_modified.timestamp()) > expiry {
            stale.push(meta.location);
        }
    }
    Ok(stale)
}

/// Sweeps every half expiry while the store lives, so that an upload abandoned by a crashed
/// server is cleaned even if no server restarts.
pub(super) fn start_sweeper(inner: WeakInner) {
    let Some(every) = inner
        .upgrade()
        .map(|i| (i.config.staged_expiry / 2).max(Duration::from_secs(1)))
    else {
        return;
    };
    spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner): Option<Arc<Inner>> = inner.upgrade() else {
                return;
            };
            let _ = sweep(&inner).await;
        }
    });
}
