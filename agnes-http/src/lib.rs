//! The HTTP adapter of Agnes: maps requests to `agnes-core` calls and core errors to JSON.
//!
//! [`router`] builds the whole application as an axum [`Router`], which tests drive without a
//! socket; [`serve`] runs it on a listener until a shutdown signal and then checkpoints the state
//! database. Handlers hold no business rules: they parse the request, call an [`Instance`]
//! method on a blocking thread (DuckDB calls block) and render the result or the
//! [`error::ApiError`]. Every response carries an `x-request-id` (the client's, or a new UUID),
//! which also names the request's tracing span.

#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
mod middleware;
pub mod routes;
mod server;
pub mod stream;

use std::sync::Arc;

use agnes_core::sync::{DataPlane, PlaneOptions};
use agnes_core::{Error, Instance};
use axum::Router;

pub use routes::{ROUTES, SETUP_PATHS, openapi};
pub use server::{serve, shutdown_signal};

/// State shared by all handlers: the open instance and its data plane.
#[derive(Clone)]
pub struct AppState {
    instance: Arc<Instance>,
    plane: Arc<DataPlane>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Wraps an open instance and the data plane opened on it.
    pub fn new(instance: Arc<Instance>, plane: Arc<DataPlane>) -> Self {
        Self { instance, plane }
    }

    /// Opens the data plane of `instance` with `options` and wraps both.
    ///
    /// Fails when the analytics database cannot be built or opened.
    pub fn open(instance: Arc<Instance>, options: PlaneOptions) -> agnes_core::Result<Self> {
        let plane = DataPlane::open(Arc::clone(&instance), options)?;
        Ok(Self::new(instance, plane))
    }

    /// Returns the instance.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Returns the data plane: sources, sync jobs, the catalog and queries.
    pub fn plane(&self) -> &Arc<DataPlane> {
        &self.plane
    }

    /// Runs `call` with the instance on a blocking thread, so DuckDB work never stalls the async
    /// workers, and returns its result. A panic in `call` becomes an `internal` error.
    pub async fn blocking<T, F>(&self, call: F) -> Result<T, error::ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Instance) -> agnes_core::Result<T> + Send + 'static,
    {
        let instance = Arc::clone(&self.instance);
        let joined = tokio::task::spawn_blocking(move || call(&instance)).await;
        match joined {
            Ok(result) => result.map_err(error::ApiError),
            Err(e) => Err(error::ApiError(Error::internal(format!(
                "a blocking task failed: {e}"
            )))),
        }
    }
}

/// Builds the application: every route, the setup-mode gate, request ids and request tracing.
pub fn router(state: AppState) -> Router {
    middleware::wrap(routes::routes(), state)
}
