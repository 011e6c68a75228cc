//! Streaming query execution through DuckDB's C API.
//!
//! The `duckdb` crate 1.4.4 streams a result only through `Statement::stream_arrow`, which needs
//! the schema before the query runs and ends the stream silently when DuckDB reports an error
//! while fetching: an interrupted, out-of-memory or failing query would look like a complete but
//! short result. This module calls the C API itself, so that every fetch that fails is an error
//! with DuckDB's message and error type, and the Arrow schema comes from the result.
//!
//! The database is opened here too, because the crate does not hand out the raw database handle
//! that new raw connections need; the crate's [`Connection`] is then made on top of it with
//! [`Connection::open_from_raw`] for everything that is not a streamed query.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;

use duckdb::Connection;
use duckdb::arrow::array::{RecordBatch, StructArray};
use duckdb::arrow::datatypes::{Schema, SchemaRef};
use duckdb::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use duckdb::ffi;

/// An error reported by DuckDB, with its message and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawError {
    /// DuckDB's message, as DuckDB wrote it.
    pub message: String,
    /// Kind of failure.
    pub class: ErrorClass,
}

/// The failures that callers treat differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// The connection was interrupted.
    Interrupted,
    /// The memory limit was reached.
    OutOfMemory,
    /// Anything else: a bad query, a missing file, a failed cast.
    Other,
}

impl RawError {
    fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            class: ErrorClass::Other,
        }
    }

    fn classified(message: String, error_type: ffi::duckdb_error_type) -> Self {
        let class = match error_type {
            ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT => ErrorClass::Interrupted,
            ffi::duckdb_error_type_DUCKDB_ERROR_OUT_OF_MEMORY => ErrorClass::OutOfMemory,
            _ => ErrorClass::Other,
        };
        Self { message, class }
    }
}

/// Copies a C string that DuckDB owns.
///
/// # Safety
/// `text` is null or points to a NUL-terminated string that stays valid during the call.
unsafe fn copy_text(text: *const c_char, fallback: &str) -> String {
    if text.is_null() {
        fallback.to_string()
    } else {
        // SAFETY: non-null and NUL-terminated, as the caller promises.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A DuckDB database opened through the C API; closed when dropped, which must happen after
/// every connection made from it is gone.
pub(crate) struct Database {
    handle: ffi::duckdb_database,
}

// SAFETY: a DuckDB database object is thread-safe; connections to it may be made and used from
// any thread.
unsafe impl Send for Database {}
// SAFETY: as above; `&Database` only makes connections.
unsafe impl Sync for Database {}

impl Database {
    /// Opens the database file at `path` with the given configuration options.
    pub(crate) fn open(path: &Path, options: &[(&str, String)]) -> Result<Database, RawError> {
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| RawError::other("the database path contains a NUL byte"))?;
        let mut config: ffi::duckdb_config = ptr::null_mut();
        // SAFETY: `config` is a valid out pointer; it is destroyed below on every path.
        if unsafe { ffi::duckdb_create_config(&mut config) } != ffi::DuckDBSuccess {
            return Err(RawError::other("DuckDB could not create a configuration"));
        }
        let result = Self::open_with(&c_path, config, options);
        // SAFETY: `config` was created above and is not used after this.
        unsafe { ffi::duckdb_destroy_config(&mut config) };
        result
    }

    fn open_with(
        c_path: &CStr,
        config: ffi::duckdb_config,
        options: &[(&str, String)],
    ) -> Result<Database, RawError> {
        for (name, value) in options {
            let c_name = CString::new(*name).map_err(|_| RawError::other("bad option name"))?;
            let c_value = CString::new(value.as_bytes())
                .map_err(|_| RawError::other(format!("option {name} contains a NUL byte")))?;
            // SAFETY: `config` is live and both strings are NUL-terminated.
            let state =
                unsafe { ffi::duckdb_set_config(config, c_name.as_ptr(), c_value.as_ptr()) };
            if state != ffi::DuckDBSuccess {
                return Err(RawError::other(format!(
                    "DuckDB rejected the setting {name} = {value}"
                )));
            }
        }
        let mut handle: ffi::duckdb_database = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: every pointer is valid; DuckDB allocates `error` on failure, freed below.
        let state =
            unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut handle, config, &mut error) };
        if state != ffi::DuckDBSuccess {
            // SAFETY: `error` is null or a NUL-terminated string that DuckDB allocated.
            let message = unsafe { copy_text(error, "DuckDB could not open the database") };
            if !error.is_null() {
                // SAFETY: DuckDB allocated it, and it is freed once.
                unsafe { ffi::duckdb_free(error.cast()) };
            }
            return Err(RawError::other(message));
        }
        Ok(Database { handle })
    }

    /// Opens a connection of the `duckdb` crate to this database. It must be dropped before
    /// the database.
    pub(crate) fn crate_connection(&self) -> duckdb::Result<Connection> {
        // SAFETY: the handle is an open database; the connection does not close it.
        unsafe { Connection::open_from_raw(self.handle) }
    }

    /// Opens a connection for streamed queries. It must be dropped before the database.
    pub(crate) fn connect(&self) -> Result<RawConnection, RawError> {
        let mut handle: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: the database is open and `handle` is a valid out pointer.
        if unsafe { ffi::duckdb_connect(self.handle, &mut handle) } != ffi::DuckDBSuccess {
            return Err(RawError::other("DuckDB could not open a connection"));
        }
        Ok(RawConnection { handle })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: the handle is open, and the owner dropped every connection first.
        unsafe { ffi::duckdb_close(&mut self.handle) };
    }
}

/// A connection for streamed queries; disconnected when dropped.
pub(crate) struct RawConnection {
    handle: ffi::duckdb_connection,
}

// SAFETY: a connection may move between threads; it is used by one thread at a time, which
// `&mut self` on every query method ensures.
unsafe impl Send for RawConnection {}

impl RawConnection {
    /// Returns a handle that interrupts this connection's running query from another thread. It must not
    /// be used after the connection is dropped.
    pub(crate) fn interrupter(&self) -> Interrupter {
        Interrupter {
            handle: self.handle,
        }
    }

    /// Prepares and starts `sql` as a streaming query, fetching nothing yet.
    pub(crate) fn start(&mut self, sql: &str) -> Result<RawStream, RawError> {
        let c_sql = CString::new(sql)
            .map_err(|_| RawError::other("the query contains a NUL character; remove it"))?;
        let mut statement: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: the connection is open and the text is NUL-terminated.
        let state = unsafe { ffi::duckdb_prepare(self.handle, c_sql.as_ptr(), &mut statement) };
        if state != ffi::DuckDBSuccess {
            // SAFETY: a failed prepare still yields a statement that holds the error message.
            let message = unsafe {
                copy_text(
                    ffi::duckdb_prepare_error(statement),
                    "DuckDB could not prepare the query",
                )
            };
            // SAFETY: destroyed once; null is accepted.
            unsafe { ffi::duckdb_destroy_prepare(&mut statement) };
            return Err(RawError::other(message));
        }
        // SAFETY: `duckdb_result` is a plain C struct that DuckDB fills in.
        let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        // SAFETY: the statement is prepared; the result is destroyed by `RawStream` or below.
        let state = unsafe { ffi::duckdb_execute_prepared_streaming(statement, &mut result) };
        // SAFETY: the result does not depend on the prepared statement once executed.
        unsafe { ffi::duckdb_destroy_prepare(&mut statement) };
        let mut stream = RawStream {
            result,
            options: ptr::null_mut(),
            schema: FFI_ArrowSchema::empty(),
            arrow_schema: SchemaRef::new(Schema::empty()),
        };
        if state != ffi::DuckDBSuccess {
            return Err(stream.error("DuckDB could not run the query"));
        }
        stream.read_schema()?;
        Ok(stream)
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: the handle is open and no stream of it outlives it (streams borrow nothing,
        // but the owner drops them first).
        unsafe { ffi::duckdb_disconnect(&mut self.handle) };
    }
}

/// Interrupts the query that runs on one connection.
pub(crate) struct Interrupter {
    handle: ffi::duckdb_connection,
}

// SAFETY: `duckdb_interrupt` may be called from any thread while the connection is open; the
// query engine stops using an interrupter before the connection can be dropped.
unsafe impl Send for Interrupter {}
// SAFETY: as above.
unsafe impl Sync for Interrupter {}

impl Interrupter {
    /// Asks DuckDB to stop the running query.
    pub(crate) fn interrupt(&self) {
        // SAFETY: the connection is open while the interrupter is registered.
        unsafe { ffi::duckdb_interrupt(self.handle) };
    }
}

/// A running query whose result DuckDB produces one chunk at a time.
pub(crate) struct RawStream {
    result: ffi::duckdb_result,
    options: ffi::duckdb_arrow_options,
    schema: FFI_ArrowSchema,
    arrow_schema: SchemaRef,
}

// SAFETY: the result is used by one thread at a time (`&mut self`), and DuckDB result objects
// do not depend on the thread that created them.
unsafe impl Send for RawStream {}

impl RawStream {
    /// Returns the Arrow schema of the result.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.arrow_schema.clone()
    }

    /// The error the result holds, or `fallback` when it holds none.
    fn error(&mut self, fallback: &str) -> RawError {
        // SAFETY: the result was filled in by DuckDB; the message lives as long as the result.
        let (message, error_type) = unsafe {
            (
                copy_text(ffi::duckdb_result_error(&mut self.result), fallback),
                ffi::duckdb_result_error_type(&mut self.result),
            )
        };
        RawError::classified(message, error_type)
    }

    fn read_schema(&mut self) -> Result<(), RawError> {
        // SAFETY: the result is a successful query result; the options and every logical type
        // are destroyed here or in `drop`, and the names live as long as the result.
        unsafe {
            self.options = ffi::duckdb_result_get_arrow_options(&mut self.result);
            let count = ffi::duckdb_column_count(&mut self.result);
            let mut names: Vec<*const c_char> = Vec::with_capacity(count as usize);
            let mut types: Vec<ffi::duckdb_logical_type> = Vec::with_capacity(count as usize);
            for column in 0..count {
                names.push(ffi::duckdb_column_name(&mut self.result, column));
                types.push(ffi::duckdb_column_logical_type(&mut self.result, column));
            }
            let error = ffi::duckdb_to_arrow_schema(
                self.options,
                types.as_mut_ptr(),
                names.as_mut_ptr(),
                count,
                ptr::addr_of_mut!(self.schema).cast(),
            );
            for logical_type in &mut types {
                ffi::duckdb_destroy_logical_type(logical_type);
            }
            check_error_data(error, "DuckDB could not describe the result in Arrow")?;
        }
        let schema = Schema::try_from(&self.schema)
            .map_err(|e| RawError::other(format!("the result's Arrow schema is invalid: {e}")))?;
        self.arrow_schema = SchemaRef::new(schema);
        Ok(())
    }

    /// The next chunk of rows, `None` at the end, or the error that stopped the query.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>, RawError> {
        loop {
            // SAFETY: the result is live; the chunk is destroyed below.
            let mut chunk = unsafe { ffi::duckdb_fetch_chunk(self.result) };
            if chunk.is_null() {
                // SAFETY: the result is live.
                let failed = unsafe { !ffi::duckdb_result_error(&mut self.result).is_null() };
                if failed {
                    return Err(self.error("the query failed"));
                }
                return Ok(None);
            }
            let converted = self.convert(chunk);
            // SAFETY: the chunk came from `duckdb_fetch_chunk` and is destroyed once.
            unsafe { ffi::duckdb_destroy_data_chunk(&mut chunk) };
            match converted? {
                Some(batch) if batch.num_rows() > 0 => return Ok(Some(batch)),
                _ => continue,
            }
        }
    }

    fn convert(&mut self, chunk: ffi::duckdb_data_chunk) -> Result<Option<RecordBatch>, RawError> {
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: the chunk and the options are live; DuckDB fills `array`, whose release
        // callback frees it when `from_ffi` drops or adopts it.
        let error = unsafe {
            ffi::duckdb_data_chunk_to_arrow(self.options, chunk, ptr::addr_of_mut!(array).cast())
        };
        // SAFETY: `error` came from DuckDB.
        unsafe { check_error_data(error, "DuckDB could not convert a result chunk to Arrow")? };
        if array.is_empty() {
            return Ok(None);
        }
        // SAFETY: `array` was produced by DuckDB for this schema.
        let data = unsafe { from_ffi(array, &self.schema) }
            .map_err(|e| RawError::other(format!("a result chunk is invalid Arrow: {e}")))?;
        let batch = RecordBatch::from(StructArray::from(data));
        let batch = batch.with_schema(self.arrow_schema.clone()).map_err(|e| {
            RawError::other(format!("a result chunk does not match its schema: {e}"))
        })?;
        Ok(Some(batch))
    }
}

impl Drop for RawStream {
    fn drop(&mut self) {
        // SAFETY: the options (if made) and the result are destroyed once; the connection is
        // still open, because its owner drops streams first.
        unsafe {
            if !self.options.is_null() {
                ffi::duckdb_destroy_arrow_options(&mut self.options);
            }
            ffi::duckdb_destroy_result(&mut self.result);
        }
    }
}

/// Turns DuckDB error data into a result, destroying it.
///
/// # Safety
/// `error` is null or error data returned by DuckDB and not yet destroyed.
unsafe fn check_error_data(
    mut error: ffi::duckdb_error_data,
    fallback: &str,
) -> Result<(), RawError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: as the caller promises; destroyed once below.
    unsafe {
        let outcome = if ffi::duckdb_error_data_has_error(error) {
            Err(RawError::classified(
                copy_text(ffi::duckdb_error_data_message(error), fallback),
                ffi::duckdb_error_data_error_type(error),
            ))
        } else {
            Ok(())
        };
        ffi::duckdb_destroy_error_data(&mut error);
        outcome
    }
}
