//! Mutations that break one rule of the contract each, and the finding code each must produce.

use contract_spec::Code;
use contract_spec::identifier::{quote_identifier as ident, quote_literal as lit};

use crate::fixture::{Fixture, REMOTE_ATTACH_DDL, write_parquet};

/// One way to break a valid extract.
#[derive(Debug, Clone)]
pub enum Mutation {
    DropMeta,
    DropMetaColumn(usize),
    ExtraMetaColumn,
    SwapMetaColumns(usize, usize),
    MetaColumnAsVarchar(&'static str),
    NullName,
    UnsafeName(String),
    ReservedName,
    DuplicateName,
    CaseDuplicateName,
    DropView,
    UnresolvedView,
    NegativeRows(i64),
    NegativeSize(i64),
    UnknownMode(String),
    FileOutsideSource,
    FileMissing,
    FileRelative,
    SymlinkOutside,
    AliasUnsafe(String),
    AliasIsSource,
    AliasDuplicate,
    ExtensionUnsafe(String),
    UrlMissing,
    UrlWithPassword,
    TokenEnvSecret(String),
    RemoteWithoutAttach,
    EmptyFile,
    NotDuckdb,
    CorruptDuckdb,
}

const META_COLUMNS: [&str; 6] = [
    "table_name",
    "description",
    "rows",
    "size_bytes",
    "extracted_at",
    "query_mode",
];

impl Mutation {
    /// The one error code the mutation must produce.
    pub fn expected(&self) -> Code {
        match self {
            Mutation::DropMeta => Code::MetaMissing,
            Mutation::DropMetaColumn(_) => Code::MetaColumnMissing,
            Mutation::ExtraMetaColumn => Code::MetaColumnExtra,
            Mutation::SwapMetaColumns(..) => Code::MetaColumnOrder,
            Mutation::MetaColumnAsVarchar(_) => Code::MetaColumnType,
            Mutation::NullName => Code::MetaNameNull,
            Mutation::UnsafeName(_) => Code::MetaNameUnsafe,
            Mutation::ReservedName => Code::MetaNameReserved,
            Mutation::DuplicateName => Code::MetaNameDuplicate,
            Mutation::CaseDuplicateName => Code::MetaNameCaseDuplicate,
            Mutation::DropView => Code::TableMissing,
            Mutation::UnresolvedView => Code::TableUnresolved,
            Mutation::NegativeRows(_) => Code::MetaRowsNegative,
            Mutation::NegativeSize(_) => Code::MetaSizeNegative,
            Mutation::UnknownMode(_) => Code::MetaQueryModeUnknown,
            Mutation::FileOutsideSource | Mutation::SymlinkOutside => Code::TableFileOutsideSource,
            Mutation::FileMissing => Code::TableFileMissing,
            Mutation::FileRelative => Code::TableFileRelative,
            Mutation::AliasUnsafe(_) => Code::RemoteAttachAliasUnsafe,
            Mutation::AliasIsSource => Code::RemoteAttachAliasSourceCollision,
            Mutation::AliasDuplicate => Code::RemoteAttachAliasDuplicate,
            Mutation::ExtensionUnsafe(_) => Code::RemoteAttachExtensionUnsafe,
            Mutation::UrlMissing => Code::RemoteAttachUrlMissing,
            Mutation::UrlWithPassword => Code::RemoteAttachUrlSecret,
            Mutation::TokenEnvSecret(_) => Code::RemoteAttachTokenEnvInvalid,
            Mutation::RemoteWithoutAttach => Code::MetaRemoteWithoutAttach,
            Mutation::EmptyFile => Code::FileEmpty,
            Mutation::NotDuckdb => Code::FileNotDuckdb,
            Mutation::CorruptDuckdb => Code::FileUnreadable,
        }
    }

    /// Applies the mutation to `fixture`, whose first table is local or materialized.
    pub fn apply(&self, fixture: &Fixture) {
        let first = &fixture.spec.tables[0];
        let name = ident(&first.name);
        let name_lit = lit(&first.name);
        match self {
            Mutation::DropMeta => fixture.exec("DROP TABLE _meta"),
            Mutation::DropMetaColumn(index) => {
                let kept: Vec<&str> = META_COLUMNS.iter().enumerate().filter(|(i, _)| i != index).map(|(_, c)| *c).collect();
                rebuild_meta(fixture, &kept.join(", "));
            }
            Mutation::ExtraMetaColumn => fixture.exec("ALTER TABLE _meta ADD COLUMN owner VARCHAR"),
            Mutation::SwapMetaColumns(a, b) => {
                let mut order = META_COLUMNS;
                order.swap(*a, *b);
                rebuild_meta(fixture, &order.join(", "));
            }
            Mutation::MetaColumnAsVarchar(column) => {
                let select: Vec<String> = META_COLUMNS
                    .iter()
                    .map(|c| if c == column { format!("CAST({c} AS VARCHAR) AS {c}") } else { c.to_string() })
                    .collect();
                rebuild_meta(fixture, &select.join(", "));
            }
            Mutation::NullName => {
                rebuild_meta(fixture, &META_COLUMNS.join(", "));
                fixture.exec("INSERT INTO _meta VALUES (NULL, 'lost', 1, 1, NULL, 'local')");
            }
            Mutation::UnsafeName(unsafe_name) => fixture.exec(&format!(
                "ALTER VIEW {name} RENAME TO {};
                 UPDATE _meta SET table_name = {} WHERE table_name = {name_lit};",
                ident(unsafe_name),
                lit(unsafe_name)
            )),
            Mutation::ReservedName => {
                fixture.exec("INSERT INTO _meta VALUES ('_meta', 'the list itself', 1, 0, NULL, 'local')")
            }
            Mutation::DuplicateName => {
                fixture.exec(&format!("INSERT INTO _meta SELECT * FROM _meta WHERE table_name = {name_lit}"))
            }
            Mutation::CaseDuplicateName => fixture.exec(&format!(
                "INSERT INTO _meta SELECT upper(table_name), description, rows, size_bytes, extracted_at, query_mode \
                 FROM _meta WHERE table_name = {name_lit}"
            )),
            Mutation::DropView => fixture.exec(&format!("DROP VIEW {name}")),
            Mutation::UnresolvedView => fixture.exec(&format!(
                "CREATE TABLE helper_source AS SELECT 1 AS id;
                 CREATE OR REPLACE VIEW {name} AS SELECT * FROM helper_source;
                 DROP TABLE helper_source;"
            )),
            Mutation::NegativeRows(rows) => {
                fixture.exec(&format!("UPDATE _meta SET rows = {rows} WHERE table_name = {name_lit}"))
            }
            Mutation::NegativeSize(size) => {
                fixture.exec(&format!("UPDATE _meta SET size_bytes = {size} WHERE table_name = {name_lit}"))
            }
            Mutation::UnknownMode(mode) => fixture.exec(&format!(
                "UPDATE _meta SET query_mode = {} WHERE table_name = {name_lit}",
                lit(mode)
            )),
            Mutation::FileOutsideSource => {
                let outside = fixture.root.path().join("elsewhere").join("secret.parquet");
                write_parquet(&outside);
                replace_view(fixture, &format!("read_parquet({})", lit(&outside.to_string_lossy())));
            }
            Mutation::FileMissing => std::fs::remove_file(fixture.parquet(&first.name)).unwrap(),
            Mutation::FileRelative => {
                let source_dir = fixture.source_dir();
                fixture.exec(&format!(
                    "SET file_search_path = {};
                     CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({});",
                    lit(&source_dir.to_string_lossy()),
                    lit(&format!("data/{}.parquet", first.name))
                ));
            }
            Mutation::SymlinkOutside => {
                let outside = fixture.root.path().join("elsewhere").join("linked.parquet");
                write_parquet(&outside);
                let link = fixture.data_dir().join("linked.parquet");
                std::os::unix::fs::symlink(&outside, &link).unwrap();
                replace_view(fixture, &format!("read_parquet({})", lit(&link.to_string_lossy())));
            }
            Mutation::AliasUnsafe(alias) => {
                set_attach(fixture, &format!("alias = {}", lit(alias)))
            }
            Mutation::AliasIsSource => set_attach(fixture, &format!("alias = {}", lit(&fixture.source))),
            Mutation::AliasDuplicate => {
                ensure_attach(fixture);
                fixture.exec("INSERT INTO _remote_attach SELECT * FROM _remote_attach LIMIT 1");
            }
            Mutation::ExtensionUnsafe(extension) => set_attach(fixture, &format!("extension = {}", lit(extension))),
            Mutation::UrlMissing => set_attach(fixture, "url = ''"),
            Mutation::UrlWithPassword => {
                set_attach(fixture, "url = 'postgresql://agnes:hunter2@db.internal/crm'")
            }
            Mutation::TokenEnvSecret(secret) => set_attach(fixture, &format!("token_env = {}", lit(secret))),
            Mutation::RemoteWithoutAttach => {
                ensure_attach(fixture);
                fixture.exec(
                    "DELETE FROM _remote_attach;
                     CREATE TABLE helper_remote AS SELECT 1 AS id;
                     CREATE VIEW helper_remote_view AS SELECT * FROM helper_remote;
                     INSERT INTO _meta VALUES ('helper_remote_view', 'remote stand-in', 1, 0, NULL, 'remote');
                     UPDATE _meta SET query_mode = 'local' WHERE query_mode = 'remote' AND table_name <> 'helper_remote_view';"
                );
                remove_remote_views(fixture);
            }
            Mutation::EmptyFile => std::fs::write(fixture.path(), b"").unwrap(),
            Mutation::NotDuckdb => std::fs::write(fixture.path(), b"id,label\n1,one\n2,two\n").unwrap(),
            Mutation::CorruptDuckdb => {
                let mut bytes = vec![0u8; 8192];
                bytes[8..12].copy_from_slice(b"DUCK");
                std::fs::write(fixture.path(), bytes).unwrap();
            }
        }
    }
}

/// Recreates `_meta` from `select`, which drops its constraints as a connector's CTAS would.
fn rebuild_meta(fixture: &Fixture, select: &str) {
    fixture.exec(&format!(
        "CREATE TABLE meta_copy AS SELECT {select} FROM _meta;
         DROP TABLE _meta;
         ALTER TABLE meta_copy RENAME TO _meta;"
    ));
}

fn replace_view(fixture: &Fixture, from: &str) {
    let name = ident(&fixture.spec.tables[0].name);
    fixture.exec(&format!(
        "CREATE OR REPLACE VIEW {name} AS SELECT * FROM {from}"
    ));
}

fn ensure_attach(fixture: &Fixture) {
    if fixture.spec.attach.is_empty() {
        fixture.exec(&format!(
            "{REMOTE_ATTACH_DDL};
             INSERT INTO _remote_attach VALUES ('pg', 'postgres', 'host=localhost dbname=crm', 'PG_PASSWORD');"
        ));
    }
}

fn set_attach(fixture: &Fixture, assignment: &str) {
    ensure_attach(fixture);
    fixture.exec(&format!("UPDATE _remote_attach SET {assignment}"));
}

/// Marks the generated remote tables local and points their views at a table inside the extract,
/// so that only the mutation under test breaks the contract.
fn remove_remote_views(fixture: &Fixture) {
    for table in fixture
        .spec
        .tables
        .iter()
        .filter(|t| !t.mode.resolves_offline())
    {
        fixture.exec(&format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM helper_remote",
            ident(&table.name)
        ));
    }
}
