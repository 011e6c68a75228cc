//! Validator tests on real extracts that the tests write with DuckDB.
//!
//! `fixture` builds extracts the way connectors do; `mutations` breaks one contract rule at a
//! time. The property tests check that every generated valid extract validates clean and that
//! every mutation yields exactly its own error code.

mod fixture;
mod mutations;

use std::collections::BTreeSet;

use contract_spec::{Code, QueryMode, Severity};
use proptest::prelude::*;

use fixture::{AttachGen, ExtractGen, Fixture, TableGen, sample};
use mutations::Mutation;

fn error_codes(report: &contract_spec::Report) -> BTreeSet<&'static str> {
    report.error_codes().into_iter().map(Code::as_str).collect()
}

#[test]
fn sample_extract_is_clean() {
    let fixture = Fixture::build(&sample());
    let report = fixture.validate();
    assert_eq!(report.findings, vec![], "{report:#?}");
    assert_eq!(report.source, "sales");
    assert_eq!(report.tables, ["orders", "customers"]);
}

#[test]
fn original_connector_ddl_warns_only() {
    let fixture = Fixture::build(&sample());
    fixture.exec(
        "CREATE TABLE meta_copy (table_name VARCHAR NOT NULL, description VARCHAR, rows BIGINT, \
         size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR DEFAULT 'local');
         INSERT INTO meta_copy SELECT * FROM _meta;
         DROP TABLE _meta;
         ALTER TABLE meta_copy RENAME TO _meta;",
    );
    let report = fixture.validate();
    assert!(report.is_valid(), "{report:#?}");
    let codes: Vec<Code> = report.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [Code::MetaColumnNullable]);
    assert_eq!(report.findings[0].column.as_deref(), Some("query_mode"));
}

#[test]
fn compatible_type_warns() {
    let fixture = Fixture::build(&sample());
    fixture.exec(
        "CREATE TABLE meta_copy AS SELECT table_name, description, CAST(rows AS INTEGER) AS rows, size_bytes, \
         extracted_at, query_mode FROM _meta;
         DROP TABLE _meta;
         ALTER TABLE meta_copy RENAME TO _meta;",
    );
    let report = fixture.validate();
    assert!(report.is_valid(), "{report:#?}");
    assert!(report.has(Code::MetaColumnTypeCompatible));
}

#[test]
fn validation_leaves_file_untouched() {
    let fixture = Fixture::build(&sample());
    let before = std::fs::read(fixture.path()).unwrap();
    let mtime = std::fs::metadata(fixture.path())
        .unwrap()
        .modified()
        .unwrap();
    let listing = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let files_before = listing(&fixture.source_dir());

    for _ in 0..3 {
        assert!(fixture.validate().is_valid());
    }

    assert_eq!(std::fs::read(fixture.path()).unwrap(), before);
    assert_eq!(
        std::fs::metadata(fixture.path())
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert_eq!(listing(&fixture.source_dir()), files_before);
}

#[test]
fn missing_file_is_finding() {
    let dir = tempfile::tempdir().unwrap();
    let report = contract_spec::validate(&dir.path().join("nope").join("extract.duckdb"));
    assert_eq!(error_codes(&report), BTreeSet::from(["file.missing"]));
}

#[test]
fn folder_instead_of_file_is_finding() {
    let fixture = Fixture::build(&sample());
    let report = contract_spec::validate(&fixture.source_dir());
    assert_eq!(error_codes(&report), BTreeSet::from(["file.not_duckdb"]));
}

#[test]
fn unsafe_source_folder_is_finding() {
    let mut spec = sample();
    spec.source = "crm-prod".into();
    let fixture = Fixture::build(&spec);
    let report = fixture.validate();
    assert_eq!(error_codes(&report), BTreeSet::from(["source.name_unsafe"]));
    assert!(report.findings[0].hint.contains("Rename the folder"));
}

#[test]
fn view_of_other_source_is_outside() {
    let fixture = Fixture::build(&sample());
    let other = fixture
        .root
        .path()
        .join("extracts")
        .join("hr")
        .join("data")
        .join("salaries.parquet");
    fixture::write_parquet(&other);
    fixture.exec(&format!(
        "CREATE OR REPLACE VIEW orders AS SELECT * FROM read_parquet('{}')",
        other.display()
    ));
    let report = fixture.validate();
    assert_eq!(
        error_codes(&report),
        BTreeSet::from(["table.file_outside_source"])
    );
    assert_eq!(report.findings[0].table.as_deref(), Some("orders"));
}

#[test]
fn dot_dot_path_is_outside() {
    let fixture = Fixture::build(&sample());
    let outside = fixture.root.path().join("elsewhere").join("x.parquet");
    fixture::write_parquet(&outside);
    let sneaky = fixture
        .data_dir()
        .join("..")
        .join("..")
        .join("..")
        .join("elsewhere")
        .join("x.parquet");
    fixture.exec(&format!(
        "CREATE OR REPLACE VIEW orders AS SELECT * FROM '{}'",
        sneaky.display()
    ));
    let report = fixture.validate();
    assert_eq!(
        error_codes(&report),
        BTreeSet::from(["table.file_outside_source"])
    );
}

#[test]
fn glob_views_checked() {
    let fixture = Fixture::build(&sample());
    let partitions = fixture.data_dir().join("orders");
    fixture::write_parquet(&partitions.join("2026-11.parquet"));
    fixture::write_parquet(&partitions.join("2026-12.parquet"));
    fixture.exec(&format!(
        "CREATE OR REPLACE VIEW orders AS SELECT * FROM read_parquet(['{}/*.parquet'], union_by_name = true)",
        partitions.display()
    ));
    let report = fixture.validate();
    assert!(report.is_valid(), "{report:#?}");

    std::fs::remove_dir_all(&partitions).unwrap();
    std::fs::create_dir_all(&partitions).unwrap();
    let report = fixture.validate();
    assert_eq!(error_codes(&report), BTreeSet::from(["table.file_missing"]));
}

#[test]
fn token_env_secret_never_echoed() {
    let fixture = Fixture::build(&sample());
    let secret = "sk-live-9f8e7d6c5b4a3210";
    Mutation::TokenEnvSecret(secret.into()).apply(&fixture);
    let report = fixture.validate();
    assert_eq!(
        error_codes(&report),
        BTreeSet::from(["remote_attach.token_env_invalid"])
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(secret), "{json}");
    assert!(!json.contains("9f8e7d"), "{json}");
}

#[test]
fn url_password_never_echoed() {
    let fixture = Fixture::build(&sample());
    Mutation::UrlWithPassword.apply(&fixture);
    let json = serde_json::to_string(&fixture.validate()).unwrap();
    assert!(json.contains("remote_attach.url_secret"), "{json}");
    assert!(!json.contains("hunter2"), "{json}");
}

#[test]
fn findings_carry_location_and_hint() {
    let fixture = Fixture::build(&sample());
    Mutation::NegativeRows(-5).apply(&fixture);
    let report = fixture.validate();
    let finding = &report.findings[0];
    assert_eq!(finding.code, Code::MetaRowsNegative);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.table.as_deref(), Some("_meta"));
    assert_eq!(finding.row, Some(1));
    assert_eq!(finding.column.as_deref(), Some("rows"));
    assert!(finding.message.contains("-5"), "{}", finding.message);
    assert!(!finding.hint.is_empty());
    assert_eq!(report.tables, ["customers"]);
}

#[test]
fn tree_validates_every_source() {
    let fixture = Fixture::build(&sample());
    let broken = fixture.root.path().join("extracts").join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("extract.duckdb"), b"").unwrap();
    std::fs::create_dir_all(fixture.root.path().join("extracts").join("pending")).unwrap();
    std::fs::create_dir_all(fixture.root.path().join("extracts").join(".incoming")).unwrap();

    let reports = contract_spec::validate_tree(fixture.root.path()).unwrap();
    let sources: Vec<&str> = reports.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(sources, ["broken", "pending", "sales"]);
    assert_eq!(error_codes(&reports[0]), BTreeSet::from(["file.empty"]));
    assert!(reports[1].has(Code::SourceNoExtract));
    assert!(reports[1].is_valid());
    assert!(reports[2].is_valid());

    assert!(contract_spec::validate_tree(&fixture.root.path().join("absent")).is_err());
}

/// Lowercase identifiers that are valid table names.
fn table_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn table_gen() -> impl Strategy<Value = TableGen> {
    (
        table_name(),
        prop_oneof![
            Just(QueryMode::Local),
            Just(QueryMode::Materialized),
            Just(QueryMode::Remote)
        ],
        0u32..50,
    )
        .prop_map(|(name, mode, rows)| TableGen { name, mode, rows })
}

/// Valid extracts whose first table is local or materialized.
fn extract_gen() -> impl Strategy<Value = ExtractGen> {
    (
        table_name(),
        prop::collection::vec(table_gen(), 1..5),
        "[a-z]{2,8}",
        prop::option::of("[A-Z][A-Z0-9_]{0,20}"),
    )
        .prop_filter_map(
            "names must differ",
            |(source, mut tables, alias, token_env)| {
                let mut seen = BTreeSet::new();
                tables.retain(|t| seen.insert(t.name.clone()));
                tables[0].mode = QueryMode::Local;
                if ["main", "memory", "system", "temp"].contains(&alias.as_str()) || alias == source
                {
                    return None;
                }
                if tables.iter().any(|t| t.name == alias) {
                    return None;
                }
                let attach = if tables.iter().any(|t| t.mode == QueryMode::Remote) {
                    vec![AttachGen {
                        alias,
                        extension: "postgres".into(),
                        url: "host=localhost dbname=warehouse user=agnes".into(),
                        token_env,
                    }]
                } else {
                    vec![]
                };
                Some(ExtractGen {
                    source,
                    tables,
                    attach,
                })
            },
        )
}

/// Names that break the identifier rule in each way the contract names.
fn unsafe_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,5} [a-z]{1,5}",
        "[a-z]{1,5}\"[a-z]{1,5}",
        "[a-z]{1,5}'[a-z]{1,5}",
        "[a-z]{1,5};[a-z]{1,5}",
        "[a-z]{0,3}[áéíóúčř][a-z]{0,3}",
        "[0-9][a-z0-9_]{0,10}",
        "[a-z]{65,80}",
        "[a-z]{1,4}[.\\-][a-z]{1,4}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::DropMeta),
        (0usize..6).prop_map(Mutation::DropMetaColumn),
        Just(Mutation::ExtraMetaColumn),
        (0usize..6, 0usize..6)
            .prop_filter("distinct", |(a, b)| a != b)
            .prop_map(|(a, b)| Mutation::SwapMetaColumns(a, b)),
        prop_oneof![Just("rows"), Just("size_bytes"), Just("extracted_at")]
            .prop_map(Mutation::MetaColumnAsVarchar),
        Just(Mutation::NullName),
        unsafe_name().prop_map(Mutation::UnsafeName),
        Just(Mutation::ReservedName),
        Just(Mutation::DuplicateName),
        Just(Mutation::CaseDuplicateName),
        Just(Mutation::DropView),
        Just(Mutation::UnresolvedView),
        (i64::MIN..0).prop_map(Mutation::NegativeRows),
        (i64::MIN..0).prop_map(Mutation::NegativeSize),
        prop_oneof![
            Just("LOCAL".to_string()),
            Just("hybrid".to_string()),
            "[a-z]{3,9}".prop_filter("not a mode", |m| QueryMode::parse(m).is_none())
        ]
        .prop_map(Mutation::UnknownMode),
        Just(Mutation::FileOutsideSource),
        Just(Mutation::FileMissing),
        Just(Mutation::FileRelative),
        Just(Mutation::SymlinkOutside),
        unsafe_name().prop_map(Mutation::AliasUnsafe),
        Just(Mutation::AliasIsSource),
        Just(Mutation::AliasDuplicate),
        unsafe_name().prop_map(Mutation::ExtensionUnsafe),
        Just(Mutation::UrlMissing),
        Just(Mutation::UrlWithPassword),
        "[a-z0-9+/=-]{20,40}"
            .prop_filter("not a name", |s| {
                !contract_spec::identifier::is_env_var_name(s)
            })
            .prop_map(Mutation::TokenEnvSecret),
        Just(Mutation::RemoteWithoutAttach),
        Just(Mutation::EmptyFile),
        Just(Mutation::NotDuckdb),
        Just(Mutation::CorruptDuckdb),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_valid_extract_is_clean(spec in extract_gen()) {
        let fixture = Fixture::build(&spec);
        let report = fixture.validate();
        prop_assert_eq!(&report.findings, &vec![], "{:#?}", report);
        let names: Vec<String> = spec.tables.iter().map(|t| t.name.clone()).collect();
        prop_assert_eq!(report.tables, names);
    }

    #[test]
    fn each_mutation_yields_its_code(spec in extract_gen(), mutation in mutation()) {
        let fixture = Fixture::build(&spec);
        prop_assert!(fixture.offline_table().is_some());
        mutation.apply(&fixture);
        let report = fixture.validate();
        let expected = BTreeSet::from([mutation.expected().as_str()]);
        prop_assert_eq!(error_codes(&report), expected, "{:?} gave {:#?}", mutation, report.findings);
        let finding = report.findings.iter().find(|f| f.code == mutation.expected()).unwrap();
        prop_assert!(!finding.message.is_empty());
        prop_assert!(!finding.hint.is_empty());
    }
}
