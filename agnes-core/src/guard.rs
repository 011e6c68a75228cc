//! Table-level access control for SQL, decided on DuckDB's parse tree before a query runs.
//!
//! An analyst who may read only some published tables sends SQL like anyone else. Before the
//! query runs, the caller serializes it with DuckDB's own parser (`SELECT json_serialize_sql(?)`)
//! and passes the JSON to [`check`]. The check walks every object and array in the tree and
//! rejects the query unless each relation it reads is a CTE in scope or an unqualified published
//! table the caller may read. Matching names in the SQL text cannot do this: comments, string
//! literals, quoted identifiers, CTEs that shadow table names and qualified names such as
//! `sales.main.orders` all defeat a text match.
//!
//! The walk fails closed. A query node or table reference kind that this module does not know
//! is rejected as [`Denial::Unsupported`], so a DuckDB upgrade that adds one cannot open a path.
//!
//! This check is one of two layers. File and network access are blocked by the query engine's
//! DuckDB settings (external access off, allowed directories, locked configuration), not by the
//! function lists below. Those lists keep analysts away from metadata and settings that the
//! engine itself is allowed to read.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

/// Table functions a restricted caller may use. Each one builds rows from its arguments alone
/// and reads no table, file, setting or catalog. Every other table function is rejected by name,
/// including ones that future DuckDB versions or extensions add.
const ALLOWED_TABLE_FUNCTIONS: &[&str] = &[
    "generate_series",
    "json_each",
    "json_tree",
    "range",
    "unnest",
];

/// Scalar functions that return configuration or environment values instead of table data.
///
/// `current_database()`, `current_schema()` and `version()` stay allowed: they return only the
/// names of the catalog and schema the engine opened and the DuckDB version, never a table row,
/// a setting value or a secret.
const DENIED_SCALAR_FUNCTIONS: &[&str] = &["current_setting", "getenv", "getvariable"];

/// Name prefixes of scalar functions that read catalog metadata or settings.
const DENIED_FUNCTION_PREFIXES: &[&str] = &["duckdb_", "pragma_"];

/// Typed objects that are neither query nodes nor table references. They can still hold
/// expressions, such as a subquery in `LIMIT`, so the walk descends into them.
const PLAIN_TYPES: &[&str] = &[
    "ORDER_MODIFIER",
    "LIMIT_MODIFIER",
    "LIMIT_PERCENT_MODIFIER",
    "DISTINCT_MODIFIER",
    "ORDER_DEFAULT",
    "ASCENDING",
    "DESCENDING",
];

/// Maximum nesting of JSON values the walk follows, which bounds its stack use.
const MAX_DEPTH: usize = 512;

/// Hint shared by every denial: where the caller finds what they may read.
const CATALOG_HINT: &str = "GET /api/catalog/tables lists the tables you may read.";

/// Reason a query was rejected by [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// An unqualified table the caller may not read, or one that does not exist, as written.
    Table(String),
    /// A table named with a catalog or schema, such as `sales.orders` or `main.flights`.
    Qualified(String),
    /// A table function outside the allowlist, or a scalar function that reads settings or
    /// metadata.
    Function(String),
    /// A part of the parse tree that the check does not understand, described in words.
    Unsupported(String),
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(name) => {
                write!(f, "table \"{name}\" does not exist or you may not read it")
            }
            Self::Qualified(name) => write!(
                f,
                "table name \"{name}\" is qualified with a catalog or schema, which is not allowed; \
                 name published tables without a prefix"
            ),
            Self::Function(name) => write!(
                f,
                "function \"{name}\" is not allowed because it can read data outside the tables \
                 you may read"
            ),
            Self::Unsupported(what) => write!(
                f,
                "the query uses {what}, which the table access check does not support"
            ),
        }
    }
}

impl From<Denial> for Error {
    /// Converts a denial to a [`ErrorKind::Forbidden`] error.
    ///
    /// The message depends only on the query text, so a missing table and a hidden one produce
    /// the same error and the response does not reveal which tables exist.
    fn from(denial: Denial) -> Self {
        let code = match denial {
            Denial::Table(_) => "query.table_denied",
            Denial::Qualified(_) => "query.qualified_name_denied",
            Denial::Function(_) => "query.function_denied",
            Denial::Unsupported(_) => "query.unsupported",
        };
        Error::new(ErrorKind::Forbidden, code, denial.to_string()).with_hint(CATALOG_HINT)
    }
}

/// Checks every table reference and function call in `tree`, the output of DuckDB's
/// `json_serialize_sql` for the query.
///
/// `visible(name)` gets an unqualified table name in ASCII lowercase and returns whether the
/// caller may read that published table. DuckDB 1.4.4 compares identifiers ASCII
/// case-insensitively, with or without quotes, so the check does the same. `visible` must return
/// true only for tables that exist as views in the analytics database's `main` schema: an
/// unqualified name with no such view could resolve to a DuckDB system view or to a file.
///
/// Returns the first [`Denial`] found. A tree whose `error` flag is not `false` is rejected as
/// [`Denial::Unsupported`].
pub fn check(tree: &Value, visible: &dyn Fn(&str) -> bool) -> Result<(), Denial> {
    if tree.get("error").and_then(Value::as_bool) != Some(false) {
        return Err(unsupported("SQL that DuckDB could not serialize"));
    }
    let statements = tree
        .get("statements")
        .and_then(Value::as_array)
        .ok_or_else(|| unsupported("a parse tree without a statement list"))?;

    let walker = Walker { visible };
    statements
        .iter()
        .try_for_each(|statement| walker.value(statement, &[], 0))
}

fn unsupported(what: impl Into<String>) -> Denial {
    Denial::Unsupported(what.into())
}

/// The names of the CTEs in scope, in ASCII lowercase.
type Scope = [String];

struct Walker<'a> {
    visible: &'a dyn Fn(&str) -> bool,
}

impl Walker<'_> {
    fn value(&self, value: &Value, scope: &Scope, depth: usize) -> Result<(), Denial> {
        if depth > MAX_DEPTH {
            return Err(unsupported(format!(
                "nesting deeper than {MAX_DEPTH} levels"
            )));
        }
        match value {
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| self.value(item, scope, depth + 1)),
            Value::Object(object) => self.object(object, scope, depth + 1),
            _ => Ok(()),
        }
    }

    /// Walks one object, choosing the rule by its `type`. Only expressions carry a `class` key,
    /// which distinguishes the expression `SUBQUERY` from the table reference of that name.
    fn object(
        &self,
        object: &Map<String, Value>,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        if object.contains_key("class") {
            return self.expression(object, scope, depth);
        }
        let Some(kind) = object.get("type").and_then(Value::as_str) else {
            return self.fields(object, &[], scope, depth);
        };

        match kind {
            "SELECT_NODE" | "SET_OPERATION_NODE" => self.query_node(object, scope, depth),
            "RECURSIVE_CTE_NODE" => self.recursive_cte(object, scope, depth),
            "CTE_NODE" => self.materialized_cte(object, scope, depth),
            "BASE_TABLE" => self.base_table(object, scope, depth),
            "TABLE_FUNCTION" => self.table_function(object, scope, depth),
            "SHOW_REF" => self.show(object, scope, depth),
            "JOIN" | "SUBQUERY" | "EMPTY" | "EXPRESSION_LIST" | "PIVOT" => {
                self.fields(object, &[], scope, depth)
            }
            _ if PLAIN_TYPES.contains(&kind) || kind.ends_with("_TYPE_INFO") => {
                self.fields(object, &[], scope, depth)
            }
            _ => Err(unsupported(format!("the parse tree element {kind}"))),
        }
    }

    /// Walks every field of `object` except those named in `skip`.
    fn fields(
        &self,
        object: &Map<String, Value>,
        skip: &[&str],
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        object
            .iter()
            .filter(|(key, _)| !skip.contains(&key.as_str()))
            .try_for_each(|(_, value)| self.value(value, scope, depth))
    }

    fn expression(
        &self,
        object: &Map<String, Value>,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        if let Some(name) = object.get("function_name").and_then(Value::as_str) {
            check_scalar_function(name)?;
        }
        self.fields(object, &[], scope, depth)
    }

    /// Walks a SELECT or set operation: its CTEs first, then the rest with those CTEs in scope.
    fn query_node(
        &self,
        object: &Map<String, Value>,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        let scope = self.ctes(object.get("cte_map"), scope, depth)?;
        self.fields(object, &["cte_map"], &scope, depth)
    }

    /// Walks the bodies of a WITH list and returns `outer` extended by its names.
    ///
    /// Each body can reference the outer CTEs and the ones listed before it, but not itself or
    /// later ones. In DuckDB 1.4.4 `WITH t AS (SELECT * FROM t)` reads the table `t`, even under
    /// `WITH RECURSIVE`, and a forward reference reads a table too. A recursive body is a
    /// `RECURSIVE_CTE_NODE`, which puts its own name in scope itself.
    fn ctes(
        &self,
        cte_map: Option<&Value>,
        outer: &Scope,
        depth: usize,
    ) -> Result<Vec<String>, Denial> {
        let mut scope = outer.to_vec();
        let Some(cte_map) = cte_map else {
            return Ok(scope);
        };
        let entries = cte_map
            .get("map")
            .and_then(Value::as_array)
            .ok_or_else(|| unsupported("a WITH clause in an unknown layout"))?;

        for entry in entries {
            let name = entry
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| unsupported("a CTE without a name"))?
                .to_ascii_lowercase();
            let body = entry
                .get("value")
                .ok_or_else(|| unsupported(format!("CTE {name} without a body")))?;
            if scope[outer.len()..].contains(&name) {
                return Err(unsupported(format!("CTE {name} defined twice")));
            }

            self.value(body, &scope, depth)?;
            scope.push(name);
        }
        Ok(scope)
    }

    /// Walks a recursive CTE body. Only the recursive term (`right`) can reference the CTE
    /// itself. In the anchor (`left`) DuckDB 1.4.4 binds that name to the table of that name.
    fn recursive_cte(
        &self,
        object: &Map<String, Value>,
        outer: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        let scope = self.ctes(object.get("cte_map"), outer, depth)?;
        let name = non_empty_str(object, "cte_name")
            .ok_or_else(|| unsupported("a recursive CTE without a name"))?
            .to_ascii_lowercase();
        let anchor = object
            .get("left")
            .ok_or_else(|| unsupported(format!("recursive CTE {name} without an anchor term")))?;
        let recursive_term = object
            .get("right")
            .ok_or_else(|| unsupported(format!("recursive CTE {name} without a recursive term")))?;

        self.value(anchor, &scope, depth)?;

        let mut with_self = scope.clone();
        with_self.push(name);
        self.value(recursive_term, &with_self, depth)?;

        self.fields(object, &["cte_map", "left", "right"], &scope, depth)
    }

    /// Walks a `CTE_NODE`, which DuckDB 1.4.4 emits for each `AS MATERIALIZED` CTE. It carries
    /// the whole WITH list in `cte_map`, the body of the CTE named `cte_name` in `query` and the
    /// rest of the statement in `child`.
    fn materialized_cte(
        &self,
        object: &Map<String, Value>,
        outer: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        let scope = self.ctes(object.get("cte_map"), outer, depth)?;
        let name = non_empty_str(object, "cte_name")
            .ok_or_else(|| unsupported("a materialized CTE without a name"))?
            .to_ascii_lowercase();
        let position = scope[outer.len()..]
            .iter()
            .position(|defined| *defined == name)
            .ok_or_else(|| {
                unsupported(format!(
                    "materialized CTE {name} missing from its WITH list"
                ))
            })?;
        let body = object
            .get("query")
            .ok_or_else(|| unsupported(format!("materialized CTE {name} without a body")))?;

        // The body can reference the CTEs listed before it, as in the WITH list itself.
        self.value(body, &scope[..outer.len() + position], depth)?;
        self.fields(object, &["cte_map", "query"], &scope, depth)
    }

    fn base_table(
        &self,
        object: &Map<String, Value>,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        let (Some(catalog), Some(schema)) = (
            object.get("catalog_name").and_then(Value::as_str),
            object.get("schema_name").and_then(Value::as_str),
        ) else {
            return Err(unsupported(
                "a table reference without catalog and schema fields",
            ));
        };
        let name = non_empty_str(object, "table_name")
            .ok_or_else(|| unsupported("a table reference without a name"))?;

        if !catalog.is_empty() || !schema.is_empty() {
            return Err(Denial::Qualified(qualified_name(&[catalog, schema, name])));
        }
        let lowercase = name.to_ascii_lowercase();
        if !scope.contains(&lowercase) && !(self.visible)(&lowercase) {
            return Err(Denial::Table(name.to_string()));
        }

        // `at_clause` and `sample` may hold expressions, and so subqueries.
        self.fields(object, &[], scope, depth)
    }

    fn table_function(
        &self,
        object: &Map<String, Value>,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), Denial> {
        let function = object
            .get("function")
            .and_then(Value::as_object)
            .filter(|function| function.get("class").and_then(Value::as_str) == Some("FUNCTION"))
            .ok_or_else(|| unsupported("a table function call in an unknown layout"))?;
        let name = non_empty_str(function, "function_name")
            .ok_or_else(|| unsupported("a table function without a name"))?;
        let catalog = function
            .get("catalog")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let schema = function
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or_default();

        let lowercase = name.to_ascii_lowercase();
        let qualified = !catalog.is_empty() || !schema.is_empty();
        if qualified || !ALLOWED_TABLE_FUNCTIONS.contains(&lowercase.as_str()) {
            return Err(Denial::Function(qualified_name(&[catalog, schema, name])));
        }

        // The arguments may hold subqueries.
        self.fields(object, &[], scope, depth)
    }

    /// Walks `DESCRIBE`, `SUMMARIZE` and `SHOW`. Those of a query are checked as that query.
    /// `SHOW TABLES`, `SHOW ALL TABLES` and `SHOW DATABASES` are rejected because they list
    /// every table and catalog of the engine, hidden ones included.
    fn show(&self, object: &Map<String, Value>, scope: &Scope, depth: usize) -> Result<(), Denial> {
        let listing = ["catalog_name", "schema_name", "table_name"]
            .iter()
            .filter_map(|key| object.get(*key).and_then(Value::as_str))
            .filter(|part| !part.is_empty())
            .map(|part| part.trim_matches('"'))
            .collect::<Vec<_>>();
        if !listing.is_empty() {
            return Err(unsupported(format!("SHOW {}", listing.join("."))));
        }
        if object.get("query").is_none_or(Value::is_null) {
            return Err(unsupported("SHOW without a query"));
        }
        self.fields(object, &[], scope, depth)
    }
}

/// Rejects scalar functions that return settings, variables, the environment or catalog
/// metadata. Compared by bare name, so a schema prefix (`main.current_setting`) does not help.
fn check_scalar_function(name: &str) -> Result<(), Denial> {
    let lowercase = name.to_ascii_lowercase();
    let denied = DENIED_SCALAR_FUNCTIONS.contains(&lowercase.as_str())
        || DENIED_FUNCTION_PREFIXES
            .iter()
            .any(|prefix| lowercase.starts_with(prefix));
    if denied {
        return Err(Denial::Function(name.to_string()));
    }
    Ok(())
}

fn non_empty_str<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// Joins the non-empty parts of a dotted name.
fn qualified_name(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use duckdb::Connection;
    use proptest::prelude::*;

    use super::*;

    /// Tables the test caller may read; `salaries` exists too but is hidden.
    const VISIBLE: &[&str] = &["flights", "airlines"];

    /// A marker stored only in the hidden table, so a leak shows up in query results.
    const SECRET: &str = "SECRET";

    fn engine() -> Connection {
        let conn = Connection::open_in_memory().expect("open in-memory DuckDB");
        conn.execute_batch(&format!(
            "CREATE TABLE flights AS SELECT 'flights' AS v;
             CREATE TABLE airlines AS SELECT 'airlines' AS v;
             CREATE TABLE salaries AS SELECT '{SECRET}' AS v;"
        ))
        .expect("create test tables");
        conn
    }

    fn parse(conn: &Connection, sql: &str) -> Value {
        let json: String = conn
            .query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |row| {
                row.get(0)
            })
            .expect("serialize SQL");
        serde_json::from_str(&json).expect("parse serialized SQL")
    }

    fn verdict_with(conn: &Connection, sql: &str) -> Result<(), Denial> {
        check(&parse(conn, sql), &|name| VISIBLE.contains(&name))
    }

    fn verdict(sql: &str) -> Result<(), Denial> {
        verdict_with(&engine(), sql)
    }

    fn table(name: &str) -> Result<(), Denial> {
        Err(Denial::Table(name.to_string()))
    }

    fn function(name: &str) -> Result<(), Denial> {
        Err(Denial::Function(name.to_string()))
    }

    fn qualified(name: &str) -> Result<(), Denial> {
        Err(Denial::Qualified(name.to_string()))
    }

    #[test]
    fn allows_plain_select() {
        assert_eq!(verdict("SELECT * FROM flights"), Ok(()));
    }

    #[test]
    fn allows_join_of_visible_tables() {
        let sql = "SELECT f.v, a.v FROM flights f JOIN airlines a ON f.v <> a.v";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_cte_over_visible_table() {
        let sql = "WITH recent AS (SELECT * FROM flights) SELECT * FROM recent";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_cte_shadowing_hidden_name() {
        let sql = "WITH salaries AS (SELECT * FROM flights) SELECT * FROM salaries";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_cte_in_subqueries_and_lateral() {
        let sql = "WITH salaries AS (SELECT 1 AS v)
                   SELECT (SELECT max(v) FROM salaries), l.v
                   FROM flights f, LATERAL (SELECT * FROM salaries) l
                   WHERE EXISTS (SELECT * FROM salaries)";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_window_functions() {
        let sql = "SELECT v, row_number() OVER (PARTITION BY v ORDER BY v),
                          sum(1) OVER (ORDER BY v ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                   FROM flights QUALIFY row_number() OVER (ORDER BY v) < 3";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_subquery_in_where() {
        let sql = "SELECT * FROM flights WHERE v IN (SELECT v FROM airlines)";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_union_of_visible_tables() {
        let sql = "SELECT v FROM flights UNION SELECT v FROM airlines EXCEPT SELECT 'x'";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_generator_table_functions() {
        assert_eq!(verdict("SELECT * FROM range(10)"), Ok(()));
        assert_eq!(verdict("SELECT * FROM generate_series(1, 3)"), Ok(()));
        assert_eq!(verdict("SELECT * FROM unnest([1, 2])"), Ok(()));
    }

    #[test]
    fn allows_comments() {
        let sql = "-- salaries\nSELECT /* FROM salaries */ * FROM flights";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_string_literal_naming_hidden_table() {
        let sql = "SELECT 'salaries', 'FROM salaries' AS s FROM flights WHERE v <> 'salaries'";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_quoted_identifier_in_other_case() {
        assert_eq!(verdict("SELECT * FROM \"Flights\""), Ok(()));
        assert_eq!(verdict("SELECT * FROM FLIGHTS"), Ok(()));
    }

    #[test]
    fn allows_multi_line_query() {
        let sql =
            "SELECT\n  f.v\nFROM\n  flights AS f\nWHERE\n  f.v IS NOT NULL\nORDER BY 1\nLIMIT 5";
        assert_eq!(verdict(sql), Ok(()));
    }

    #[test]
    fn allows_common_analytics_constructs() {
        let queries = [
            "SELECT v, count(*) FROM flights GROUP BY ALL HAVING count(*) > 0 ORDER BY ALL",
            "SELECT v::STRUCT(a INT)[] , v::DECIMAL(10, 2), v::ENUM('a') FROM flights",
            "SELECT * FROM flights LIMIT (SELECT count(*) FROM airlines)",
            "SELECT * FROM flights USING SAMPLE 10%",
            "SELECT * FROM (VALUES (1), (2)) t(a)",
            "DESCRIBE flights",
            "SUMMARIZE SELECT * FROM flights",
            "SELECT * FROM flights UNPIVOT (x FOR k IN (v))",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
            "WITH a AS MATERIALIZED (SELECT * FROM flights), b AS MATERIALIZED (SELECT * FROM a) SELECT * FROM b",
            "SELECT current_database(), version()",
        ];
        for sql in queries {
            assert_eq!(verdict(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn denies_hidden_table() {
        assert_eq!(verdict("SELECT * FROM salaries"), table("salaries"));
        assert_eq!(verdict("SELECT * FROM \"Salaries\""), table("Salaries"));
    }

    #[test]
    fn denies_hidden_table_in_select_list_subquery() {
        let sql = "SELECT (SELECT max(v) FROM salaries) FROM flights";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_where_subquery() {
        let sql = "SELECT * FROM flights WHERE EXISTS (SELECT 1 FROM salaries WHERE v > 'a')";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_having_subquery() {
        let sql =
            "SELECT v FROM flights GROUP BY v HAVING count(*) < (SELECT count(*) FROM salaries)";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_join() {
        let sql = "SELECT * FROM flights f LEFT JOIN salaries s ON f.v = s.v";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_union() {
        let sql = "SELECT v FROM flights UNION ALL SELECT v FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_lateral() {
        let sql = "SELECT * FROM flights f, LATERAL (SELECT * FROM salaries s WHERE s.v = f.v)";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_hidden_table_in_order_by() {
        let sql = "SELECT * FROM flights ORDER BY (SELECT max(v) FROM salaries)";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_cte_reading_table_of_own_name() {
        let sql = "WITH salaries AS (SELECT * FROM salaries) SELECT * FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_self_reference_under_with_recursive() {
        let sql = "WITH RECURSIVE salaries AS (SELECT * FROM salaries) SELECT * FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
        let sql = "WITH RECURSIVE salaries AS (SELECT * FROM salaries UNION ALL \
                   SELECT * FROM salaries WHERE false) SELECT * FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_materialized_cte_reading_table_of_own_name() {
        let sql = "WITH salaries AS MATERIALIZED (SELECT * FROM salaries) SELECT * FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_forward_reference_to_later_cte() {
        let sql = "WITH a AS (SELECT * FROM salaries), salaries AS (SELECT 1) SELECT * FROM a";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_cte_from_sibling_branch() {
        let sql = "(WITH salaries AS (SELECT 1 AS v) SELECT v FROM salaries) \
                   UNION ALL SELECT v FROM salaries";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_cte_name_differing_in_non_ascii_case() {
        // DuckDB folds only ASCII letters, so this CTE does not shadow the table "sálaries".
        let conn = engine();
        let sql = "WITH \"SÁLARIES\" AS (SELECT 1) SELECT * FROM \"sálaries\"";
        let tree = parse(&conn, sql);
        let visible = |name: &str| name == "flights";
        assert_eq!(check(&tree, &visible), table("sálaries"));
    }

    #[test]
    fn denies_qualified_names() {
        assert_eq!(
            verdict("SELECT * FROM main.flights"),
            qualified("main.flights")
        );
        assert_eq!(
            verdict("SELECT * FROM hr.salaries"),
            qualified("hr.salaries")
        );
        assert_eq!(
            verdict("SELECT * FROM information_schema.tables"),
            qualified("information_schema.tables")
        );
        assert_eq!(
            verdict("SELECT * FROM pg_catalog.pg_class"),
            qualified("pg_catalog.pg_class")
        );
        assert_eq!(
            verdict("SELECT * FROM system.main.duckdb_tables"),
            qualified("system.main.duckdb_tables")
        );
        assert_eq!(
            verdict("SELECT * FROM sales.main.orders"),
            qualified("sales.main.orders")
        );
    }

    #[test]
    fn denies_qualified_name_shadowed_by_cte() {
        let sql = "WITH flights AS (SELECT 1) SELECT * FROM main.flights";
        assert_eq!(verdict(sql), qualified("main.flights"));
    }

    #[test]
    fn denies_metadata_table_functions() {
        assert_eq!(
            verdict("SELECT * FROM duckdb_tables()"),
            function("duckdb_tables")
        );
        assert_eq!(
            verdict("SELECT * FROM duckdb_settings()"),
            function("duckdb_settings")
        );
        assert_eq!(
            verdict("SELECT * FROM pragma_table_info('salaries')"),
            function("pragma_table_info")
        );
        assert_eq!(
            verdict("SELECT * FROM system.main.duckdb_databases()"),
            function("system.main.duckdb_databases")
        );
    }

    #[test]
    fn denies_query_table_functions() {
        assert_eq!(
            verdict("SELECT * FROM query('SELECT * FROM salaries')"),
            function("query")
        );
        assert_eq!(
            verdict("SELECT * FROM query_table('salaries')"),
            function("query_table")
        );
    }

    #[test]
    fn denies_file_readers() {
        assert_eq!(
            verdict("SELECT * FROM read_parquet('/x')"),
            function("read_parquet")
        );
        assert_eq!(
            verdict("SELECT * FROM read_csv_auto('/x.csv')"),
            function("read_csv_auto")
        );
        assert_eq!(
            verdict("SELECT * FROM read_text('/etc/hosts')"),
            function("read_text")
        );
        assert_eq!(verdict("SELECT * FROM glob('/*')"), function("glob"));
    }

    #[test]
    fn denies_replacement_scan_of_path() {
        assert_eq!(verdict("SELECT * FROM '/etc/passwd'"), table("/etc/passwd"));
        assert_eq!(verdict("FROM 'data/*.parquet'"), table("data/*.parquet"));
    }

    #[test]
    fn denies_qualified_allowed_table_function() {
        assert_eq!(
            verdict("SELECT * FROM main.range(3)"),
            function("main.range")
        );
    }

    #[test]
    fn denies_hidden_table_in_table_function_argument() {
        let sql = "SELECT * FROM range((SELECT count(*) FROM salaries))";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_setting_and_metadata_scalar_functions() {
        assert_eq!(
            verdict("SELECT current_setting('allowed_directories')"),
            function("current_setting")
        );
        assert_eq!(verdict("SELECT getvariable('x')"), function("getvariable"));
        assert_eq!(
            verdict("SELECT main.current_setting('threads')"),
            function("current_setting")
        );
        assert_eq!(
            verdict("SELECT ('threads').current_setting()"),
            function("current_setting")
        );
        assert_eq!(
            verdict("SELECT * FROM flights WHERE v = current_setting('memory_limit')"),
            function("current_setting")
        );
    }

    #[test]
    fn denies_recursive_cte_reading_hidden_table() {
        let sql = "WITH RECURSIVE r(v) AS (SELECT v FROM flights UNION ALL \
                   SELECT s.v FROM r JOIN salaries s ON false) SELECT * FROM r";
        assert_eq!(verdict(sql), table("salaries"));
        let sql = "WITH RECURSIVE r(v) AS (SELECT v FROM salaries UNION ALL \
                   SELECT v FROM r WHERE false) SELECT * FROM r";
        assert_eq!(verdict(sql), table("salaries"));
    }

    #[test]
    fn denies_show_tables() {
        assert!(matches!(
            verdict("SHOW TABLES"),
            Err(Denial::Unsupported(_))
        ));
        assert!(matches!(
            verdict("SHOW ALL TABLES"),
            Err(Denial::Unsupported(_))
        ));
        assert_eq!(verdict("DESCRIBE salaries"), table("salaries"));
    }

    #[test]
    fn denies_unknown_tree_elements() {
        let visible = |_: &str| true;
        let unknown_ref = serde_json::json!({
            "error": false,
            "statements": [{"node": {"type": "SELECT_NODE", "from_table": {"type": "COLUMN_DATA"}}}]
        });
        assert!(matches!(
            check(&unknown_ref, &visible),
            Err(Denial::Unsupported(_))
        ));

        let unknown_node = serde_json::json!({
            "error": false,
            "statements": [{"node": {"type": "FUTURE_NODE"}}]
        });
        assert!(matches!(
            check(&unknown_node, &visible),
            Err(Denial::Unsupported(_))
        ));

        let parser_error = serde_json::json!({"error": true, "error_message": "syntax error"});
        assert!(matches!(
            check(&parser_error, &visible),
            Err(Denial::Unsupported(_))
        ));
    }

    #[test]
    fn denies_excessive_nesting() {
        let mut tree = serde_json::json!({"type": "BASE_TABLE"});
        for _ in 0..(MAX_DEPTH + 1) {
            tree = serde_json::json!([tree]);
        }
        let document = serde_json::json!({"error": false, "statements": [tree]});
        let verdict = check(&document, &|_| true);
        assert!(matches!(verdict, Err(Denial::Unsupported(_))));
    }

    #[test]
    fn denial_error_hides_existence() {
        let hidden = Error::from(verdict("SELECT * FROM salaries").unwrap_err());
        let missing = Error::from(verdict("SELECT * FROM payroll").unwrap_err());
        assert_eq!(hidden.kind, ErrorKind::Forbidden);
        assert_eq!(hidden.code, "query.table_denied");
        assert_eq!(
            hidden.message,
            "table \"salaries\" does not exist or you may not read it"
        );
        assert_eq!(
            missing.message,
            hidden.message.replace("salaries", "payroll")
        );
        assert_eq!(hidden.hint.as_deref(), Some(CATALOG_HINT));
    }

    #[test]
    fn denial_error_codes() {
        let code = |denial: Denial| Error::from(denial).code;
        assert_eq!(
            code(Denial::Qualified("a.b".into())),
            "query.qualified_name_denied"
        );
        assert_eq!(
            code(Denial::Function("glob".into())),
            "query.function_denied"
        );
        assert_eq!(code(Denial::Unsupported("x".into())), "query.unsupported");
    }

    /// A SELECT with one VARCHAR column `v`, built around leaf table references.
    #[derive(Debug, Clone)]
    enum Shape {
        Leaf(&'static str),
        Subquery(Box<Shape>),
        Cte(Box<Shape>),
        MaterializedCte(Box<Shape>),
        /// `WITH salaries AS (body) SELECT v FROM salaries`: the body does not see the CTE.
        CteNamedHidden(Box<Shape>),
        /// `WITH salaries AS (...) SELECT v FROM (inner)`: `salaries` in `inner` is the CTE.
        Shadow(Box<Shape>),
        Recursive(Box<Shape>),
        Union(Box<Shape>, Box<Shape>),
        Join(Box<Shape>, Box<Shape>),
        Exists(Box<Shape>, Box<Shape>),
        Scalar(Box<Shape>, Box<Shape>),
        Lateral(Box<Shape>, Box<Shape>),
    }

    const LEAVES: &[&str] = &[
        "flights",
        "\"Flights\"",
        "airlines",
        "salaries",
        "SALARIES",
        "\"Salaries\"",
    ];

    fn shape() -> impl Strategy<Value = Shape> {
        let leaf = proptest::sample::select(LEAVES).prop_map(Shape::Leaf);
        leaf.prop_recursive(4, 12, 2, |inner| {
            let pair = (inner.clone(), inner.clone());
            prop_oneof![
                inner.clone().prop_map(|q| Shape::Subquery(Box::new(q))),
                inner.clone().prop_map(|q| Shape::Cte(Box::new(q))),
                inner
                    .clone()
                    .prop_map(|q| Shape::MaterializedCte(Box::new(q))),
                inner
                    .clone()
                    .prop_map(|q| Shape::CteNamedHidden(Box::new(q))),
                inner.clone().prop_map(|q| Shape::Shadow(Box::new(q))),
                inner.clone().prop_map(|q| Shape::Recursive(Box::new(q))),
                pair.clone()
                    .prop_map(|(a, b)| Shape::Union(Box::new(a), Box::new(b))),
                pair.clone()
                    .prop_map(|(a, b)| Shape::Join(Box::new(a), Box::new(b))),
                pair.clone()
                    .prop_map(|(a, b)| Shape::Exists(Box::new(a), Box::new(b))),
                pair.clone()
                    .prop_map(|(a, b)| Shape::Scalar(Box::new(a), Box::new(b))),
                pair.prop_map(|(a, b)| Shape::Lateral(Box::new(a), Box::new(b))),
            ]
        })
    }

    /// Renders `shape` as SQL; `next` numbers CTE and alias names so they never collide.
    fn render(shape: &Shape, next: &mut usize) -> String {
        *next += 1;
        let n = *next;
        match shape {
            Shape::Leaf(name) => format!("SELECT v FROM {name}"),
            Shape::Subquery(q) => format!("SELECT v FROM ({}) AS s{n}", render(q, next)),
            Shape::Cte(q) => format!("WITH c{n} AS ({}) SELECT v FROM c{n}", render(q, next)),
            Shape::MaterializedCte(q) => {
                format!(
                    "WITH c{n} AS MATERIALIZED ({}) SELECT v FROM c{n}",
                    render(q, next)
                )
            }
            Shape::CteNamedHidden(q) => {
                format!(
                    "WITH salaries AS ({}) SELECT v FROM salaries",
                    render(q, next)
                )
            }
            Shape::Shadow(q) => format!(
                "WITH salaries AS (SELECT v FROM flights) SELECT v FROM ({}) AS s{n}",
                render(q, next)
            ),
            Shape::Recursive(q) => format!(
                "WITH RECURSIVE r{n}(v) AS (({}) UNION ALL (SELECT v FROM r{n} WHERE false)) \
                 SELECT v FROM r{n}",
                render(q, next)
            ),
            Shape::Union(a, b) => format!("({}) UNION ALL ({})", render(a, next), render(b, next)),
            Shape::Join(a, b) => format!(
                "SELECT l{n}.v || r{n}.v AS v FROM ({}) AS l{n} JOIN ({}) AS r{n} ON true",
                render(a, next),
                render(b, next)
            ),
            Shape::Exists(a, b) => format!(
                "SELECT v FROM ({}) AS s{n} WHERE EXISTS ({})",
                render(a, next),
                render(b, next)
            ),
            Shape::Scalar(a, b) => format!(
                "SELECT (SELECT max(v) FROM ({}) AS x{n}) AS v FROM ({}) AS y{n}",
                render(b, next),
                render(a, next)
            ),
            Shape::Lateral(a, b) => format!(
                "SELECT r{n}.v FROM ({}) AS l{n}, LATERAL ({}) AS r{n}",
                render(a, next),
                render(b, next)
            ),
        }
    }

    /// Returns whether `shape` reads the hidden table, given whether a CTE named `salaries`
    /// is in scope.
    fn reads_hidden(shape: &Shape, shadowed: bool) -> bool {
        match shape {
            Shape::Leaf(name) => {
                !shadowed && name.trim_matches('"').eq_ignore_ascii_case("salaries")
            }
            Shape::Shadow(q) => reads_hidden(q, true),
            Shape::Subquery(q)
            | Shape::Cte(q)
            | Shape::MaterializedCte(q)
            | Shape::CteNamedHidden(q)
            | Shape::Recursive(q) => reads_hidden(q, shadowed),
            Shape::Union(a, b)
            | Shape::Join(a, b)
            | Shape::Exists(a, b)
            | Shape::Scalar(a, b)
            | Shape::Lateral(a, b) => reads_hidden(a, shadowed) || reads_hidden(b, shadowed),
        }
    }

    fn rows(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(sql).expect("prepare allowed query");
        let rows = statement
            .query_map([], |row| row.get::<_, Option<String>>(0))
            .expect("run allowed query");
        rows.map(|row| row.expect("read row").unwrap_or_default())
            .collect()
    }

    thread_local! {
        static ENGINE: Connection = engine();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The check allows a composed query exactly when no leaf reads the hidden table, and
        /// an allowed query, when run, returns no row of the hidden table.
        #[test]
        fn composed_queries_allowed_iff_leaves_visible(shape in shape()) {
            let sql = render(&shape, &mut 0);
            let expected_hidden = reads_hidden(&shape, false);

            ENGINE.with(|conn| {
                let verdict = verdict_with(conn, &sql);
                prop_assert_eq!(verdict.is_err(), expected_hidden, "{}: {:?}", sql, verdict);
                if verdict.is_ok() {
                    let leaked = rows(conn, &sql).iter().any(|value| value.contains(SECRET));
                    prop_assert!(!leaked, "{} returned a row of the hidden table", sql);
                } else {
                    let table_denial = matches!(verdict, Err(Denial::Table(_)));
                    prop_assert!(table_denial, "{}: {:?}", sql, verdict);
                }
                Ok(())
            })?;
        }
    }
}
