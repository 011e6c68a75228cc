//! Table grants over HTTP: an analyst reads a private table only while it is granted to them,
//! and a revoke takes effect with the very next request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixture::{TestServer, code, token};

/// What the analyst sees of table `salaries`: whether the catalog lists it, the status and code
/// of a query on it with its first value, and the status of its download.
#[derive(Debug, PartialEq)]
struct View {
    in_catalog: bool,
    query: (StatusCode, String),
    download: StatusCode,
}

async fn analyst_view(server: &TestServer, analyst: &str) -> View {
    let (status, catalog) = server.get("/api/catalog/tables", Some(analyst)).await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    let names: Vec<&str> = catalog["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"open"), "{names:?}");
    let (status, result) = server
        .post(
            "/api/query",
            Some(analyst),
            json!({"sql": "SELECT sum(salary) FROM salaries"}),
        )
        .await;
    let answer = if status == StatusCode::OK {
        result["rows"][0][0].to_string()
    } else {
        code(&result).to_string()
    };
    let response = server
        .raw()
        .get(format!("{}/api/data/salaries/download", server.base))
        .bearer_auth(analyst)
        .send()
        .await
        .unwrap();
    let download = response.status();
    let body = response.bytes().await.unwrap();
    if download == StatusCode::OK {
        assert!(body.starts_with(b"PAR1"), "the download is not Parquet");
    } else {
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code(&error), "data.table_not_found");
    }
    View {
        in_catalog: names.contains(&"salaries"),
        query: (status, answer),
        download,
    }
}

fn denied() -> View {
    View {
        in_catalog: false,
        query: (StatusCode::FORBIDDEN, "query.table_denied".to_string()),
        download: StatusCode::NOT_FOUND,
    }
}

fn allowed() -> View {
    View {
        in_catalog: true,
        query: (StatusCode::OK, "200000".to_string()),
        download: StatusCode::OK,
    }
}

#[tokio::test]
async fn grant_and_revoke_a_private_table() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("open.csv"), "id\n1\n").unwrap();
    std::fs::write(
        folder.join("salaries.csv"),
        "id,salary\n1,120000\n2,80000\n",
    )
    .unwrap();
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;

    let (status, ana) = server
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "ana@example.com", "password": "analyst-password", "role": "analyst"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ana}");
    let ana_id = ana["id"].as_str().unwrap().to_string();
    let (_, login) = server.login("ana@example.com", "analyst-password").await;
    let analyst = token(&login);
    let (status, body) = server
        .request(
            Method::PUT,
            "/api/admin/registry/salaries",
            Some(&admin),
            Some(json!({"is_public": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(analyst_view(&server, &analyst).await, denied());

    // The grant routes are for admins only.
    for (method, path) in [
        (Method::GET, "/api/admin/grants".to_string()),
        (
            Method::PUT,
            format!("/api/admin/registry/salaries/grants/{ana_id}"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/registry/salaries/grants/{ana_id}"),
        ),
    ] {
        let (status, body) = server
            .request(method.clone(), &path, Some(&analyst), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(code(&body), "auth.forbidden");
        let (status, _) = server.request(method.clone(), &path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(analyst_view(&server, &analyst).await, denied());

    // Granted by email: the next request reads it. Granting again changes nothing.
    let path = "/api/admin/registry/Salaries/grants/ANA@example.com";
    let (status, granted) = server.request(Method::PUT, path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    assert_eq!(granted["table_id"], "salaries");
    assert_eq!(granted["user_id"], ana_id.as_str());
    assert_eq!(granted["email"], "ana@example.com");
    assert_eq!(granted["created"], true);
    assert_eq!(granted["notes"], json!([]));
    assert_eq!(analyst_view(&server, &analyst).await, allowed());
    let (status, again) = server.request(Method::PUT, path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["granted_at"], granted["granted_at"]);

    // A grant to an admin is stored and explained.
    let (status, to_admin) = server
        .request(
            Method::PUT,
            "/api/admin/registry/salaries/grants/admin@example.com",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{to_admin}");
    assert!(
        to_admin["notes"][0]
            .as_str()
            .unwrap()
            .contains("is an admin"),
        "{to_admin}"
    );

    // Listing, with and without filters.
    let (status, all) = server.get("/api/admin/grants", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["count"], 2);
    let emails: Vec<&str> = all["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@example.com", "ana@example.com"]);
    let (status, mine) = server
        .get("/api/admin/grants?user=ana%40example.com", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["grants"][0]["table_id"], "salaries");
    let (status, open) = server
        .get("/api/admin/grants?table=open", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{open}");
    assert_eq!(open["count"], 0);

    // Unknown names: a 404 that names the value and where to look.
    let unknown = [
        (
            "/api/admin/grants?table=nope",
            Method::GET,
            "registry.not_found",
            "nope",
        ),
        (
            "/api/admin/grants?user=who%40example.com",
            Method::GET,
            "user.not_found",
            "who@example.com",
        ),
        (
            "/api/admin/registry/nope/grants/ana@example.com",
            Method::PUT,
            "registry.not_found",
            "nope",
        ),
        (
            "/api/admin/registry/salaries/grants/who@example.com",
            Method::PUT,
            "user.not_found",
            "who@example.com",
        ),
        (
            "/api/admin/registry/salaries/grants/no-such-id",
            Method::DELETE,
            "user.not_found",
            "no-such-id",
        ),
    ];
    for (path, method, expected, value) in unknown {
        let (status, body) = server.request(method, path, Some(&admin), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(code(&body), expected, "{path}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(value),
            "{body}"
        );
        assert!(body["error"]["hint"].is_string(), "{body}");
    }

    // Revoked by id: the very next request is denied again, although the analyst's token was
    // verified a moment before and is still remembered.
    assert_eq!(analyst_view(&server, &analyst).await, allowed());
    let path = format!("/api/admin/registry/salaries/grants/{ana_id}");
    let (status, revoked) = server
        .request(Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], true);
    assert_eq!(analyst_view(&server, &analyst).await, denied());
    let (status, twice) = server
        .request(Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{twice}");
    assert_eq!(twice["revoked"], false);
    let (_, left) = server.get("/api/admin/grants", Some(&admin)).await;
    assert_eq!(left["count"], 1, "{left}");
    assert_eq!(left["grants"][0]["email"], "admin@example.com");

    // Every grant and revoke is in the audit log.
    let audited: Vec<String> = server
        .instance
        .state()
        .with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT action || ' ' || resource || ' ' || CAST(params->>'email' AS VARCHAR) \
                     FROM audit_log WHERE action LIKE 'table.%' ORDER BY occurred_at, rowid",
                )
                .unwrap();
            let rows = stmt.query_map([], |row| row.get(0)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap();
    assert_eq!(
        audited,
        [
            "table.grant salaries ana@example.com",
            "table.grant salaries ana@example.com",
            "table.grant salaries admin@example.com",
            "table.revoke salaries ana@example.com",
            "table.revoke salaries ana@example.com",
        ]
    );
    server.stop().await;
}
