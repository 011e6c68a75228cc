//! The route table, the router and the OpenAPI document agree.

use std::collections::BTreeSet;
use std::sync::Arc;

use agnes_core::auth::session::BootstrapRequest;
use agnes_core::{Instance, Settings};
use agnes_http::{AppState, ROUTES, openapi, router};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

#[test]
fn openapi_lists_every_route() {
    let document = serde_json::to_value(openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();

    assert_eq!(documented, table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_serves_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Arc::new(Instance::open_with(dir.path(), Settings::default()).unwrap());
    let request = BootstrapRequest {
        email: "admin@example.com".to_string(),
        name: String::new(),
        password: "long enough".to_string(),
    };
    instance.bootstrap(&request, None).unwrap();
    let options = agnes_core::sync::PlaneOptions {
        connectors_dir: dir.path().join("connectors"),
        engine: agnes_core::query::EngineSettings::default(),
        policy: agnes_core::remote::RemotePolicy::default(),
    };
    let app = router(AppState::open(Arc::clone(&instance), options).expect("data plane opens"));

    for (method, path) in ROUTES {
        let uri = path.replace("{id}", "some-id");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} is not routed"
        );
        assert!(
            !text.contains("route.not_found"),
            "{method} {uri} is not routed: {text}"
        );
    }

    let request = Request::builder()
        .uri("/not/a/route")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
