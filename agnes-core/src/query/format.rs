//! Result formats: the original JSON shape, NDJSON, CSV, Arrow IPC stream and Parquet.
//!
//! Every writer takes the result one Arrow batch at a time and writes to any [`Write`], so a
//! result of any size goes out with memory bounded by one batch and the writer's own buffer (a
//! Parquet row group at most).

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use arrow::json::writer::{EncoderOptions, make_encoder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, ErrorKind, Result};

/// Rows per Parquet row group. The Parquet writer keeps one row group in memory.
const PARQUET_ROW_GROUP: usize = 65_536;

/// A format a query result can be sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"columns", "rows", "row_count", "truncated"}`, the original shape.
    Json,
    /// One JSON object per row and line, keyed by column name.
    Ndjson,
    /// Comma-separated values with a header line.
    Csv,
    /// An Arrow IPC stream.
    Arrow,
    /// A Parquet file.
    Parquet,
}

impl Format {
    /// Every format, in the order a client's `Accept` preferences are broken when tied.
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Ndjson,
        Format::Csv,
        Format::Arrow,
        Format::Parquet,
    ];

    /// Returns the name used by the `format` field and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }

    /// Returns the media type of the response.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// Returns the file name extension for downloads.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Arrow => "arrows",
            other => other.name(),
        }
    }

    /// Parses a format name.
    ///
    /// Fails with `query.unknown_format` for anything but the five names.
    pub fn parse(name: &str) -> Result<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "query.unknown_format",
                    format!("format {name:?} is not one of json, ndjson, csv, arrow, parquet"),
                )
                .with_hint("Use one of the five names, or leave format out for JSON.")
            })
    }

    /// The format an HTTP `Accept` header asks for: the acceptable media type with the highest
    /// quality, JSON for `*/*` or no match of ours. `None` when the header accepts nothing we
    /// send.
    pub fn from_accept(header: &str) -> Option<Format> {
        let mut best: Option<(f32, usize, Format)> = None;
        let mut any = false;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            let format = match media.as_str() {
                "*/*" | "application/*" => {
                    any = true;
                    Some(Format::Json)
                }
                "application/json" => Some(Format::Json),
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    Some(Format::Ndjson)
                }
                "text/csv" | "text/*" => Some(Format::Csv),
                "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => Some(Format::Parquet),
                _ => None,
            };
            if let Some(format) = format {
                let rank = Format::ALL.iter().position(|f| *f == format).unwrap_or(0);
                let better = best.is_none_or(|(q, r, _)| quality > q || (quality == q && rank < r));
                if better {
                    best = Some((quality, rank, format));
                }
            }
        }
        best.map(|(_, _, f)| f)
            .or(if any { Some(Format::Json) } else { None })
    }

    /// Checks that this format can hold every column of `schema`.
    ///
    /// Fails with `query.format_unsupported` when CSV meets a nested column.
    pub fn check(self, schema: &SchemaRef) -> Result<()> {
        if self != Format::Csv {
            return Ok(());
        }
        match schema.fields().iter().find(|f| f.data_type().is_nested()) {
            None => Ok(()),
            Some(field) => Err(Error::invalid(
                "query.format_unsupported",
                format!(
                    "column {:?} holds lists, structs or maps, which CSV cannot hold",
                    field.name()
                ),
            )
            .with_hint("Ask for json, ndjson or parquet, or turn the column into text with CAST(... AS VARCHAR).")),
        }
    }
}

/// How many rows a writer wrote, and whether the row limit cut the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Rows written.
    pub row_count: usize,
    /// Whether more rows existed than the limit allowed.
    pub truncated: bool,
}

/// Writes a result one batch at a time in one format.
pub(crate) enum ResultWriter<W: Write + Send> {
    Json { out: W, rows: usize },
    Ndjson(arrow::json::LineDelimitedWriter<W>),
    Csv(arrow::csv::Writer<W>),
    Arrow(StreamWriter<W>),
    Parquet(ArrowWriter<W>),
}

impl<W: Write + Send> ResultWriter<W> {
    /// Starts a result with `schema` in `format`, writing whatever comes before the rows.
    pub(crate) fn begin(format: Format, schema: &SchemaRef, mut out: W) -> Result<Self> {
        Ok(match format {
            Format::Json => {
                let columns: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
                let columns = serde_json::to_string(&columns).map_err(encode_failed)?;
                write!(out, "{{\"columns\":{columns},\"rows\":[").map_err(write_failed)?;
                ResultWriter::Json { out, rows: 0 }
            }
            Format::Ndjson => ResultWriter::Ndjson(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            Format::Csv => ResultWriter::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            Format::Arrow => {
                ResultWriter::Arrow(StreamWriter::try_new(out, schema).map_err(encode_failed)?)
            }
            Format::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_size(PARQUET_ROW_GROUP)
                    .build();
                ResultWriter::Parquet(
                    ArrowWriter::try_new(out, schema.clone(), Some(properties))
                        .map_err(encode_failed)?,
                )
            }
        })
    }

    /// Writes one batch of rows.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            ResultWriter::Json { out, rows } => write_json_rows(out, &as_text_ready(batch)?, rows),
            ResultWriter::Ndjson(writer) => {
                writer.write(&as_text_ready(batch)?).map_err(arrow_failed)
            }
            ResultWriter::Csv(writer) => writer.write(&as_text_ready(batch)?).map_err(arrow_failed),
            ResultWriter::Arrow(writer) => writer.write(batch).map_err(arrow_failed),
            ResultWriter::Parquet(writer) => writer.write(batch).map_err(encode_failed),
        }
    }

    /// Writes whatever follows the rows and flushes; returns the writer's output.
    pub(crate) fn finish(self, written: &Written) -> Result<W> {
        match self {
            ResultWriter::Json { mut out, .. } => {
                write!(
                    out,
                    "],\"row_count\":{},\"truncated\":{}}}",
                    written.row_count, written.truncated
                )
                .map_err(write_failed)?;
                out.flush().map_err(write_failed)?;
                Ok(out)
            }
            ResultWriter::Ndjson(mut writer) => {
                writer.finish().map_err(arrow_failed)?;
                Ok(writer.into_inner())
            }
            ResultWriter::Csv(writer) => Ok(writer.into_inner()),
            ResultWriter::Arrow(mut writer) => {
                writer.finish().map_err(arrow_failed)?;
                writer.into_inner().map_err(arrow_failed)
            }
            ResultWriter::Parquet(writer) => writer.into_inner().map_err(encode_failed),
        }
    }
}

/// Returns `batch` with UTC time stamps labelled `+00:00`: DuckDB without ICU reports UTC, and the
/// text writers format only offsets, not zone names, without a time zone database.
fn as_text_ready(batch: &RecordBatch) -> Result<RecordBatch> {
    let named_utc = |data_type: &DataType| matches!(data_type, DataType::Timestamp(_, Some(zone)) if zone.as_ref() != "+00:00");
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| named_utc(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(unit, Some(zone)) if named_utc(field.data_type()) => {
                if !matches!(zone.as_ref(), "UTC" | "Etc/UTC" | "GMT" | "Z") {
                    return Err(encode_failed(format!(
                        "column {:?} is in time zone {zone}, which the text formats cannot show",
                        field.name()
                    )));
                }
                let data_type = DataType::Timestamp(*unit, Some("+00:00".into()));
                columns.push(arrow::compute::cast(column, &data_type).map_err(encode_failed)?);
                fields.push(field.as_ref().clone().with_data_type(data_type));
            }
            _ => {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(encode_failed)
}

/// Appends `batch` to the JSON `rows` array: each row an array of values in column order.
fn write_json_rows<W: Write>(out: &mut W, batch: &RecordBatch, rows: &mut usize) -> Result<()> {
    let options = EncoderOptions::default();
    let fields: Vec<FieldRef> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true)))
        .collect();
    let mut encoders = fields
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| make_encoder(field, column.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(arrow_failed)?;
    let mut buffer = Vec::with_capacity(64 * 1024);
    for row in 0..batch.num_rows() {
        if *rows > 0 {
            buffer.push(b',');
        }
        buffer.push(b'[');
        for (i, encoder) in encoders.iter_mut().enumerate() {
            if i > 0 {
                buffer.push(b',');
            }
            if encoder.is_null(row) {
                buffer.extend_from_slice(b"null");
            } else {
                encoder.encode(row, &mut buffer);
            }
        }
        buffer.push(b']');
        *rows += 1;
        if buffer.len() >= 60 * 1024 {
            out.write_all(&buffer).map_err(write_failed)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer).map_err(write_failed)
}

/// The error of a write that the client stopped reading, or of a failing sink.
fn write_failed(error: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "query.write_failed",
        format!("the result could not be written: {error}"),
    )
}

fn arrow_failed(error: arrow::error::ArrowError) -> Error {
    match error {
        arrow::error::ArrowError::IoError(_, io) => write_failed(io),
        other => encode_failed(other),
    }
}

fn encode_failed(error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Internal,
        "query.encode_failed",
        format!("the result could not be encoded: {error}"),
    )
    .with_hint("Ask for another format, or CAST the column that fails to VARCHAR.")
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn accept_headers() {
        assert_eq!(Format::from_accept("application/json"), Some(Format::Json));
        assert_eq!(Format::from_accept("*/*"), Some(Format::Json));
        assert_eq!(Format::from_accept("text/csv"), Some(Format::Csv));
        assert_eq!(
            Format::from_accept("text/csv;q=0.5, application/vnd.apache.arrow.stream"),
            Some(Format::Arrow)
        );
        assert_eq!(
            Format::from_accept("application/x-ndjson, */*;q=0.1"),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_accept("application/vnd.apache.parquet"),
            Some(Format::Parquet)
        );
        assert_eq!(Format::from_accept("image/png"), None);
        assert_eq!(Format::from_accept("text/csv;q=0"), None);
    }

    #[test]
    fn names() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()).unwrap(), format);
        }
        assert_eq!(Format::parse(" CSV ").unwrap(), Format::Csv);
        let error = Format::parse("xml").unwrap_err();
        assert_eq!(error.code, "query.unknown_format");
        assert!(error.message.contains("xml"), "{}", error.message);
    }
}
