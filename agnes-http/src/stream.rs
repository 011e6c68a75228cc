//! Streamed query responses.
//!
//! A query runs on a blocking thread, which encodes its rows in the chosen format and passes the
//! bytes to the response body through a bounded channel, so a result of any size is sent with a
//! few buffers in memory. Errors before the first row (bad SQL, a denied table, the time limit)
//! are ordinary error responses. An error after the response has begun aborts the body, so the
//! client sees a failed transfer rather than a short result. A client that reads nothing for a
//! minute loses its result, so that slow readers cannot hold every query slot. When the client asks for trailers
//! (`TE: trailers`), the body ends with `agnes-row-count` and `agnes-truncated`.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use agnes_core::Error;
use agnes_core::query::{CancelToken, Format, QueryStream};
use agnes_core::sync::DataPlane;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body::Frame;
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::error::ApiError;

/// Bytes collected before they are handed to the response body.
const CHUNK: usize = 64 * 1024;
/// Chunks that may wait in the channel for a slow client.
const QUEUED_CHUNKS: usize = 8;
/// Time a client may go without reading before the query is stopped and its slot freed.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Trailer with the number of rows sent.
pub const ROW_COUNT_TRAILER: &str = "agnes-row-count";
/// Trailer that is `true` when the row limit cut the result.
pub const TRUNCATED_TRAILER: &str = "agnes-truncated";

type FrameResult = Result<Frame<Bytes>, io::Error>;

/// Runs `start` on a blocking thread and responds with its rows in `format`, with `headers` added.
///
/// Returns the error instead when the query fails before its first rows are sent.
pub async fn respond<F>(
    state: &AppState,
    format: Format,
    mut headers: HeaderMap,
    start: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&DataPlane, CancelToken) -> agnes_core::Result<QueryStream> + Send + 'static,
{
    let (ready, started) = oneshot::channel::<agnes_core::Result<()>>();
    let (frames, body) = mpsc::channel::<FrameResult>(QUEUED_CHUNKS);
    let plane = state.plane().clone();
    // Until the response exists, a client that goes away drops this future, and the guard stops
    // the query; afterwards a closed body ends it at the next chunk.
    let cancel = CancelToken::default();
    let guard = CancelOnDrop(Some(cancel.clone()));
    tokio::task::spawn_blocking(move || {
        let stream = match start(&plane, cancel).and_then(|s| format.check(&s.schema()).map(|()| s))
        {
            Ok(stream) => stream,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        send_rows(stream, format, frames);
    });
    match started.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(ApiError(error)),
        Err(_) => {
            return Err(ApiError(Error::internal(
                "the query thread ended without a result",
            )));
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    headers.insert(
        header::TRAILER,
        HeaderValue::from_static("agnes-row-count, agnes-truncated"),
    );
    guard.disarm();
    let mut response = Response::new(Body::new(ChannelBody { frames: body }));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().extend(headers);
    Ok(response)
}

/// Writes the rows to the channel, then the trailers or, on failure, an error that aborts the
/// body.
fn send_rows(stream: QueryStream, format: Format, frames: mpsc::Sender<FrameResult>) {
    let runtime = tokio::runtime::Handle::current();
    let writer = ChannelWriter {
        frames: frames.clone(),
        buffer: Vec::with_capacity(CHUNK),
        runtime: runtime.clone(),
    };
    match stream.write_to(format, writer) {
        Ok((written, mut writer)) => {
            if writer.send_buffer().is_err() {
                return;
            }
            let mut trailers = HeaderMap::new();
            trailers.insert(
                HeaderName::from_static(ROW_COUNT_TRAILER),
                HeaderValue::from(written.row_count),
            );
            trailers.insert(
                HeaderName::from_static(TRUNCATED_TRAILER),
                HeaderValue::from_static(if written.truncated { "true" } else { "false" }),
            );
            let _ = send_frame(&runtime, &frames, Ok(Frame::trailers(trailers)));
        }
        Err(error) if error.code == "query.write_failed" => {
            tracing::info!(error = %error.message, "a query result was not sent to the end");
        }
        Err(error) => {
            tracing::warn!(code = error.code, error = %error.message, "a query failed while its result was being sent");
            let _ = send_frame(&runtime, &frames, Err(io::Error::other(error.message)));
        }
    }
}

/// A [`Write`] that hands its bytes to the response body in chunks.
struct ChannelWriter {
    frames: mpsc::Sender<FrameResult>,
    buffer: Vec<u8>,
    runtime: tokio::runtime::Handle,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        send_frame(&self.runtime, &self.frames, Ok(Frame::data(chunk)))
    }
}

/// Hands one frame to the body, waiting at most [`STALL_TIMEOUT`] for the client to read.
fn send_frame(
    runtime: &tokio::runtime::Handle,
    frames: &mpsc::Sender<FrameResult>,
    frame: FrameResult,
) -> io::Result<()> {
    match runtime.block_on(tokio::time::timeout(STALL_TIMEOUT, frames.send(frame))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the client went away",
        )),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {} s", STALL_TIMEOUT.as_secs()),
        )),
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body fed by the query thread.
struct ChannelBody {
    frames: mpsc::Receiver<FrameResult>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.frames.poll_recv(cx)
    }
}

/// Cancels a query when dropped, unless disarmed first.
struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}
