//! `GET /api/admin/connectors`: the connectors this build can configure, with their fields.

use agnes_core::connector::built_in::{self, ConnectorSpec};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::extract::{Admin, Json};

/// The response of `GET /api/admin/connectors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    /// Built-in connectors, in the order a form offers them.
    pub connectors: Vec<ConnectorSpec>,
}

/// Lists the connectors `POST /api/admin/configure` accepts, with the fields each takes.
#[utoipa::path(get, path = "/api/admin/connectors", tag = "data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Built-in connectors and their fields", body = ConnectorList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn list(Admin(_admin): Admin) -> Json<ConnectorList> {
    Json(ConnectorList {
        connectors: built_in::built_in(),
    })
}
