//! Recipe errors: every one names the file, the line and the field.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeError {
    /// The recipe file, or `<default recipe>` for the embedded one.
    pub file: String,
    pub line: Option<usize>,
    /// Dotted path of the field (`files[2].mode`); empty for the document itself.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for RecipeError {}

/// Several problems at once: a user fixes a recipe in one go, not one error per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeErrors(pub Vec<RecipeError>);

impl fmt::Display for RecipeErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecipeErrors {}
