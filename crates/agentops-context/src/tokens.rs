//! Token counting with a real tokenizer. Loading a vocabulary takes 100–250
//! ms, so this is used when entries are indexed, never when a query runs.

/// A tokenizer agentops can count with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// OpenAI's o200k_base (GPT-4o and later); the default.
    O200k,
    /// OpenAI's cl100k_base (GPT-4, GPT-3.5).
    Cl100k,
}

impl TokenizerKind {
    /// The configured tokenizer.
    pub fn of(t: agentops_core::config::Tokenizer) -> Self {
        match t {
            agentops_core::config::Tokenizer::O200k => Self::O200k,
            agentops_core::config::Tokenizer::Cl100k => Self::Cl100k,
        }
    }

    /// Parses a name (`o200k`, `cl100k_base`, …).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "o200k" | "o200k_base" => Some(Self::O200k),
            "cl100k" | "cl100k_base" => Some(Self::Cl100k),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::O200k => "o200k",
            Self::Cl100k => "cl100k",
        }
    }

    /// Tokens in `text`. The first call loads the vocabulary.
    pub fn count(self, text: &str) -> u32 {
        let n = match self {
            Self::O200k => bpe_openai::o200k_base().count(text),
            Self::Cl100k => bpe_openai::cl100k_base().count(text),
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}
