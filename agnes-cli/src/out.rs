//! Printing to standard output that ends the program quietly when the reader has gone.
//!
//! `agnes admin connectors | head` closes the pipe after ten lines. `println!` would panic on the
//! next write; these macros exit with status 0 instead, as other Unix tools stop on SIGPIPE
//! without a message.

use std::io::Write;

/// Prints a line to standard output, like `println!`, and exits quietly when the pipe is closed.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints to standard output, like `print!`, and exits quietly when the pipe is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

/// Writes `args` to standard output; see [`stop_on_write_error`] for what a failure does.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args) {
        drop(stdout);
        stop_on_write_error(&error);
    }
}

/// Ends the program after a failed write to standard output: quietly with status 0 when the
/// reader closed the pipe, else with the error and status 1.
pub fn stop_on_write_error(error: &std::io::Error) -> ! {
    if is_broken_pipe(error) {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// Whether `error` says the reading end of the pipe was closed.
pub fn is_broken_pipe(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::BrokenPipe
}
