//! Pure policy-rule types and their diff (no I/O).

use std::collections::BTreeSet;
use std::fmt;

use crate::types::IpNet;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// What traffic a rule of ours sends to our table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleSelector {
    /// Per exposed IP: `ip rule add to IP/32 lookup TABLE priority P` (the NB driver's mode).
    To(IpNet),
    /// Per table: `ip rule add lookup TABLE [suppress_prefixlength N] priority P` for all traffic
    /// of one family; with `suppress_prefixlength 0` the table's default route is ignored.
    All {
        /// The family of the rule.
        family: Family,
        /// `suppress_prefixlength`: routes with a prefix this long or shorter are ignored.
        suppress_prefixlength: Option<u32>,
    },
}

impl RuleSelector {
    /// The family of the rule.
    pub fn family(&self) -> Family {
        match self {
            RuleSelector::To(n) if n.is_ipv6() => Family::V6,
            RuleSelector::To(_) => Family::V4,
            RuleSelector::All { family, .. } => *family,
        }
    }
}

/// One rule: a selector at our priority looking up our table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// The table looked up.
    pub table: u32,
    /// The priority (ownership mark together with the table).
    pub priority: u32,
    /// The traffic selected.
    pub selector: RuleSelector,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "priority {} ", self.priority)?;
        match self.selector {
            RuleSelector::To(n) => write!(f, "to {n} ")?,
            RuleSelector::All { family, .. } => {
                write!(f, "{} ", if family == Family::V6 { "-6" } else { "-4" })?
            }
        }
        write!(f, "lookup {}", self.table)?;
        if let RuleSelector::All {
            suppress_prefixlength: Some(n),
            ..
        } = self.selector
        {
            write!(f, " suppress_prefixlength {n}")?;
        }
        Ok(())
    }
}

/// The rules ovn-route wants for one (table, priority) pair; every rule with that priority
/// and that table is ours, every other rule is left alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DesiredRules {
    /// The table the rules look up.
    pub table: u32,
    /// The priority of our rules.
    pub priority: u32,
    /// The selectors wanted.
    pub selectors: BTreeSet<RuleSelector>,
}

impl DesiredRules {
    /// No rule wanted yet.
    pub fn new(table: u32, priority: u32) -> Self {
        DesiredRules {
            table,
            priority,
            selectors: BTreeSet::new(),
        }
    }

    /// The rules as full values.
    pub fn rules(&self) -> impl Iterator<Item = Rule> + '_ {
        self.selectors.iter().map(|s| Rule {
            table: self.table,
            priority: self.priority,
            selector: *s,
        })
    }
}

/// The difference between desired and observed rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDiff {
    /// Rules to add.
    pub to_add: Vec<Rule>,
    /// Rules of ours to delete.
    pub to_delete: Vec<Rule>,
    /// Rules already present.
    pub unchanged: usize,
}

/// Computes what turns `observed` (rules with our table and priority) into `desired`.
pub fn diff_rules(desired: &DesiredRules, observed: &[Rule]) -> RuleDiff {
    let have: BTreeSet<Rule> = observed.iter().copied().collect();
    let want: BTreeSet<Rule> = desired.rules().collect();
    RuleDiff {
        to_add: want.difference(&have).copied().collect(),
        to_delete: have.difference(&want).copied().collect(),
        unchanged: want.intersection(&have).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_diff() {
        let mut d = DesiredRules::new(1000, 32000);
        let a = RuleSelector::To("172.24.4.5".parse().unwrap());
        let b = RuleSelector::To("2001:db8::5".parse().unwrap());
        let c = RuleSelector::To("172.24.4.6".parse().unwrap());
        d.selectors.extend([a, b]);
        let obs = [
            Rule {
                table: 1000,
                priority: 32000,
                selector: a,
            },
            Rule {
                table: 1000,
                priority: 32000,
                selector: c,
            },
        ];
        let diff = diff_rules(&d, &obs);
        assert_eq!(diff.unchanged, 1);
        assert_eq!(diff.to_add.len(), 1);
        assert_eq!(diff.to_add[0].selector, b);
        assert_eq!(diff.to_delete[0].selector, c);
        assert_eq!(b.family(), Family::V6);
        assert_eq!(
            diff.to_add[0].to_string(),
            "priority 32000 to 2001:db8::5/128 lookup 1000"
        );
    }
}
