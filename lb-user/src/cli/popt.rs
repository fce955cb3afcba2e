//! popt's option reader, as ipvsadm uses it.

use super::CliError;
use super::options::{ArgKind, SPECS, Tag};
/// One option as popt returns it.
pub(super) struct Found {
    pub(super) tag: Tag,
    pub(super) arg: Option<String>,
    /// The argument word it came from (popt's `poptBadOption`).
    pub(super) word: String,
}

/// popt's `poptGetNextOpt` over ipvsadm's table, with argument permutation:
/// non-option words are collected in `leftovers`.
pub(super) struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// Rest of a short-option cluster: (word index, byte offset).
    cluster: Option<(usize, usize)>,
    rest_leftover: bool,
    pub(super) leftovers: Vec<String>,
}

impl<'a> Popt<'a> {
    pub(super) fn new(args: &'a [String]) -> Self {
        Popt {
            args,
            next: 0,
            cluster: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    /// The argument of an option that did not get one attached: the next word
    /// (an optional argument only if that word does not start with `-`).
    fn separate_arg(&mut self, kind: ArgKind, word: &str) -> Result<Option<String>, CliError> {
        match self.args.get(self.next) {
            Some(a) if kind == ArgKind::Required || !a.starts_with('-') => {
                self.next += 1;
                Ok(Some(a.clone()))
            }
            None if kind == ArgKind::Required => Err(CliError::MissingArgument(word.to_owned())),
            _ => Ok(None),
        }
    }

    pub(super) fn next_opt(&mut self) -> Result<Option<Found>, CliError> {
        loop {
            if let Some((wi, off)) = self.cluster.take() {
                return self.short_opt(wi, off).map(Some);
            }
            let Some(word) = self.args.get(self.next) else {
                return Ok(None);
            };
            let wi = self.next;
            self.next += 1;
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word.clone());
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            let Some(body) = word.strip_prefix("--") else {
                self.cluster = Some((wi, 1));
                continue;
            };
            let (name, attached) = match body.split_once('=') {
                Some((n, a)) => (n, Some(a)),
                None => (body, None),
            };
            let spec = SPECS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| CliError::UnknownOption(word.clone()))?;
            let arg = match (spec.arg, attached) {
                (ArgKind::None, Some(_)) => return Err(CliError::UnwantedArgument(word.clone())),
                (ArgKind::None, None) => None,
                (_, Some(a)) => Some(a.to_owned()),
                (kind, None) => self.separate_arg(kind, word)?,
            };
            return Ok(Some(Found {
                tag: spec.tag,
                arg,
                word: word.clone(),
            }));
        }
    }

    fn short_opt(&mut self, wi: usize, off: usize) -> Result<Found, CliError> {
        let word = &self.args[wi];
        let rest = &word[off..];
        let Some(c) = rest.chars().next() else {
            return Err(CliError::UnknownOption(word.clone()));
        };
        let spec = SPECS
            .iter()
            .find(|s| s.short == Some(c))
            .ok_or_else(|| CliError::UnknownOption(word.clone()))?;
        let after = &rest[c.len_utf8()..];
        let arg = match spec.arg {
            ArgKind::None => {
                if after.starts_with('=') {
                    return Err(CliError::UnwantedArgument(word.clone()));
                }
                if !after.is_empty() {
                    self.cluster = Some((wi, off + c.len_utf8()));
                }
                None
            }
            kind if after.is_empty() => self.separate_arg(kind, word)?,
            _ => Some(after.strip_prefix('=').unwrap_or(after).to_owned()),
        };
        Ok(Found {
            tag: spec.tag,
            arg,
            word: word.clone(),
        })
    }
}
