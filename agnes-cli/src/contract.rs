//! `agnes contract`: validate extracts offline and print the contract.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use contract_spec::{CONTRACT_VERSION, Report, Severity};
use serde::Serialize;

/// Exit code when some extract has an error finding.
const EXIT_FINDINGS: u8 = 1;
/// Exit code when validation could not run (a path does not exist, a folder cannot be read).
const EXIT_CANNOT_RUN: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Validate extracts against the contract. Exits 0 when no extract has an error, 1 when some
    /// extract has, 2 when validation could not run.
    Validate {
        /// Extract files, source folders, folders of sources (such as `extracts/`), or data
        /// directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Source name to check against, for an extract in a folder whose name is not the source
        /// name (such as a hidden version folder); only with a single extract file or source folder.
        #[arg(long)]
        source: Option<String>,
    },
    /// Print the contract as JSON (the same text as contract-v1.json).
    Show,
}

/// Output format of `agnes contract validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text, one block per extract.
    Text,
    /// One JSON document; see the README for its shape.
    Json,
}

/// The JSON document `agnes contract validate --format json` prints.
#[derive(Debug, Serialize)]
struct Output<'a> {
    contract_version: u32,
    valid: bool,
    errors: usize,
    warnings: usize,
    reports: &'a [Report],
}

/// Runs one `agnes contract` command and returns the process exit code.
pub fn run(command: ContractCommand) -> ExitCode {
    match command {
        ContractCommand::Validate {
            paths,
            format,
            source,
        } => validate(&paths, format, source),
        ContractCommand::Show => {
            out!("{}", contract_spec::contract_v1().to_json());
            ExitCode::SUCCESS
        }
    }
}

fn validate(paths: &[PathBuf], format: Format, source: Option<String>) -> ExitCode {
    let collected = match source {
        Some(source) => validate_as(paths, source),
        None => validate_paths(paths),
    };
    let reports = match collected {
        Ok(reports) => reports,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };

    let errors: usize = reports.iter().map(Report::error_count).sum();
    let warnings: usize = reports.iter().map(Report::warning_count).sum();
    let mut stdout = std::io::stdout().lock();
    let written = match format {
        Format::Json => {
            let output = Output {
                contract_version: CONTRACT_VERSION,
                valid: errors == 0,
                errors,
                warnings,
                reports: &reports,
            };
            serde_json::to_writer_pretty(&mut stdout, &output)
                .map_err(|e| match e.io_error_kind() {
                    Some(kind) => std::io::Error::from(kind),
                    None => std::io::Error::other(e),
                })
                .and_then(|()| writeln!(stdout))
        }
        Format::Text => write_text(&mut stdout, &reports, errors, warnings),
    };
    if let Err(error) = written
        && !crate::out::is_broken_pipe(&error)
    {
        eprintln!("error: cannot write the report: {error}");
        return ExitCode::from(EXIT_CANNOT_RUN);
    }

    if errors > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

/// Validates the one extract in `paths` as source `source`.
fn validate_as(paths: &[PathBuf], source: String) -> Result<Vec<Report>, String> {
    let [path] = paths else {
        return Err(
            "--source applies to one path; pass a single extract file or source folder".to_string(),
        );
    };
    let file = if path.is_dir() {
        path.join(contract_spec::spec::EXTRACT_FILE)
    } else {
        path.clone()
    };
    if !file.exists() {
        return Err(format!(
            "{} does not exist; pass an extract.duckdb file or the folder that holds it",
            file.display()
        ));
    }
    Ok(vec![contract_spec::validate_with(
        &file,
        &contract_spec::Options {
            source: Some(source),
        },
    )])
}

/// Validates every extract that `paths` name.
fn validate_paths(paths: &[PathBuf]) -> Result<Vec<Report>, String> {
    let mut reports = Vec::new();
    for path in paths {
        let found = contract_spec::validate_tree(path)
            .map_err(|error| format!("{error}; check the path and try again"))?;
        if found.is_empty() {
            return Err(format!(
                "{} contains no extract; pass an extract.duckdb file, a source folder, an extracts/ folder \
                 or a data directory",
                path.display()
            ));
        }
        reports.extend(found);
    }
    Ok(reports)
}

fn write_text(
    out: &mut impl Write,
    reports: &[Report],
    errors: usize,
    warnings: usize,
) -> std::io::Result<()> {
    for report in reports {
        let verdict = if report.is_valid() {
            "valid"
        } else {
            "INVALID"
        };
        writeln!(
            out,
            "{} (source {}): {verdict}, {} tables, {} errors, {} warnings",
            report.path.display(),
            report.source,
            report.tables.len(),
            report.error_count(),
            report.warning_count()
        )?;
        for finding in &report.findings {
            let label = match finding.severity {
                Severity::Error => "error  ",
                Severity::Warning => "warning",
            };
            let location = finding.location();
            let location = if location.is_empty() {
                String::new()
            } else {
                format!(" [{location}]")
            };
            writeln!(
                out,
                "  {label} {}{location}: {}",
                finding.code, finding.message
            )?;
            writeln!(out, "          fix: {}", finding.hint)?;
        }
    }
    let sources = reports.len();
    writeln!(
        out,
        "{sources} extracts checked: {errors} errors, {warnings} warnings"
    )
}
