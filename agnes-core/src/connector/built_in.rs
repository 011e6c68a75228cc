//! The built-in connectors as data: what each is called and which fields configuring it takes.
//!
//! `POST /api/admin/configure` reads these fields, and the setup wizard and `agnes admin
//! connectors` show them, so a form never needs its own copy of the field list. Custom
//! connectors are not listed: they are configured by a folder with `connector.json`, not by a
//! request.

use serde::Serialize;
use utoipa::ToSchema;

/// A connector this build can configure through `POST /api/admin/configure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConnectorSpec {
    /// Value of `data_source` in the configure request.
    pub data_source: &'static str,
    /// Other accepted values of `data_source`.
    pub aliases: Vec<&'static str>,
    /// Short name for people.
    pub title: &'static str,
    /// Description of the data the connector reads and of how its tables are named.
    pub description: &'static str,
    /// Fields of the configure request, in the order a form shows them.
    pub fields: Vec<ConnectorField>,
}

/// One field of a configure request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConnectorField {
    /// Key in the JSON body of the configure request.
    pub name: &'static str,
    /// Label for a form.
    pub label: &'static str,
    /// Kind of value, which decides the input a form shows.
    pub input: FieldInput,
    /// Whether the request fails without it.
    pub required: bool,
    /// Whether the value is a secret: stored with mode 0600 and never returned by any API.
    pub secret: bool,
    /// Value used when the field is omitted.
    pub default: Option<&'static str>,
    /// Example value.
    pub placeholder: Option<&'static str>,
    /// One or two sentences on what to enter.
    pub help: &'static str,
    /// Allowed values, for [`FieldInput::Choice`].
    pub choices: Vec<FieldChoice>,
    /// Error codes of the configure request that concern this field, so a form can show the
    /// error next to it.
    pub error_codes: Vec<&'static str>,
}

/// Kind of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldInput {
    /// One line of text.
    Text,
    /// An absolute path on the server.
    Path,
    /// A secret such as a password.
    Password,
    /// One of [`ConnectorField::choices`].
    Choice,
    /// A list of strings; a form may take them comma-separated.
    List,
}

/// An allowed value of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldChoice {
    /// Value sent in the request.
    pub value: &'static str,
    /// Label for a form.
    pub label: &'static str,
    /// What choosing it does.
    pub help: &'static str,
}

/// Returns the connectors this build can configure, in the order a form offers them.
pub fn built_in() -> Vec<ConnectorSpec> {
    vec![files(), postgres()]
}

/// Returns the connector whose `data_source` or alias is `data_source`, or `None`.
pub fn find(data_source: &str) -> Option<ConnectorSpec> {
    built_in()
        .into_iter()
        .find(|c| c.data_source == data_source || c.aliases.contains(&data_source))
}

fn source_name_field(default: &'static str) -> ConnectorField {
    ConnectorField {
        name: "name",
        label: "Source name",
        input: FieldInput::Text,
        required: false,
        secret: false,
        default: Some(default),
        placeholder: Some(default),
        help: "Names the source in the catalog and in sync jobs. Letters, digits and \
               underscores, starting with a letter.",
        choices: Vec::new(),
        error_codes: vec!["sources.invalid_name"],
    }
}

fn files() -> ConnectorSpec {
    ConnectorSpec {
        data_source: "files",
        aliases: vec!["local", "csv"],
        title: "Folder of files",
        description: "CSV, TSV, Parquet, JSON or NDJSON files in one folder on the server, one \
                      table per file, named after the file.",
        fields: vec![
            source_name_field("files"),
            ConnectorField {
                name: "path",
                label: "Folder path on the server",
                input: FieldInput::Path,
                required: true,
                secret: false,
                default: None,
                placeholder: Some("/srv/data/csv"),
                help: "The absolute path of a folder the server can read. In a container, \
                       mount the folder as a volume and give the path inside the container.",
                choices: Vec::new(),
                error_codes: vec![
                    "configure.missing_field",
                    "configure.path_not_absolute",
                    "configure.path_not_found",
                    "configure.path_is_file",
                    "configure.unreachable",
                ],
            },
        ],
    }
}

fn postgres() -> ConnectorSpec {
    ConnectorSpec {
        data_source: "postgres",
        aliases: vec!["postgresql"],
        title: "PostgreSQL",
        description: "The tables of a PostgreSQL database, queried live or copied to Parquet on \
                      each sync. Tables of schema public keep their names; others become \
                      <schema>_<table>.",
        fields: vec![
            source_name_field("postgres"),
            ConnectorField {
                name: "url",
                label: "Connection string",
                input: FieldInput::Text,
                required: true,
                secret: false,
                default: None,
                placeholder: Some("host=db port=5432 dbname=crm user=agnes"),
                help: "A libpq connection string or URI, without the password.",
                choices: Vec::new(),
                error_codes: vec!["configure.missing_field", "configure.unreachable"],
            },
            ConnectorField {
                name: "password",
                label: "Password",
                input: FieldInput::Password,
                required: false,
                secret: true,
                default: None,
                placeholder: None,
                help: "Stored on the server with mode 0600 and never shown again. Leave it \
                       empty to keep the stored one.",
                choices: Vec::new(),
                error_codes: Vec::new(),
            },
            ConnectorField {
                name: "mode",
                label: "Query mode",
                input: FieldInput::Choice,
                required: false,
                secret: false,
                default: Some("remote"),
                placeholder: None,
                help: "How queries reach the data.",
                choices: vec![
                    FieldChoice {
                        value: "remote",
                        label: "Remote",
                        help: "Queries read PostgreSQL live; a sync only refreshes the views.",
                    },
                    FieldChoice {
                        value: "local",
                        label: "Local copy",
                        help: "Each sync copies every table to Parquet; queries never touch \
                               PostgreSQL.",
                    },
                ],
                error_codes: vec!["configure.invalid_mode"],
            },
            ConnectorField {
                name: "schemas",
                label: "Schemas",
                input: FieldInput::List,
                required: false,
                secret: false,
                default: None,
                placeholder: Some("public, sales"),
                help: "Schemas to offer, comma-separated. Empty offers every schema but the \
                       system ones.",
                choices: Vec::new(),
                error_codes: Vec::new(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{FieldInput, built_in, find};

    #[test]
    fn data_sources_and_aliases_are_unique() {
        let mut seen = HashSet::new();
        for connector in built_in() {
            assert!(
                seen.insert(connector.data_source),
                "{}",
                connector.data_source
            );
            for alias in &connector.aliases {
                assert!(seen.insert(alias), "{alias}");
            }
        }
    }

    #[test]
    fn field_names_are_unique_per_connector() {
        for connector in built_in() {
            let mut names = HashSet::new();
            for field in &connector.fields {
                assert!(
                    names.insert(field.name),
                    "{}.{}",
                    connector.data_source,
                    field.name
                );
            }
        }
    }

    #[test]
    fn choice_fields_have_choices() {
        for connector in built_in() {
            for field in &connector.fields {
                let is_choice = field.input == FieldInput::Choice;
                assert_eq!(is_choice, !field.choices.is_empty(), "{}", field.name);
                if let Some(default) = field.default.filter(|_| is_choice) {
                    assert!(field.choices.iter().any(|c| c.value == default));
                }
            }
        }
    }

    #[test]
    fn secrets_are_password_inputs() {
        for connector in built_in() {
            for field in &connector.fields {
                assert_eq!(
                    field.secret,
                    field.input == FieldInput::Password,
                    "{}",
                    field.name
                );
            }
        }
    }

    #[test]
    fn find_resolves_aliases() {
        assert_eq!(find("csv").map(|c| c.data_source), Some("files"));
        assert_eq!(find("postgresql").map(|c| c.data_source), Some("postgres"));
        assert_eq!(find("files").map(|c| c.data_source), Some("files"));
        assert!(find("keboola").is_none());
    }
}
