//! The identifier rule shared by source, table, alias and extension names, and the rule for
//! environment-variable names in `_remote_attach.token_env`.

use std::sync::LazyLock;

use regex::Regex;

/// The pattern every source, table, alias and extension name must match: an ASCII letter or
/// underscore, then up to 63 ASCII letters, digits or underscores.
pub const IDENTIFIER_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$";

/// The pattern a `token_env` value must match: the name of an environment variable, not its value.
pub const ENV_VAR_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$";

static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(IDENTIFIER_PATTERN).expect("identifier pattern compiles"));

static ENV_VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(ENV_VAR_PATTERN).expect("env var pattern compiles"));

/// Returns true when `name` matches [`IDENTIFIER_PATTERN`].
pub fn is_identifier(name: &str) -> bool {
    IDENTIFIER.is_match(name)
}

/// Returns true when `name` matches [`ENV_VAR_PATTERN`].
pub fn is_env_var_name(name: &str) -> bool {
    ENV_VAR.is_match(name)
}

/// Explains why `name` is not an identifier, in words a connector author can act on.
///
/// Returns `None` when the name is valid.
pub fn identifier_problem(name: &str) -> Option<String> {
    if is_identifier(name) {
        return None;
    }
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name.chars().count() > 64 {
        format!(
            "is {} characters long, more than the 64 allowed",
            name.chars().count()
        )
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        "starts with a digit".to_string()
    } else if let Some(c) = name.chars().find(|c| !c.is_ascii()) {
        format!("contains the non-ASCII character {c:?}")
    } else if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '_')
    {
        format!("contains the character {c:?}")
    } else {
        "does not match the identifier pattern".to_string()
    };
    Some(problem)
}

/// Quotes `name` as a DuckDB identifier, doubling any double quote inside it.
///
/// Safe for any string, including names that fail [`is_identifier`].
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `value` as a DuckDB string literal, doubling any single quote inside it.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Suggests a safe identifier for `name` by replacing every other character with `_`, prefixing a
/// leading digit with `_` and cutting the result to 64 characters.
pub fn suggest_identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accepted() {
        for name in ["a", "_", "orders", "Orders_2024", "_meta", &"x".repeat(64)] {
            assert!(is_identifier(name), "{name}");
            assert_eq!(identifier_problem(name), None);
        }
    }

    #[test]
    fn identifiers_rejected_with_reason() {
        let cases = [
            ("", "is empty"),
            ("my table", "contains the character ' '"),
            ("a\"b", "contains the character '\"'"),
            ("a;drop", "contains the character ';'"),
            ("tábla", "non-ASCII"),
            ("1st", "starts with a digit"),
            ("in.c-sales", "contains the character '.'"),
        ];
        for (name, reason) in cases {
            assert!(!is_identifier(name), "{name}");
            let problem = identifier_problem(name).unwrap();
            assert!(problem.contains(reason), "{name}: {problem}");
        }
        let long = "a".repeat(65);
        assert!(identifier_problem(&long).unwrap().contains("65 characters"));
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn suggestions_are_identifiers() {
        for name in [
            "my table",
            "1st",
            "in.c-sales.orders",
            "",
            "tábla",
            &"y".repeat(80),
        ] {
            assert!(is_identifier(&suggest_identifier(name)), "{name}");
        }
    }

    #[test]
    fn env_var_names() {
        assert!(is_env_var_name("KEBOOLA_STORAGE_TOKEN"));
        assert!(is_env_var_name("pg_password"));
        assert!(!is_env_var_name("123-secret-value"));
        assert!(!is_env_var_name("postgres://u:p@h/db"));
        assert!(!is_env_var_name(""));
    }
}
