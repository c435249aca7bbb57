//! Ticket numbers: osTicket's format rule, random or sequential.

use crate::ticket::TicketNumber;
use std::str::FromStr;

/// How new ticket numbers are made.
///
/// The pattern follows osTicket: each `#` is a digit, every other character is kept literally
/// (`######` → `482913`, `HD-####` → `HD-0042`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberFormat {
    /// Each `#` a random digit; collisions are retried (osTicket's default).
    Random(Pattern),
    /// The `#`s hold a counter, zero-padded; more digits are added when it outgrows them.
    Sequential(Pattern),
}

impl Default for NumberFormat {
    fn default() -> Self {
        Self::Random(Pattern("######".into()))
    }
}

impl NumberFormat {
    /// The pattern.
    pub fn pattern(&self) -> &Pattern {
        match self {
            Self::Random(pattern) | Self::Sequential(pattern) => pattern,
        }
    }
}

/// A checked number pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl FromStr for Pattern {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let digits = raw.chars().filter(|&c| c == '#').count();
        if digits == 0 {
            return Err(format!(
                "number format '{raw}' has no '#' digit placeholder"
            ));
        }
        let literal_ok = raw
            .chars()
            .all(|c| c == '#' || c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !literal_ok || raw.len() > 20 {
            return Err(format!(
                "number format '{raw}' may only hold '#', letters, digits, '-' and '_' (20 at most)"
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl Pattern {
    /// The pattern as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many random numbers the pattern can make.
    pub fn capacity(&self) -> u128 {
        let digits = self.0.chars().filter(|&c| c == '#').count() as u32;
        10u128.saturating_pow(digits)
    }

    /// A number with random digits.
    pub fn random(&self) -> TicketNumber {
        use rand::Rng;
        let mut rng = rand::rng();
        let text = self
            .0
            .chars()
            .map(|c| {
                if c == '#' {
                    char::from(b'0' + rng.random_range(0..10u8))
                } else {
                    c
                }
            })
            .collect();
        TicketNumber::from_trusted(text)
    }

    /// The number for counter value `n`.
    pub fn sequential(&self, n: u64) -> TicketNumber {
        let slots = self.0.chars().filter(|&c| c == '#').count();
        let digits = format!("{n:0slots$}");
        // When the counter has outgrown the pattern, the first slot takes the surplus digits.
        let surplus = digits.len() - slots;
        let mut digits = digits.chars();
        let mut first = true;
        let mut text = String::with_capacity(self.0.len() + surplus);
        for c in self.0.chars() {
            if c == '#' {
                let take = if first { surplus + 1 } else { 1 };
                first = false;
                text.extend(digits.by_ref().take(take));
            } else {
                text.push(c);
            }
        }
        TicketNumber::from_trusted(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> Pattern {
        raw.parse().expect("valid pattern")
    }

    #[test]
    fn random_numbers_follow_the_pattern() {
        let number = pattern("HD-####").random();
        let text = number.as_str();
        assert_eq!(text.len(), 7);
        assert!(text.starts_with("HD-"));
        assert!(text[3..].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(pattern("######").capacity(), 1_000_000);
    }

    #[test]
    fn sequential_numbers_pad_and_grow() {
        assert_eq!(pattern("HD-####").sequential(42).as_str(), "HD-0042");
        assert_eq!(pattern("##-##").sequential(7).as_str(), "00-07");
        assert_eq!(pattern("##-##").sequential(123_456).as_str(), "1234-56");
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!("ABC".parse::<Pattern>().is_err());
        assert!("#/#".parse::<Pattern>().is_err());
    }
}
