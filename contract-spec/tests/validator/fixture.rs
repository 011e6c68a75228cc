//! Builds real extracts on disk: a DuckDB file, Parquet data and views, as a connector writes them.

use std::path::{Path, PathBuf};

use contract_spec::identifier::{quote_identifier as ident, quote_literal as lit};
use contract_spec::{QueryMode, Report};
use duckdb::Connection;
use tempfile::TempDir;

/// One table a generated extract publishes.
#[derive(Debug, Clone)]
pub struct TableGen {
    pub name: String,
    pub mode: QueryMode,
    pub rows: u32,
}

/// One `_remote_attach` row of a generated extract.
#[derive(Debug, Clone)]
pub struct AttachGen {
    pub alias: String,
    pub extension: String,
    pub url: String,
    pub token_env: Option<String>,
}

/// The whole shape of a generated extract.
#[derive(Debug, Clone)]
pub struct ExtractGen {
    pub source: String,
    pub tables: Vec<TableGen>,
    pub attach: Vec<AttachGen>,
}

/// An extract inside a temporary data directory: `<tmp>/extracts/<source>/extract.duckdb`.
pub struct Fixture {
    pub root: TempDir,
    pub source: String,
    pub spec: ExtractGen,
}

/// The canonical `_meta` DDL of the contract.
pub const META_DDL: &str = "CREATE TABLE _meta (table_name VARCHAR NOT NULL, description VARCHAR, \
    rows BIGINT, size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR NOT NULL)";

/// The `_remote_attach` DDL the original connectors wrote.
pub const REMOTE_ATTACH_DDL: &str = "CREATE TABLE _remote_attach (alias VARCHAR, extension VARCHAR, url VARCHAR, token_env VARCHAR)";

impl Fixture {
    /// Writes the extract that `spec` describes.
    pub fn build(spec: &ExtractGen) -> Fixture {
        let root = TempDir::new().expect("temp dir");
        let fixture = Fixture {
            root,
            source: spec.source.clone(),
            spec: spec.clone(),
        };
        std::fs::create_dir_all(fixture.data_dir()).expect("data dir");

        let conn = fixture.open();
        conn.execute_batch(META_DDL).unwrap();
        for table in &spec.tables {
            fixture.write_table(&conn, table);
        }
        if !spec.attach.is_empty() {
            conn.execute_batch(REMOTE_ATTACH_DDL).unwrap();
            for row in &spec.attach {
                conn.execute(
                    "INSERT INTO _remote_attach VALUES (?, ?, ?, ?)",
                    duckdb::params![row.alias, row.extension, row.url, row.token_env],
                )
                .unwrap();
            }
        }
        drop(conn);
        fixture
    }

    fn write_table(&self, conn: &Connection, table: &TableGen) {
        let name = &table.name;
        match table.mode {
            QueryMode::Local | QueryMode::Materialized => {
                let file = self.parquet(name);
                conn.execute_batch(&format!(
                    "COPY (SELECT range AS id, 'row ' || range AS label FROM range({})) TO {} (FORMAT PARQUET);
                     CREATE VIEW {} AS SELECT * FROM read_parquet({});",
                    table.rows,
                    lit(&file.to_string_lossy()),
                    ident(name),
                    lit(&file.to_string_lossy()),
                ))
                .unwrap();
            }
            QueryMode::Remote => {
                let alias = self
                    .spec
                    .attach
                    .first()
                    .map(|a| a.alias.clone())
                    .unwrap_or_else(|| "pg".into());
                conn.execute_batch(&format!(
                    "ATTACH ':memory:' AS {a};
                     CREATE TABLE {a}.{t} AS SELECT range AS id FROM range({n});
                     CREATE VIEW {t} AS SELECT * FROM {a}.{t};
                     DETACH {a};",
                    a = ident(&alias),
                    t = ident(name),
                    n = table.rows,
                ))
                .unwrap();
            }
        }
        let size = std::fs::metadata(self.parquet(name))
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        conn.execute(
            "INSERT INTO _meta VALUES (?, ?, ?, ?, TIMESTAMP '2026-12-01 10:00:00', ?)",
            duckdb::params![
                name,
                format!("Table {name}"),
                table.rows as i64,
                size,
                table.mode.as_str()
            ],
        )
        .unwrap();
    }

    /// The source folder: `<tmp>/extracts/<source>`.
    pub fn source_dir(&self) -> PathBuf {
        self.root.path().join("extracts").join(&self.source)
    }

    /// The source's `data/` folder.
    pub fn data_dir(&self) -> PathBuf {
        self.source_dir().join("data")
    }

    /// The extract file.
    pub fn path(&self) -> PathBuf {
        self.source_dir().join("extract.duckdb")
    }

    /// The Parquet file of table `name`.
    pub fn parquet(&self, name: &str) -> PathBuf {
        self.data_dir().join(format!("{name}.parquet"))
    }

    /// Opens the extract read-write, as a connector does.
    pub fn open(&self) -> Connection {
        Connection::open(self.path()).expect("open extract")
    }

    /// Runs `sql` against the extract read-write and closes it again.
    pub fn exec(&self, sql: &str) {
        let conn = self.open();
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Validates the extract.
    pub fn validate(&self) -> Report {
        contract_spec::validate(&self.path())
    }

    /// The first table whose data lives in the source folder, if any.
    pub fn offline_table(&self) -> Option<&TableGen> {
        self.spec.tables.iter().find(|t| t.mode.resolves_offline())
    }
}

/// Writes a Parquet file with one column at `path`, outside any extract.
pub fn write_parquet(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT 1 AS id) TO {} (FORMAT PARQUET)",
        lit(&path.to_string_lossy())
    ))
    .unwrap();
}

/// A small valid extract with one local table and one remote table.
pub fn sample() -> ExtractGen {
    ExtractGen {
        source: "sales".into(),
        tables: vec![
            TableGen {
                name: "orders".into(),
                mode: QueryMode::Local,
                rows: 5,
            },
            TableGen {
                name: "customers".into(),
                mode: QueryMode::Remote,
                rows: 3,
            },
        ],
        attach: vec![AttachGen {
            alias: "pg".into(),
            extension: "postgres".into(),
            url: "host=localhost dbname=crm user=agnes".into(),
            token_env: Some("PG_PASSWORD".into()),
        }],
    }
}
