//! Which store the server serves: the directory of `--root`, or with `--store s3://…` an
//! S3-compatible bucket (when built with the `s3` feature, as by default).

use std::sync::Arc;
use std::time::Duration;

use ftlib::store::Store;
use ftlib::{DirStore, PartialLimits};

use crate::Args;

/// Opens the store the arguments name, with a message fit for the terminal on failure.
pub(crate) fn open(args: &Args) -> Result<Arc<dyn Store>, String> {
    if let Some(url) = &args.store {
        return open_bucket(url, args);
    }
    let store = DirStore::open(&args.root).map_err(|e| {
        format!("cannot serve: {e}; create it, or choose another directory with --root")
    })?;
    store.set_partial_limits(PartialLimits {
        max_age: Duration::from_secs(args.partial_max_age.saturating_mul(3600)),
        max_count: args.partial_max_count,
        max_bytes: args.partial_max_bytes,
        max_per_peer: args.partial_max_per_peer,
    });
    Ok(Arc::new(store))
}

/// What the reports and errors call the store.
pub(crate) fn describe(args: &Args) -> String {
    match &args.store {
        Some(url) => url.clone(),
        None => args.root.display().to_string(),
    }
}

#[cfg(feature = "s3")]
fn open_bucket(url: &str, args: &Args) -> Result<Arc<dyn Store>, String> {
    use ftlib::store::{S3Config, S3Store};
    let mut config = S3Config::from_url(url).map_err(|e| e.to_string())?;
    config.timeout = Duration::from_secs(args.store_timeout);
    config.staged_expiry = Duration::from_secs(args.staged_expiry);
    let store = S3Store::open(config).map_err(|e| {
        // Without keys, object_store asks a cloud machine's metadata service, whose
        // failure says nothing of the missing keys.
        let unset = if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            " (AWS_ACCESS_KEY_ID is not set: without it the credentials are asked of a cloud \
             machine's metadata service)"
        } else {
            ""
        };
        format!(
            "cannot serve {url}: {e}; the endpoint and credentials come from AWS_ENDPOINT, \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (and \
             AWS_ALLOW_HTTP=true for a plain-HTTP endpoint){unset}"
        )
    })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn open_bucket(url: &str, _args: &Args) -> Result<Arc<dyn Store>, String> {
    Err(format!(
        "cannot serve {url}: this ftserver was built without S3 support (the `s3` feature)"
    ))
}
