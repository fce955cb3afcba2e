//! `lbctl fwmark add|del|list`: the classifier's rules on `FWMARK`
//! (`crate::fwmark` computes the projection; this writes it).
//!
//! A change computes the whole new projection first (a refused change,
//! such as a full table, changes nothing), then writes the prefixes whose
//! value changed or is new, then removes those that are gone, then updates
//! the VIP filter and the settings' flags. A packet in between sees either
//! a prefix's old value or its new one, each consistent on its own.

use std::collections::BTreeMap;

use aya::maps::lpm_trie::Key;
use lb_common::{FwmarkKey, FwmarkRules, MAP_FWMARK};

use super::Table;
use crate::{
    error::Error,
    fwmark::{self, FwmarkError, FwmarkRule},
    pins::map_err,
};

impl Table {
    /// The classifier's rules, read back from `FWMARK`, sorted.
    pub fn fwmark_rules(&self) -> Result<Vec<FwmarkRule>, Error> {
        let mut out = Vec::new();
        for (key, value) in self.fwmark_entries()? {
            out.extend(fwmark::own_rules(key.0, &key.1, &value));
        }
        out.sort();
        Ok(out)
    }

    fn fwmark_entries(&self) -> Result<BTreeMap<(u32, FwmarkKey), FwmarkRules>, Error> {
        let mut out = BTreeMap::new();
        for item in self.pins.fwmark.iter() {
            let (k, v) = item.map_err(map_err(MAP_FWMARK))?;
            out.insert((k.prefix_len(), k.data()), v);
        }
        Ok(out)
    }

    /// `lbctl fwmark add`: a rule whose match no rule has yet.
    pub fn add_fwmark_rule(&mut self, rule: &FwmarkRule) -> Result<(), Error> {
        let mut rules = self.fwmark_rules()?;
        if let Some(r) = rules.iter().find(|r| r.matches == rule.matches) {
            return Err(FwmarkError::Exists(r.to_string()).into());
        }
        rules.push(*rule);
        self.write_fwmark_rules(&rules)
    }

    /// `lbctl fwmark del`: the rule of this match (and this mark).
    pub fn delete_fwmark_rule(&mut self, rule: &FwmarkRule) -> Result<(), Error> {
        let mut rules = self.fwmark_rules()?;
        let Some(pos) = rules.iter().position(|r| r == rule) else {
            return Err(FwmarkError::NotFound(rule.to_string()).into());
        };
        rules.remove(pos);
        self.write_fwmark_rules(&rules)
    }

    /// Every rule goes (`-C`).
    pub fn clear_fwmark_rules(&mut self) -> Result<(), Error> {
        if self.fwmark_entries()?.is_empty() {
            return Ok(());
        }
        self.write_fwmark_rules(&[])
    }

    fn write_fwmark_rules(&mut self, rules: &[FwmarkRule]) -> Result<(), Error> {
        let want = fwmark::project(rules)?;
        let have = self.fwmark_entries()?;
        for (k, v) in &want {
            if have.get(k) != Some(v) {
                self.pins
                    .fwmark
                    .insert(&Key::new(k.0, k.1), v, 0)
                    .map_err(map_err(MAP_FWMARK))?;
            }
        }
        for k in have.keys().filter(|k| !want.contains_key(k)) {
            self.pins
                .fwmark
                .remove(&Key::new(k.0, k.1))
                .map_err(map_err(MAP_FWMARK))?;
        }
        self.update_port0_flag()
    }
}
