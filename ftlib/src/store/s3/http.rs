//! What the S3 backend needs around `object_store`: the one small async runtime that runs
//! its requests for the blocking server, the HTTP service that makes every multipart
//! completion conditional, and how its errors become ft's.

use std::future::Future;
use std::sync::OnceLock;

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::{ClientOptions, Error as OsError};
use tokio::runtime::Runtime;

use crate::error::{Error, Missing, StorageFailure, Taken};

/// The runtime every S3 store of the process shares: two worker threads drive the HTTP
/// requests; server threads wait on them with [`block_on`].
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ft-s3")
            .enable_all()
            .build()
            // Without a runtime the backend cannot work at all; a thread pool of two that
            // cannot start means the process is out of threads or memory.
            .unwrap_or_else(|e| panic!("cannot start the S3 runtime: {e}"))
    })
}

/// Runs `future` to completion from a blocking thread (never from the runtime's own).
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Starts `future` on the runtime without waiting for it.
pub(super) fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}

/// Makes rustls use ring (the provider the rest of ft uses) for the HTTPS client of
/// `object_store`, which is built without a provider of its own so that no second crypto
/// library (aws-lc, which needs cmake) is compiled in.
pub(super) fn install_crypto() {
    // Err only when a provider is installed already: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The `object_store` HTTP client, with `If-None-Match: *` added to every
/// CompleteMultipartUpload.
///
/// Written by hand because `object_store` offers conditional creation for single-request
/// puts (`PutMode::Create`) but completes multipart uploads unconditionally (only its
/// internal copy uses the header). ft never replaces an object, so every completion it
/// makes is conditional: of two servers racing for a name, S3 lets exactly one complete.
#[derive(Debug, Default)]
pub(super) struct CreateOnlyConnector;

impl HttpConnector for CreateOnlyConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CreateOnly { inner }))
    }
}

#[derive(Debug)]
struct CreateOnly {
    inner: HttpClient,
}

#[async_trait::async_trait]
impl HttpService for CreateOnly {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if is_complete_multipart(&req) {
            req.headers_mut().insert(
                http::header::IF_NONE_MATCH,
                http::HeaderValue::from_static("*"),
            );
        }
        self.inner.execute(req).await
    }
}

/// A CompleteMultipartUpload is a POST with an `uploadId` query parameter (creating one is
/// a POST with `uploads`).
fn is_complete_multipart(req: &HttpRequest) -> bool {
    req.method() == http::Method::POST
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("uploadId=")))
}

/// Maps an `object_store` failure on `name` (what was being done: `doing`) to ft's error.
pub(super) fn map_error(bucket: &str, name: &str, doing: &str, e: OsError) -> Error {
    match e {
        OsError::NotFound { .. } => Error::NotFound {
            name: name.to_owned(),
            why: Missing::Absent,
        },
        OsError::AlreadyExists { .. } | OsError::Precondition { .. } => Error::AlreadyExists {
            name: name.to_owned(),
            why: Taken::Exists,
        },
        other => storage_error(bucket, doing, other),
    }
}

/// An error of the bucket itself (no name to blame): unreachable, refused credentials,
/// missing bucket, or anything else the engine answered.
pub(super) fn storage_error(bucket: &str, doing: &str, e: OsError) -> Error {
    let text = error_chain(&e);
    let failure = match &e {
        OsError::PermissionDenied { .. } | OsError::Unauthenticated { .. } => {
            StorageFailure::Denied
        }
        _ if text.contains("NoSuchBucket") => StorageFailure::NoBucket,
        _ if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("AccessDenied") =>
        {
            StorageFailure::Denied
        }
        _ => StorageFailure::Failed,
    };
    Error::Storage {
        bucket: bucket.to_owned(),
        doing: doing.to_owned(),
        failure,
        detail: text,
    }
}

/// The error and its causes on one line (object_store's own `Display` stops at the top).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    // The engine's answers can be long XML documents; a report line is not the place.
    if text.len() > 600 {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: http::Method, uri: &str) -> HttpRequest {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(object_store::client::HttpRequestBody::empty())
            .expect("request")
    }

    #[test]
    fn only_multipart_completions_are_made_conditional() {
        let cases = [
            (http::Method::POST, "http://h/b/k?uploadId=abc", true),
            (http::Method::POST, "http://h/b/k?x=1&uploadId=abc", true),
            (http::Method::POST, "http://h/b/k?uploads", false),
            (
                http::Method::PUT,
                "http://h/b/k?partNumber=1&uploadId=abc",
                false,
            ),
            (http::Method::DELETE, "http://h/b/k?uploadId=abc", false),
            (http::Method::POST, "http://h/b/k?delete", false),
            (http::Method::GET, "http://h/b/k", false),
        ];
        for (method, uri, expected) in cases {
            assert_eq!(
                is_complete_multipart(&request(method.clone(), uri)),
                expected,
                "{method} {uri}"
            );
        }
    }
}
