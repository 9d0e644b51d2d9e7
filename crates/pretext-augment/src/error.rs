//! The one error type of this crate.

/// What went wrong, naming the offending config field (as `augment.<field>`) or input.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    /// A value is outside its allowed range; `reason` says what was expected and what was found.
    #[error("augment.{field}: {reason}")]
    Invalid {
        /// The field's name inside the `augment` config section, e.g. `"crop_scale"`.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
}
