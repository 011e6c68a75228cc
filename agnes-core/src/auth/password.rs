//! Password hashing with Argon2id (the `argon2` crate's default parameters, stored as PHC strings).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// Minimum password length in characters.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Maximum password length in bytes, which bounds the hashing work one request can cause.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Checks a new password's length.
///
/// Fails with `auth.password_too_short` or `auth.password_too_long`.
pub fn validate(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "auth.password_too_short",
            format!("the password must be at least {MIN_PASSWORD_LEN} characters long"),
        )
        .with_hint("Choose a longer password; a passphrase of several words works well."));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid(
            "auth.password_too_long",
            format!("the password must be at most {MAX_PASSWORD_LEN} bytes long"),
        ));
    }
    Ok(())
}

/// Hashes `password` with a random salt and returns the PHC string.
///
/// Fails with `internal` if hashing fails, which the default parameters do not cause.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| Error::internal(format!("cannot encode a password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(format!("cannot hash a password: {e}")))
}

/// Returns whether `password` matches the PHC string `stored`; a malformed `stored` never
/// matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is not a valid PHC string");
            false
        }
    }
}

/// Spends the time of one verification without a stored hash, so a login for an unknown email
/// takes as long as one with a wrong password and does not reveal which emails exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default());
    let _ = verify(password, stored);
}

/// Returns a new random password of 20 letters and digits (about 115 bits), without the
/// characters that are easy to mistake for each other (0, O, 1, l, I).
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
